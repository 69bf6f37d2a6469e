/**
 * `npm run bench -- matmul [--json] [--reps N] [--steps N] [--models a,b]`: the wasm backend's matrix products
 * on the native BLAS (SCULPT_BLAS, src/engine/linalg/blas.ts) against tfjs's wasm kernels, in one process.
 * - products: GFLOP/s of every product shape of a training step of each model (forward, and the two
 *   gradient products of each), BLAS with the transposes as flags against the engine's wasm path (plain
 *   layout, operands transposed explicitly; src/engine/kernels/matmul.ts);
 * - steps: the whole training step (seqft, adaptive-svd) with the products on each path.
 * The two paths alternate repetition by repetition, so load from elsewhere falls on both alike. Rows are
 * `<model>/<product>` and `<model>/step/<method>`; ours = BLAS, peer = wasm kernels, speedup = ours / peer for
 * GFLOP/s and peer / ours for step times (>= 1: BLAS faster).
 */
import { cpus } from 'node:os';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { blasProducts, useBlasProducts } from '../../src/engine/kernels/blas-matmul';
import { matMul } from '../../src/engine/kernels/matmul';
import { blasStatus } from '../../src/engine/linalg/blas';
import { MODELS, prepareSteps, type ModelSpec } from './train';
import { formatStats, markdownTable, printReport, speedup, stats, type BenchRow } from './report';

interface Product {
  name: string;
  /** Leading (batch) axes, then m x k times k x n. */
  batch: number[];
  m: number;
  k: number;
  n: number;
  transposeA: boolean;
  transposeB: boolean;
}

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The products of one training step of a decoder with this config (HF keys of GPT-2 or LLaMA). */
export function stepProducts(spec: ModelSpec): Product[] {
  const c = spec.config();
  const d = Number(c.hidden_size ?? c.n_embd);
  const ff = Number(c.intermediate_size ?? c.n_inner ?? 4 * d);
  const V = Number(c.vocab_size);
  const H = Number(c.num_attention_heads ?? c.n_head);
  const hd = d / H;
  const M = spec.batch * spec.seq;
  const T = spec.seq;
  const out: Product[] = [];
  // y = x Wᵀ: forward x[M,in]·W[out,in]ᵀ, gradients dx = dy·W and dW = dyᵀ·x.
  const linear = (name: string, inDim: number, outDim: number): void => {
    out.push({ name: `${name} y=xWᵀ`, batch: [], m: M, k: inDim, n: outDim, transposeA: false, transposeB: true });
    out.push({ name: `${name} dx=dy·W`, batch: [], m: M, k: outDim, n: inDim, transposeA: false, transposeB: false });
    out.push({ name: `${name} dW=dyᵀx`, batch: [], m: outDim, k: M, n: inDim, transposeA: true, transposeB: false });
  };
  linear(`proj ${d}→${d}`, d, d);
  linear(`mlp ${d}→${ff}`, d, ff);
  linear(`mlp ${ff}→${d}`, ff, d);
  linear(`head ${d}→${V}`, d, V);
  const bh = [spec.batch, H];
  out.push({ name: `scores q·kᵀ`, batch: bh, m: T, k: hd, n: T, transposeA: false, transposeB: true });
  out.push({ name: `context p·v`, batch: bh, m: T, k: T, n: hd, transposeA: false, transposeB: false });
  out.push({ name: `context dp=dy·vᵀ`, batch: bh, m: T, k: hd, n: T, transposeA: false, transposeB: true });
  out.push({ name: `context dv=pᵀ·dy`, batch: bh, m: T, k: T, n: hd, transposeA: true, transposeB: false });
  return out;
}

