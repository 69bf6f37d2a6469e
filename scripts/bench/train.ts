/**
 * `npm run bench -- train [--json] [--reps N] [--blocks B] [--models a,b] [--backends cpu,wasm] [--labels all|answer|all,answer]`:
 * training tokens/s of Sculpt's step (forward, backward, method hooks, AdamW) per model, backend, method and
 * workload, beside a PyTorch twin of the same model, batch and method run in the same invocation
 * (scripts/bench/torch_twin.py, Debian python3-torch or SCULPT_PYTHON's, fp32, both cores). Both sides train on
 * the one batch benchBatch makes (the twin reads it from a file). Rows are `<model>/<backend>/<method>`, with
 * `/answer` appended for that workload; speedup = ours / peer tokens/s. adaptive-svd here is the dense two-sided
 * projection with k = floor(0.5 min_dim) on every attention/MLP matrix and post-step re-projection, the method's
 * per-step cost. The two sides alternate in B blocks (default 3) of ceil(N / B) steps each, the twin a fresh
 * process per block, and the medians are over all blocks: on a shared machine step times drift by a third over
 * tens of seconds, and one block each would hand a slow spell to one side. The adaptive-svd step against seqft's
 * is measured apart, paired (pairedMethodSteps: both methods in one process, stepping in turn).
 *
 * --labels (default `all`; a list runs each):
 *   all     every position labelled (labels = ids): a language-model step; the twin's loss is the cross-entropy
 *           of every position's logits against the next id
 *   answer  instruction fine-tuning: each row labels only its last ANSWER_TOKENS tokens, -100 elsewhere. Sculpt's
 *           decoder then runs the head and the softmax on the labelled positions alone. The twin runs twice:
 *           `hf` (logits at every position and cross_entropy(ignore_index=-100), as LlamaForCausalLM(labels=...))
 *           and `gather` (the labelled positions' hidden states, then the head and the cross-entropy, as Sculpt).
 *           The table shows both; the ratio and the JSON row's speedup are against the faster of the two, and the
 *           JSON has a row per twin beside it (`.../answer/vs-hf`, `.../answer/vs-gather`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { blasStatus } from '../../src/engine/linalg/blas';
import { randomModel } from '../../src/engine/models/registry';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import type { CausalLM } from '../../src/engine/models/types';
import { RunContext } from '../../src/engine/method-context';
import { SeqFt } from '../../src/engine/methods/seqft';
import { AdaptiveSvd } from '../../src/engine/methods/adaptive-svd';
import { resolveMethod } from '../../src/protocol/config-validate';
import type { Method } from '../../src/engine/methods/method';
import { Optimizer } from '../../src/engine/optim';
import { trainStep } from '../../src/engine/train-step';
import { formatStats, markdownTable, printReport, stats, type BenchRow, type Stats } from './report';
import { positiveIntOption } from './options';

export interface ModelSpec {
  name: string;
  batch: number;
  seq: number;
  config: () => Record<string, unknown>;
  load?: () => CausalLM;
}

const root = process.env.SCULPT_REPO_ROOT ?? process.cwd();
const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;

export const MODELS: ModelSpec[] = [
  {
    name: 'tiny-llama',
    batch: 16,
    seq: 32,
    config: () => readJson(join(root, 'assets/models/tiny-llama/config.json')),
  },
  {
    name: 'sculpt-base',
    batch: 16,
    seq: 64,
    config: () => readJson(join(root, 'assets/models/sculpt-base/config.json')),
    load: () => loadPretrained(join(root, 'assets/models/sculpt-base')),
  },
  {
    name: 'gpt2-small-shape',
    batch: 1,
    seq: 64,
    config: () => ({
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      vocab_size: 50257,
      n_embd: 768,
      n_layer: 12,
      n_head: 12,
      n_positions: 1024,
      layer_norm_epsilon: 1e-5,
      activation_function: 'gelu_new',
    }),
  },
];

/** What a batch labels: `all` positions (a language-model step) or each row's `answer` (instruction tuning). */
export type LabelMode = 'all' | 'answer';
export const LABEL_MODES: readonly LabelMode[] = ['all', 'answer'];
/**
 * `--labels answer`: the tokens labelled at the end of each row, -100 before them (a classification prompt with a
 * one-token answer, Sculpt's usual task).
 */
export const ANSWER_TOKENS = 1;

/** The twin's losses: `lm` for `all`; `hf` and `gather` for `answer` (see torch_twin.py's header). */
export type TwinLoss = 'lm' | 'hf' | 'gather';
export const TWIN_LOSSES: Record<LabelMode, readonly TwinLoss[]> = { all: ['lm'], answer: ['hf', 'gather'] };

