/**
 * `npm run bench -- gpu [--json] [--reps N] [--quick] [--models a,b] [--profile] [--fused-only]`, run by `scripts/gpu-check` on a GPU machine:
 *  (a) parity: logits, loss and one training step's gradients on webgpu vs the cpu backend (and vs transformers)
 *      for the reference fixtures, with the fused kernels and with plain tfjs ops (criterion: rel. error <= 1e-3);
 *  (b) throughput: training-step tokens/s of GPT-2-small-shaped, 4-layer d512 and the shipped base model, seqft and
 *      adaptive-svd, fused kernels and plain tfjs ops, beside the PyTorch twin (scripts/bench/torch_twin.py) on the
 *      same GPU in the same run (fp32, TF32 off);
 *  (c) adaptive-svd's step overhead (adaptive-svd step / seqft step, ours and PyTorch's) and the task-boundary
 *      SVD time of each model (our CPU SVD: LAPACK when present).
 * --quick runs tiny shapes, for a smoke test on a software adapter.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../../src/engine/tf';
import { selectBackend, type BackendInfo } from '../../src/engine/backend';
import { lapackStatus } from '../../src/engine/linalg';
import { fixtureParity, type ParityResult } from './parity';
import { MODELS as TRAIN_MODELS, oursStepRun, peerStepTimes, type ModelSpec } from './train';
import { formatStats, markdownTable, stats, type BenchRow } from './report';

const root = process.env.SCULPT_REPO_ROOT ?? process.cwd();
const PARITY_LIMIT = 1e-3;

const gpt2 = (d: number, L: number, H: number, V: number, n: number) => () => ({
  model_type: 'gpt2',
  architectures: ['GPT2LMHeadModel'],
  vocab_size: V,
  n_embd: d,
  n_layer: L,
  n_head: H,
  n_positions: n,
  layer_norm_epsilon: 1e-5,
  activation_function: 'gelu_new',
});

const MODELS: ModelSpec[] = [
  { name: 'gpt2-small-shape', batch: 8, seq: 512, config: gpt2(768, 12, 12, 50257, 1024) },
  { name: 'gpt2-d512-l4', batch: 8, seq: 256, config: gpt2(512, 4, 8, 8192, 512) },
  ...TRAIN_MODELS.filter((m) => m.name === 'sculpt-base'),
];
const QUICK: ModelSpec[] = [{ name: 'gpt2-tiny-shape', batch: 2, seq: 16, config: gpt2(32, 2, 4, 300, 64) }];

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Runs `f` with some fused kernels switched off (SCULPT_WEBGPU_UNFUSED), restoring the setting after. */
async function withUnfused<T>(which: string, f: () => Promise<T>): Promise<T> {
  const before = process.env.SCULPT_WEBGPU_UNFUSED;
  process.env.SCULPT_WEBGPU_UNFUSED = which;
  try {
    return await f();
  } finally {
    if (before === undefined) delete process.env.SCULPT_WEBGPU_UNFUSED;
    else process.env.SCULPT_WEBGPU_UNFUSED = before;
  }
}

const e = (x: number) => x.toExponential(1);

