/**
 * `npm run bench -- train [--json] [--reps N] [--models a,b] [--backends cpu,wasm]`: training tokens/s of
 * Sculpt's step (forward, backward, method hooks, AdamW) per model, backend and method, beside a PyTorch twin
 * of the same model, batch and method run in the same invocation (scripts/bench/torch_twin.py, Debian
 * python3-torch, fp32, both cores). Rows are `<model>/<backend>/<method>`; speedup = ours / peer tokens/s.
 * adaptive-svd here is the dense two-sided projection with k = floor(0.5 min_dim) on every attention/MLP
 * matrix and post-step re-projection, the method's per-step cost.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
import { formatStats, markdownTable, printReport, stats, type BenchRow } from './report';

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
): Promise<number[]> {
  return (await oursStepRun(spec, backend, methodName, reps, warmup)).times;
}

/** Step times plus the method's task-boundary preparation (adaptive-svd: the SVD of every target), seconds. */
export async function oursStepRun(
  spec: ModelSpec,
  backend: string,
  methodName: 'seqft' | 'adaptive-svd',
  reps: number,
  warmup = 1,
  profile = false,
): Promise<{ times: number[]; boundary: number; kernels?: KernelProfile[] }> {
  await selectBackend(backend as 'wasm');
  const run = await prepareSteps(spec, methodName);
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

export interface PreparedSteps {
  /** The method's task-boundary preparation, seconds. */
  boundary: number;
  /** One training step on the fixed batch, done when its loss is read. */
  step(): Promise<void>;
  dispose(): void;
}

/** Model, method (past its task boundary), optimizer and a fixed batch on the active backend. */
export async function prepareSteps(spec: ModelSpec, methodName: 'seqft' | 'adaptive-svd'): Promise<PreparedSteps> {
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
  const V = model.config.vocabSize;
  const ids = tf.tensor2d(
    Int32Array.from({ length: spec.batch * spec.seq }, (_, i) => (i * 7919 + 13) % V),
    [spec.batch, spec.seq],
    'int32',
  );
  const batch = { inputIds: ids, labels: ids, mask: tf.onesLike(ids) as tf.Tensor2D };
  return {
    boundary,
    async step() {
      const { loss } = trainStep(model, method, ctx, batch, trainable, optimizer, 1e-4, 0);
      await loss.data();
      loss.dispose();
    },
    dispose() {
      tf.dispose([ids, batch.mask]);
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

export function peerStepTimes(
  spec: ModelSpec,
  methodName: string,
  reps: number,
  device = 'cpu',
): { times: number[] | null; note: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sculpt-bench-'));
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify(spec.config()));
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
  ];
  if (device === 'cpu') args.push('--threads', '2');
  else args.push('--warmup', '2');
  if (methodName === 'adaptive-svd') args.push('--svd', '0.5');
  const r = spawnSync(python, args, { encoding: 'utf8', timeout: 30 * 60 * 1000 });
  if (r.status !== 0)
    return {
      times: null,
      note: `PyTorch twin did not run (${(r.stderr || r.error?.message || '').trim().split('\n').pop()}); install Debian's python3-torch and libopenblas0-pthread`,
    };
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return {
    times: out.step_s,
    note:
      device === 'cpu'
        ? `PyTorch ${out.torch}, ${out.threads} threads, BLAS ${out.blas}`
        : `PyTorch ${out.torch} on ${out.blas} (fp32, TF32 off)`,
  };
}

export async function runTrainBench(argv: string[]): Promise<void> {
  const json = argv.includes('--json');
  const reps = Number(arg(argv, 'reps') ?? 5);
  const wantModels = arg(argv, 'models')?.split(',');
  const backends = (arg(argv, 'backends') ?? 'wasm,cpu').split(',');
  const rows: BenchRow[] = [];
  const table: string[][] = [];
  const notes = new Set<string>();
  for (const spec of MODELS) {
    if (wantModels ? !wantModels.includes(spec.name) : spec.name === 'gpt2-small-shape') continue;
    if (spec.load && !existsSync(join(root, 'assets/models', spec.name, 'config.json'))) {
      notes.add(`${spec.name}: not installed, skipped`);
      continue;
    }
    const tokens = spec.batch * spec.seq;
    for (const methodName of ['seqft', 'adaptive-svd'] as const) {
      const peer = peerStepTimes(spec, methodName, reps);
      notes.add(peer.note);
      const peerS = peer.times ? stats(peer.times) : null;
      for (const backend of backends) {
        // The pure-JS cpu backend is far too slow for the GPT-2-small shape.
        if (backend === 'cpu' && spec.name === 'gpt2-small-shape') continue;
        const ours = stats(await oursStepTimes(spec, backend, methodName, reps));
        const oursTps = tokens / ours.median;
        const peerTps = peerS ? tokens / peerS.median : null;
        const name = `${spec.name}/${backend}/${methodName}`;
        rows.push({
          name,
          ours: oursTps,
          peer: peerTps,
          unit: 'tokens/s',
          speedup: peerTps ? oursTps / peerTps : null,
        });
        table.push([
          name,
          `${spec.batch}x${spec.seq}`,
          formatStats(ours, 's', 3),
          formatStats(peerS, 's', 3),
          oursTps.toFixed(0),
          peerTps ? peerTps.toFixed(0) : 'n/a',
          peerTps ? (oursTps / peerTps).toFixed(3) : 'n/a',
        ]);
      }
    }
  }
  if (backends.includes('wasm'))
    notes.add(
      `wasm matrix products: ${blasStatus().matmul} (SCULPT_BLAS; \`npm run bench -- matmul\` compares the paths)`,
    );
  for (const backend of backends) {
    for (const spec of MODELS) {
      const seq = rows.find((r) => r.name === `${spec.name}/${backend}/seqft`);
      const svd = rows.find((r) => r.name === `${spec.name}/${backend}/adaptive-svd`);
      if (seq && svd)
        notes.add(`${spec.name}/${backend}: adaptive-svd step = ${(seq.ours / svd.ours).toFixed(2)}x the seqft step`);
    }
  }
  printReport(
    'train',
    markdownTable(
      ['model/backend/method', 'batch', 'ours step', 'PyTorch step', 'ours tok/s', 'PyTorch tok/s', 'ratio'],
      table,
    ),
    [...notes],
    rows,
    json,
  );
}