export interface BenchBatch {
  /** [batch * seq] row-major token ids. */
  ids: Int32Array;
  /** [batch * seq] row-major labels (HF convention: the model shifts them), -100 = unlabelled. */
  labels: Int32Array;
}

/** The fixed batch both Sculpt and the twin train on: deterministic ids below the spec's vocabulary size. */
export function benchBatch(spec: ModelSpec, labels: LabelMode = 'all'): BenchBatch {
  const V = Number(spec.config().vocab_size);
  const { batch: B, seq: T } = spec;
  if (labels === 'answer' && !(ANSWER_TOKENS < T)) throw new RangeError(`${spec.name}: seq ${T} <= ANSWER_TOKENS`);
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 13) % V);
  return {
    ids,
    labels: labels === 'all' ? ids.slice() : ids.map((id, i) => (i % T >= T - ANSWER_TOKENS ? id : -100)),
  };
}

function labelModes(value: string | undefined): LabelMode[] {
  const modes = (value ?? 'all').split(',');
  const bad = modes.filter((m) => !(LABEL_MODES as readonly string[]).includes(m));
  if (bad.length || modes.length === 0)
    throw new Error(`--labels: expected ${LABEL_MODES.join(', ')} or a comma-separated list of them, got ${value}`);
  return [...new Set(modes as LabelMode[])];
}

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Step times of Sculpt's trainStep, seconds (after `warmup` untimed steps). */
export async function oursStepTimes(
  spec: ModelSpec,
  backend: string,
  methodName: 'seqft' | 'adaptive-svd',
  reps: number,
  warmup = 1,
  labels: LabelMode = 'all',
): Promise<number[]> {
  return (await oursStepRun(spec, backend, methodName, reps, warmup, false, labels)).times;
}

/** Step times plus the method's task-boundary preparation (adaptive-svd: the SVD of every target), seconds. */
export async function oursStepRun(
  spec: ModelSpec,
  backend: string,
  methodName: 'seqft' | 'adaptive-svd',
  reps: number,
  warmup = 1,
  profile = false,
  labels: LabelMode = 'all',
): Promise<{ times: number[]; boundary: number; kernels?: KernelProfile[] }> {
  await selectBackend(backend as 'wasm');
  const run = await prepareSteps(spec, methodName, labels);
  const times: number[] = [];
  for (let r = 0; r < warmup + reps; r++) {
    const t0 = performance.now();
    await run.step();
    if (r >= warmup) times.push((performance.now() - t0) / 1000);
  }
  let kernels: KernelProfile[] | undefined;
  if (profile) {
    // One more step under tf.profile: per-kernel device times (timestamp queries on webgpu), grouped by kernel.
    const info = await tf.profile(() => run.step());
    const by = new Map<string, KernelProfile>();
    for (const k of info.kernels) {
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      const e = by.get(k.name) ?? { name: k.name, count: 0, ms: 0 };
      e.count++;
      e.ms += ms;
      by.set(k.name, e);
    }
    kernels = [...by.values()].sort((a, b) => b.ms - a.ms);
  }
  run.dispose();
  return { times, boundary: run.boundary, kernels };
}

/**
 * The adaptive-svd step against the seqft step, paired: both prepared in one process and stepped in turn (the
 * order swapped every pair), so a slow spell of the machine falls on both. ratio: per-pair adaptive-svd / seqft.
 */
export async function pairedMethodSteps(
  spec: ModelSpec,
  backend: string,
  pairs: number,
  labels: LabelMode = 'all',
): Promise<{ seqft: Stats; svd: Stats; ratio: Stats; q1: number; q3: number }> {
  await selectBackend(backend as 'wasm');
  const seqft = await prepareSteps(spec, 'seqft', labels);
  const svd = await prepareSteps(spec, 'adaptive-svd', labels);
  try {
    const timed = async (run: PreparedSteps) => {
      const t0 = performance.now();
      await run.step();
      return (performance.now() - t0) / 1000;
    };
    for (let i = 0; i < 2; i++) {
      await seqft.step();
      await svd.step();
    }
    const ts: number[] = [];
    const ta: number[] = [];
    for (let i = 0; i < pairs; i++) {
      if (i % 2 === 0) {
        ts.push(await timed(seqft));
        ta.push(await timed(svd));
      } else {
        ta.push(await timed(svd));
        ts.push(await timed(seqft));
      }
    }
    const ratios = ta.map((a, i) => a / ts[i]).sort((a, b) => a - b);
    const quantile = (q: number) => ratios[Math.round(q * (ratios.length - 1))];
    return { seqft: stats(ts), svd: stats(ta), ratio: stats(ratios), q1: quantile(0.25), q3: quantile(0.75) };
  } finally {
    seqft.dispose();
    svd.dispose();
  }
}