export async function runGpuCheck(argv: string[]): Promise<void> {
  const json = argv.includes('--json');
  const quick = argv.includes('--quick');
  const reps = Number(arg(argv, 'reps') ?? (quick ? 1 : 5));
  const wanted = arg(argv, 'models')?.split(',');
  const out: string[] = [];
  const say = (s = '') => {
    out.push(s);
    console.log(s);
  };

  // ------------------------------------------------------------------ adapter: what `auto` picks, and why
  let info: BackendInfo;
  try {
    info = await selectBackend(quick ? 'webgpu' : 'auto');
  } catch (err) {
    console.error(`gpu-check: no backend: ${(err as Error).message}`);
    process.exitCode = 1;
    return;
  }
  say(
    `## gpu-check\n\nbackend (${quick ? 'webgpu requested' : 'auto'}): ${info.name} on ${info.device}${info.fallbacks.length ? `; passed over: ${info.fallbacks.join('; ')}` : ''}`,
  );
  const lapack = lapackStatus();
  say(
    `task-boundary SVD: ${lapack.available ? `LAPACK (${lapack.library})` : `TypeScript (LAPACK unavailable: ${lapack.reason})`}`,
  );
  if (info.name !== 'webgpu') {
    console.error('gpu-check: the webgpu backend was not selected; nothing to check');
    process.exitCode = 1;
    return;
  }

  // ------------------------------------------------------------------ (a) parity
  const parity: ParityResult[] = [];
  const parityRows: string[][] = [];
  for (const kernels of ['fused', 'tfjs-ops'] as const) {
    for (const name of ['gpt2-tiny', 'llama-tiny']) {
      const dir = join(root, 'test', 'fixtures', 'hf-reference', name);
      const r = await withUnfused(kernels === 'fused' ? '' : 'all', () => fixtureParity(dir, 'webgpu', 'cpu'));
      parity.push(r);
      const ok = r.logits <= PARITY_LIMIT && r.loss <= PARITY_LIMIT && r.worstGrad.err <= PARITY_LIMIT;
      parityRows.push([
        name,
        kernels,
        e(r.logits),
        e(r.loss),
        `${e(r.worstGrad.err)} (${r.worstGrad.name})`,
        `${r.gradCount}`,
        e(r.hfLogits),
        e(r.hfWorstGrad),
        ok ? 'pass' : 'FAIL',
      ]);
    }
  }
  say('\n### (a) parity: webgpu vs cpu, fp32 (||a-b||/||b||, criterion <= 1e-3)\n');
  say(
    markdownTable(
      [
        'fixture',
        'kernels',
        'logits',
        'loss',
        'worst gradient (parameter)',
        'gradients',
        'logits vs HF',
        'worst grad vs HF',
        '',
      ],
      parityRows,
    ),
  );

  // ------------------------------------------------------------------ (b) throughput, (c) overhead and SVD
  const rows: BenchRow[] = [];
  const table: string[][] = [];
  const notes = new Set<string>();
  const boundary: string[][] = [];
  const profiles: string[] = [];
  const specs = (quick ? QUICK : MODELS).filter((s) => !wanted || wanted.includes(s.name));
  for (const spec of specs) {
    if (spec.load && !existsSync(join(root, 'assets/models', spec.name, 'config.json'))) continue;
    const tokens = spec.batch * spec.seq;
    const peer: Record<string, number | null> = {};
    const ours: Record<string, number> = {};
    for (const method of ['seqft', 'adaptive-svd'] as const) {
      const p = peerStepTimes(spec, method, reps, quick ? 'cpu' : 'cuda');
      notes.add(p.note);
      const ps = p.times ? stats(p.times) : null;
      peer[method] = ps ? ps.median : null;
      const variants =
        method === 'seqft' && !argv.includes('--fused-only') ? (['fused', 'tfjs-ops'] as const) : (['fused'] as const);
      for (const kernels of variants) {
        const profile = method === 'seqft' && argv.includes('--profile');
        const run = await withUnfused(kernels === 'fused' ? '' : 'all', () =>
          oursStepRun(spec, 'webgpu', method, reps, 2, profile),
        );
        if (run.kernels) {
          const total = run.kernels.reduce((a, k) => a + k.ms, 0);
          const count = run.kernels.reduce((a, k) => a + k.count, 0);
          profiles.push(
            `${spec.name} ${method} ${kernels}: ${count} kernels, ${total.toFixed(1)} ms of device time in a step of ${(stats(run.times).median * 1000).toFixed(1)} ms; top: ` +
              run.kernels
                .slice(0, 12)
                .map((k) => `${k.name} ${k.ms.toFixed(1)} ms/${k.count}`)
                .join(', '),
          );
        }
        const s = stats(run.times);
        ours[`${method}/${kernels}`] = s.median;
        if (method === 'adaptive-svd') boundary.push([spec.name, `${run.boundary.toFixed(2)} s`]);
        const tps = tokens / s.median;
        const ptps = ps ? tokens / ps.median : null;
        const name = `${spec.name}/webgpu/${method}${kernels === 'fused' ? '' : '/tfjs-ops'}`;
        rows.push({ name, ours: tps, peer: ptps, unit: 'tokens/s', speedup: ptps ? tps / ptps : null });
        table.push([
          name,
          `${spec.batch}x${spec.seq}`,
          formatStats(s, 's', 4),
          formatStats(ps, 's', 4),
          tps.toFixed(0),
          ptps ? ptps.toFixed(0) : 'n/a',
          ptps ? (tps / ptps).toFixed(3) : 'n/a',
        ]);
        console.error(`# ${name}: ${formatStats(s, 's', 4)}`);
      }
    }
    const ratio = ours['adaptive-svd/fused'] / ours['seqft/fused'];
    const peerRatio = peer['adaptive-svd'] && peer.seqft ? peer['adaptive-svd'] / peer.seqft : null;
    const gain = ours['seqft/tfjs-ops']
      ? `; fused kernels speed the seqft step up ${(ours['seqft/tfjs-ops'] / ours['seqft/fused']).toFixed(2)}x over plain tfjs ops`
      : '';
    notes.add(
      `${spec.name}: adaptive-svd step = ${ratio.toFixed(2)}x seqft (PyTorch twin ${peerRatio ? peerRatio.toFixed(2) : 'n/a'}x)${gain}`,
    );
    tf.disposeVariables();
  }
  say('\n### (b) training throughput on the GPU (ratio = ours / PyTorch tokens/s)\n');
  say(
    markdownTable(
      ['model/backend/method', 'batch x seq', 'ours step', 'PyTorch step', 'ours tok/s', 'PyTorch tok/s', 'ratio'],
      table,
    ),
  );
  say('\n### (c) adaptive-svd overhead and task-boundary SVD\n');
  for (const n of notes) say(`- ${n}`);
  say('');
  say(markdownTable(['model', 'boundary SVD of every target (fixed ratio 0.5, our CPU SVD)'], boundary));
  if (profiles.length) {
    say('\n### kernel profile (tf.profile, one step)\n');
    for (const p of profiles) say(`- ${p}`);
  }
  if (json) console.log(JSON.stringify({ suite: 'gpu', device: info.device, parity, rows }));
  if (parity.some((r) => r.logits > PARITY_LIMIT || r.loss > PARITY_LIMIT || r.worstGrad.err > PARITY_LIMIT))
    process.exitCode = 1;
}