/** Seconds per product: the median over `reps` of a timed loop sized to ~50 ms, for each path. */
function timeProduct(p: Product, reps: number): { blas: number[]; wasm: number[] } {
  const blas = blasProducts();
  const shapeA = [...p.batch, ...(p.transposeA ? [p.k, p.m] : [p.m, p.k])];
  const shapeB = [...p.batch, ...(p.transposeB ? [p.n, p.k] : [p.k, p.n])];
  const a = tf.randomNormal(shapeA, 0, 1, 'float32', 1);
  const b = tf.randomNormal(shapeB, 0, 1, 'float32', 2);
  const once = (): void => tf.dispose(matMul(a, b, p.transposeA, p.transposeB));
  const loop = (native: boolean, n: number): number => {
    useBlasProducts(native ? blas : null);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) once();
    return (performance.now() - t0) / 1000 / n;
  };
  try {
    loop(true, 1);
    loop(false, 1);
    const n = Math.max(1, Math.min(200, Math.round(0.05 / loop(false, 1))));
    const times = { blas: [] as number[], wasm: [] as number[] };
    for (let r = 0; r < reps; r++) {
      times.blas.push(loop(true, n));
      times.wasm.push(loop(false, n));
    }
    return times;
  } finally {
    useBlasProducts(blas);
    tf.dispose([a, b]);
  }
}

export async function runMatmulBench(argv: string[]): Promise<void> {
  const json = argv.includes('--json');
  const reps = Number(arg(argv, 'reps') ?? 7);
  const steps = Number(arg(argv, 'steps') ?? 5);
  const wanted = (arg(argv, 'models') ?? 'sculpt-base').split(',');
  const info = await selectBackend('wasm');
  const blas = blasProducts();
  const notes = [
    `${info.device}; products: ${info.matmul ?? 'wasm'}${blasStatus().config ? ` (${blasStatus().config})` : ''}`,
    `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} logical cores; Node ${process.version}`,
    'the two paths alternate repetition by repetition; figures are medians (min-max)',
  ];
  if (!blas) {
    printReport('matmul', 'no native BLAS: nothing to compare', [...notes, ...info.fallbacks], [], json);
    return;
  }
  const rows: BenchRow[] = [];
  const productTable: string[][] = [];
  const stepTable: string[][] = [];
  for (const spec of MODELS.filter((m) => wanted.includes(m.name))) {
    for (const p of stepProducts(spec)) {
      const t = timeProduct(p, reps);
      const flops = 2 * p.m * p.n * p.k * p.batch.reduce((x, y) => x * y, 1);
      const rate = (s: number[]) => stats(s.map((x) => flops / x / 1e9));
      const [ours, peer] = [rate(t.blas), rate(t.wasm)];
      const label = `${p.batch.length ? `${p.batch.join('x')}x ` : ''}${p.m}x${p.k}x${p.n}`;
      rows.push({
        name: `${spec.name}/${p.name}`,
        ours: ours.median,
        peer: peer.median,
        unit: 'GFLOP/s',
        speedup: ours.median / peer.median,
      });
      productTable.push([
        `${spec.name}/${p.name}`,
        label,
        formatStats(ours, '', 1),
        formatStats(peer, '', 1),
        (ours.median / peer.median).toFixed(2),
      ]);
    }
    for (const methodName of ['seqft', 'adaptive-svd'] as const) {
      const run = await prepareSteps(spec, methodName);
      const times = { blas: [] as number[], wasm: [] as number[] };
      const timed = async (native: boolean): Promise<number> => {
        useBlasProducts(native ? blas : null);
        const t0 = performance.now();
        await run.step();
        return (performance.now() - t0) / 1000;
      };
      try {
        await timed(true);
        await timed(false);
        for (let r = 0; r < steps; r++) {
          times.blas.push(await timed(true));
          times.wasm.push(await timed(false));
        }
      } finally {
        useBlasProducts(blas);
        run.dispose();
      }
      const [ours, peer] = [stats(times.blas), stats(times.wasm)];
      rows.push({
        name: `${spec.name}/step/${methodName}`,
        ours: ours.median,
        peer: peer.median,
        unit: 's',
        speedup: speedup(ours.median, peer.median),
      });
      stepTable.push([
        `${spec.name}/step/${methodName}`,
        `${spec.batch}x${spec.seq}`,
        formatStats(ours, 's', 3),
        formatStats(peer, 's', 3),
        (peer.median / ours.median).toFixed(2),
      ]);
    }
  }
  const table = [
    markdownTable(['product', 'shape', 'BLAS GFLOP/s', 'wasm GFLOP/s', 'ratio'], productTable),
    markdownTable(['training step', 'batch', 'BLAS', 'wasm', 'ratio'], stepTable),
  ].join('\n\n');
  printReport('matmul', table, notes, rows, json);
}