export interface PreparedSteps {
  /** The method's task-boundary preparation, seconds. */
  boundary: number;
  /** One training step on the fixed batch, done when its loss is read. */
  step(): Promise<void>;
  dispose(): void;
}

/** Model, method (past its task boundary), optimizer and the fixed batch (benchBatch) on the active backend. */
export async function prepareSteps(
  spec: ModelSpec,
  methodName: 'seqft' | 'adaptive-svd',
  labelMode: LabelMode = 'all',
): Promise<PreparedSteps> {
  const model = spec.load ? spec.load() : randomModel(spec.config(), { seed: 0 });
  const tok = { encode: () => [], decode: () => '', bosId: null, eosId: null, padId: 0 };
  const ctx = new RunContext(
    model,
    tok,
    [{ index: 0, configIndex: 0, name: 'bench', train: [], test: [], validation: [], labels: [], template: '' }],
    { seed: 0, training: { evalBatchSize: 8, maxSeqLen: spec.seq } as never },
    { emit: () => {} },
  );
  const method: Method =
    methodName === 'seqft'
      ? new SeqFt()
      : new AdaptiveSvd(
          resolveMethod({ method: 'adaptive-svd', protectPretrained: true, rank: { policy: 'fixed', ratio: 0.5 } }),
          'bench',
        );
  const b0 = performance.now();
  await method.setup(ctx);
  await method.beforeTask?.(ctx);
  const boundary = (performance.now() - b0) / 1000;
  const trainable = method.trainable(ctx);
  const optimizer = new Optimizer({ name: 'adamw', weightDecay: 0 });
  const data = benchBatch(spec, labelMode);
  if (Number(spec.config().vocab_size) !== model.config.vocabSize)
    throw new Error(
      `${spec.name}: config vocab_size ${String(spec.config().vocab_size)} != the model's ${model.config.vocabSize}`,
    );
  const ids = tf.tensor2d(data.ids, [spec.batch, spec.seq], 'int32');
  // `all`: the labels are the ids tensor itself, as before the workloads existed.
  const labels = labelMode === 'all' ? ids : tf.tensor2d(data.labels, [spec.batch, spec.seq], 'int32');
  const batch = { inputIds: ids, labels, mask: tf.onesLike(ids) as tf.Tensor2D };
  return {
    boundary,
    async step() {
      const { loss } = trainStep(model, method, ctx, batch, trainable, optimizer, 1e-4, 0);
      await loss.data();
      loss.dispose();
    },
    dispose() {
      tf.dispose(labels === ids ? [ids, batch.mask] : [ids, labels, batch.mask]);
      optimizer.dispose();
      method.dispose();
      model.dispose();
    },
  };
}

export interface KernelProfile {
  name: string;
  count: number;
  ms: number;
}

/**
 * Step times of the PyTorch twin on the same model shape and the batch of benchBatch(spec, labels) (passed in a
 * file), with the twin's `loss` (default: the first of TWIN_LOSSES[labels]); loss0 = its first step's loss.
 */
export function peerStepTimes(
  spec: ModelSpec,
  methodName: string,
  reps: number,
  device = 'cpu',
  labels: LabelMode = 'all',
  loss: TwinLoss = TWIN_LOSSES[labels][0],
): { times: number[] | null; note: string; loss0: number | null } {
  const dir = mkdtempSync(join(tmpdir(), 'sculpt-bench-'));
  try {
    return runTwin(dir, spec, methodName, reps, device, labels, loss);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runTwin(
  dir: string,
  spec: ModelSpec,
  methodName: string,
  reps: number,
  device: string,
  labels: LabelMode,
  loss: TwinLoss,
): { times: number[] | null; note: string; loss0: number | null } {
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify(spec.config()));
  const batchFile = join(dir, 'batch.json');
  const data = benchBatch(spec, labels);
  writeFileSync(batchFile, JSON.stringify({ ids: Array.from(data.ids), labels: Array.from(data.labels) }));
  const python = process.env.SCULPT_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const args = [
    join(root, 'scripts/bench/torch_twin.py'),
    '--config',
    cfg,
    '--batch',
    String(spec.batch),
    '--seq',
    String(spec.seq),
    '--steps',
    String(reps),
    '--device',
    device,
    '--batch-file',
    batchFile,
    '--loss',
    loss,
  ];
  if (device === 'cpu') args.push('--threads', '2');
  else args.push('--warmup', '2');
  if (methodName === 'adaptive-svd') args.push('--svd', '0.5');
  const r = spawnSync(python, args, { encoding: 'utf8', timeout: 30 * 60 * 1000 });
  if (r.status !== 0)
    return {
      times: null,
      loss0: null,
      note: `PyTorch twin did not run (${(r.stderr || r.error?.message || '').trim().split('\n').pop()}); install Debian's python3-torch and libopenblas0-pthread`,
    };
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    step_s: number[];
    loss0: number | null;
    torch: string;
    threads: number;
    blas: string;
  };
  return {
    times: out.step_s,
    loss0: out.loss0,
    note:
      device === 'cpu'
        ? `PyTorch ${out.torch}, ${out.threads} threads, BLAS ${out.blas}`
        : `PyTorch ${out.torch} on ${out.blas} (fp32, TF32 off)`,
  };
}

export async function runTrainBench(argv: string[]): Promise<void> {
  const json = argv.includes('--json');
  const reps = positiveIntOption(argv, '--reps', 5);
  const blocks = Math.min(reps, positiveIntOption(argv, '--blocks', 3));
  const per = Math.ceil(reps / blocks);
  const wantModels = arg(argv, 'models')?.split(',');
  const backends = (arg(argv, 'backends') ?? 'wasm,cpu').split(',');
  const workloads = labelModes(arg(argv, 'labels'));
  const rows: BenchRow[] = [];
  const table: string[][] = [];
  const notes = new Set<string>();
  const suffix = (labels: LabelMode) => (labels === 'all' ? '' : `/${labels}`);
  for (const spec of MODELS) {
    if (wantModels ? !wantModels.includes(spec.name) : spec.name === 'gpt2-small-shape') continue;
    if (spec.load && !existsSync(join(root, 'assets/models', spec.name, 'config.json'))) {
      notes.add(`${spec.name}: not installed, skipped`);
      continue;
    }
    const tokens = spec.batch * spec.seq;
    for (const methodName of ['seqft', 'adaptive-svd'] as const) {
      for (const labels of workloads) {
        // The pure-JS cpu backend is far too slow for the GPT-2-small shape.
        const ourBackends = backends.filter((b) => !(b === 'cpu' && spec.name === 'gpt2-small-shape'));
        // Ours and the twin alternate in blocks of `per` steps, so that a slow spell of the machine (on a shared
        // one they last tens of seconds) falls on both sides rather than on whichever ran through it.
        const twinRuns = TWIN_LOSSES[labels].map((loss) => ({
          loss,
          times: [] as number[] | null,
          loss0: null as number | null,
        }));
        const ourTimes = new Map(ourBackends.map((b) => [b, [] as number[]]));
        for (let block = 0; block < blocks; block++) {
          for (const t of twinRuns) {
            if (t.times === null) continue;
            const peer = peerStepTimes(spec, methodName, per, 'cpu', labels, t.loss);
            notes.add(peer.note);
            if (!peer.times) t.times = null;
            else t.times.push(...peer.times);
            if (block === 0) t.loss0 = peer.loss0;
          }
          for (const backend of ourBackends)
            ourTimes.get(backend)!.push(...(await oursStepTimes(spec, backend, methodName, per, 1, labels)));
        }
        const twins = twinRuns.map(({ loss, times, loss0 }) => {
          const s = times ? stats(times) : null;
          return { loss, stats: s, tps: s ? tokens / s.median : null, loss0 };
        });
        const l0 = twins.map((t) => t.loss0);
        if (l0.length > 1 && l0.every((l) => l !== null) && Math.max(...l0) - Math.min(...l0) > 1e-4 * Math.abs(l0[0]))
          notes.add(
            `${spec.name}/${methodName}${suffix(labels)}: the twin's first-step losses differ (${twins.map((t) => `${t.loss} ${t.loss0}`).join(', ')}): its variants do not compute the same loss`,
          );
        // The ratio is taken against the faster twin.
        const best = twins.reduce<(typeof twins)[number] | null>(
          (b, t) => (t.tps !== null && (b === null || t.tps > b.tps!) ? t : b),
          null,
        );
        const multi = twins.length > 1;
        const each = (f: (t: (typeof twins)[number]) => string) =>
          twins.map((t) => (multi ? `${t.loss} ${f(t)}` : f(t))).join('; ');
        for (const backend of ourBackends) {
          const ours = stats(ourTimes.get(backend)!);
          const oursTps = tokens / ours.median;
          const ratio = (t: (typeof twins)[number]) => (t.tps ? (oursTps / t.tps).toFixed(3) : 'n/a');
          const name = `${spec.name}/${backend}/${methodName}${suffix(labels)}`;
          rows.push({
            name,
            ours: oursTps,
            peer: best?.tps ?? null,
            unit: 'tokens/s',
            speedup: best ? oursTps / best.tps! : null,
          });
          if (multi)
            for (const t of twins)
              rows.push({
                name: `${name}/vs-${t.loss}`,
                ours: oursTps,
                peer: t.tps,
                unit: 'tokens/s',
                speedup: t.tps ? oursTps / t.tps : null,
              });
          table.push([
            name,
            `${spec.batch}x${spec.seq}`,
            formatStats(ours, 's', 3),
            each((t) => formatStats(t.stats, 's', 3)),
            oursTps.toFixed(0),
            each((t) => (t.tps ? t.tps.toFixed(0) : 'n/a')),
            !best
              ? 'n/a'
              : multi
                ? `${ratio(best)} vs ${best.loss}; ${twins
                    .filter((t) => t !== best)
                    .map((t) => `vs ${t.loss} ${ratio(t)}`)
                    .join('; ')}`
                : ratio(best),
          ]);
        }
      }
    }
  }
  if (workloads.includes('answer'))
    notes.add(
      `\`/answer\` rows: each row of the batch labels only its last ${ANSWER_TOKENS} token(s), -100 elsewhere, in both Sculpt's batch and the twin's (one batch, passed to the twin in a file). ` +
        'The twin runs twice: `hf` computes the logits at every position and F.cross_entropy(ignore_index=-100) over the shifted labels, as LlamaForCausalLM(labels=...) does; ' +
        '`gather` takes the hidden states of the labelled positions, then the head and the cross-entropy, as Sculpt does. ' +
        'The ratio column and the JSON speedup are against the faster of the two; the JSON rows `.../answer/vs-hf` and `.../answer/vs-gather` against each',
    );
  if (backends.includes('wasm'))
    notes.add(
      `wasm matrix products: ${blasStatus().matmul}${blasKernels()} (SCULPT_BLAS; \`npm run bench -- matmul\` compares the paths)`,
    );
  for (const labels of workloads) {
    for (const backend of backends) {
      for (const spec of MODELS) {
        const seq = rows.find((r) => r.name === `${spec.name}/${backend}/seqft${suffix(labels)}`);
        const svd = rows.find((r) => r.name === `${spec.name}/${backend}/adaptive-svd${suffix(labels)}`);
        if (!seq || !svd) continue;
        // The rows above were measured minutes apart; the method's overhead is read from steps that alternate.
        const paired = await pairedMethodSteps(spec, backend, Math.max(reps, 11), labels);
        const name = `${spec.name}/${backend}${suffix(labels)}`;
        rows.push({
          name: `${name}/adaptive-svd-over-seqft`,
          ours: paired.ratio.median,
          peer: null,
          unit: 'step ratio',
          speedup: null,
        });
        notes.add(
          `${name}: adaptive-svd step = ${paired.ratio.median.toFixed(3)}x the seqft step (median of ${paired.ratio.count} ` +
            `alternating pairs in one process, quartiles ${paired.q1.toFixed(3)}-${paired.q3.toFixed(3)}; ` +
            `seqft ${formatStats(paired.seqft, 's', 3)}, adaptive-svd ${formatStats(paired.svd, 's', 3)}); ` +
            `from the rows above, measured apart: ${(seq.ours / svd.ours).toFixed(2)}x`,
        );
      }
    }
  }
  printReport(
    'train',
    markdownTable(
      [
        'model/backend/method[/labels]',
        'batch',
        'ours step',
        'PyTorch step',
        'ours tok/s',
        'PyTorch tok/s',
        'ratio (ours / the faster twin)',
      ],
      table,
    ),
    [...notes],
    rows,
    json,
  );
}

/**
 * OpenBLAS's build and the kernels it picked (its config string ends with the core family), and the variable
 * that overrides that pick: OPENBLAS_CORETYPE=Haswell keeps a CPU with AVX-512 on the AVX2 kernels, which
 * changes the products' speed by up to 2.7x, so a table must say which it ran.
 */
function blasKernels(): string {
  const config = blasStatus().config;
  if (!config) return '';
  const coreType = process.env.OPENBLAS_CORETYPE;
  return ` (${config}; OPENBLAS_CORETYPE${coreType === undefined ? ' unset' : `=${coreType}`})`;
}
