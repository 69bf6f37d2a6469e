/**
 * `npm run bench -- svd [--json] [--reps N] [--ts-reps N] [--layers L] [--no-ts] [--no-peer] [--no-peer-f64] [--peer-device cuda]`
 *
 * The task-boundary SVD of a GPT-2-small-shaped model: 12 layers x (attn.c_attn 768x2304, attn.c_proj 768x768,
 * mlp.c_fc 768x3072, mlp.c_proj 3072x768) = 48 random float32 matrices from a fixed seed, decomposed by Sculpt's
 * batch SVD (LAPACK path and TypeScript path) and, in the same invocation and environment, by
 * torch.linalg.svd(W, full_matrices=False) in float32 (scripts/bench/svd_peer.py) on the very same matrices,
 * which are handed over in a temporary file. One extra peer pass in float64 gives the like-for-like precision figure.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../../src/data/rng';
import { lapackStatus, svdBatch, type DenseMatrix, type Svd, type SvdPath } from '../../src/engine/linalg';
import { formatStats, markdownTable, printReport, speedup, stats, type BenchRow, type Stats } from './report';

const TARGETS: readonly [string, number, number][] = [
  ['attn.c_attn', 768, 2304],
  ['attn.c_proj', 768, 768],
  ['mlp.c_fc', 768, 3072],
  ['mlp.c_proj', 3072, 768],
];
const SEED = 20240917;
/** Debian's python3 with python3-torch; SCULPT_PYTHON names another (e.g. a GPU machine's). */
const PYTHON = process.env.SCULPT_PYTHON ?? '/usr/bin/python3';

interface Options {
  json: boolean;
  reps: number;
  tsReps: number;
  layers: number;
  ts: boolean;
  peer: boolean;
  peerF64: boolean;
}

/** Seconds per repetition: the whole set, and each shape's matrices as their own batch. */
interface Timings {
  total: number[];
  shapes: Record<string, number[]>;
}

function parseOptions(argv: readonly string[]): Options {
  const num = (flag: string, fallback: number): number => {
    const i = argv.indexOf(flag);
    if (i < 0) return fallback;
    const v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${flag} expects a positive integer, got ${argv[i + 1]}`);
    return v;
  };
  return {
    json: argv.includes('--json'),
    reps: num('--reps', 3),
    tsReps: num('--ts-reps', 1),
    layers: num('--layers', 12),
    ts: !argv.includes('--no-ts'),
    peer: !argv.includes('--no-peer'),
    peerF64: !argv.includes('--no-peer-f64'),
  };
}

/** Gaussian N(0, 0.02²) weights (GPT-2's init scale) from a fixed seed, layer by layer. */
function targetMatrices(layers: number): DenseMatrix[] {
  const rng = new Rng(SEED);
  const out: DenseMatrix[] = [];
  for (let l = 0; l < layers; l++) {
    for (const [name, rows, cols] of TARGETS) {
      const data = new Float32Array(rows * cols);
      for (let i = 0; i < data.length; i += 2) {
        // Box-Muller: two normals per pair of uniforms.
        const r = 0.02 * Math.sqrt(-2 * Math.log(1 - rng.next()));
        const t = 2 * Math.PI * rng.next();
        data[i] = r * Math.cos(t);
        if (i + 1 < data.length) data[i + 1] = r * Math.sin(t);
      }
      out.push({ rows, cols, data, name: `h.${l}.${name}.weight` });
    }
  }
  return out;
}

const shapeKey = (a: { rows: number; cols: number }): string => `${a.rows}x${a.cols}`;

function groupByShape(mats: readonly DenseMatrix[]): Map<string, DenseMatrix[]> {
  const groups = new Map<string, DenseMatrix[]>();
  for (const a of mats) groups.set(shapeKey(a), [...(groups.get(shapeKey(a)) ?? []), a]);
  return groups;
}

/** What is timed: a path, and either full thin SVDs or the task-boundary need (all values, top r/2 vectors). */
interface Run {
  key: string;
  path: SvdPath;
  topHalf: boolean;
  label: string;
}

/** Times one repetition into `into`; returns the decomposition of `probe` (one of mats) for a sanity check. */
async function timeOurs(
  run: Run,
  mats: readonly DenseMatrix[],
  into: Timings,
  withTotal: boolean,
  probe: DenseMatrix,
): Promise<Svd> {
  const options = (group: readonly DenseMatrix[]) => ({
    path: run.path,
    vectorsPerMatrix: run.topHalf ? group.map((a) => Math.min(a.rows, a.cols) >> 1) : undefined,
  });
  let found: Svd | undefined;
  if (withTotal) {
    const t = performance.now();
    const rs = await svdBatch(mats, options(mats));
    into.total.push((performance.now() - t) / 1000);
    found = rs[mats.indexOf(probe)];
  }
  let sum = 0;
  for (const [key, group] of groupByShape(mats)) {
    const t = performance.now();
    const rs = await svdBatch(group, options(group));
    const dt = (performance.now() - t) / 1000;
    sum += dt;
    (into.shapes[key] ??= []).push(dt);
    if (group.includes(probe)) found ??= rs[group.indexOf(probe)];
  }
  if (!withTotal) into.total.push(sum);
  if (!found) throw new Error('SVD bench: the probe matrix is not among the timed matrices');
  return found;
}

function peerScript(): string {
  const candidates = [
    join(__dirname, '..', 'scripts', 'bench', 'svd_peer.py'),
    join(process.cwd(), 'scripts', 'bench', 'svd_peer.py'),
  ];
  return candidates.find((p) => existsSync(p)) ?? candidates[1];
}

function runPeer(args: readonly string[]): { ok: true; value: any } | { ok: false; reason: string } {
  if (PYTHON.startsWith('/') && !existsSync(PYTHON)) return { ok: false, reason: `${PYTHON} not found` };
  const device = process.argv.includes('--peer-device')
    ? ['--device', process.argv[process.argv.indexOf('--peer-device') + 1]]
    : [];
  const r = spawnSync(PYTHON, [peerScript(), ...args, ...(args.includes('--probe') ? [] : device)], {
    encoding: 'utf8',
    env: process.env,
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-1)[0];
    return { ok: false, reason: why };
  }
  try {
    return { ok: true, value: JSON.parse(r.stdout.trim().split('\n').slice(-1)[0]) };
  } catch {
    return { ok: false, reason: `unreadable output: ${r.stdout.slice(0, 200)}` };
  }
}

/** ||W - U S Vᵀ||_F / ||W||_F of one decomposition, to show the timed results are real. */
function reconstructionError(a: DenseMatrix, r: Svd): number {
  const { rows: m, cols: n, data } = a;
  const k = r.k;
  const us = new Float64Array(k);
  let err = 0;
  let norm = 0;
  for (let i = 0; i < m; i++) {
    for (let l = 0; l < k; l++) us[l] = r.U[i * k + l] * r.S[l];
    for (let j = 0; j < n; j++) {
      let s = 0;
      const vb = j * k;
      for (let l = 0; l < k; l++) s += us[l] * r.V[vb + l];
      const w = data[i * n + j];
      err += (w - s) * (w - s);
      norm += w * w;
    }
  }
  return Math.sqrt(err / norm);
}

export async function runSvdBench(argv: readonly string[]): Promise<void> {
  const opt = parseOptions(argv);
  const notes: string[] = [];
  const mats = targetMatrices(opt.layers);
  const count = mats.length;
  const lapack = lapackStatus();
  const threads = availableParallelism();
  const openblasEnv = Object.entries(process.env)
    .filter(([k]) => /^(OPENBLAS_|OMP_|MKL_)/.test(k))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  notes.push(
    `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${threads} cores; node ${process.version}; env (both sides): ${openblasEnv || '(no OPENBLAS_/OMP_/MKL_ variables)'}`,
  );
  notes.push(
    lapack.available
      ? `Sculpt LAPACK path: LAPACKE_dgesdd for full SVDs, dgeqrf+dgebrd+dbdsdc+dormbr(+dormqr) for top-k (float64) from ${lapack.library} -> ${lapack.backend ?? 'unknown LAPACK'}; ${threads} matrices at a time, single-threaded BLAS each`
      : `Sculpt LAPACK path unavailable: ${lapack.reason}`,
  );
  notes.push(
    `Sculpt TS path: pure TypeScript float64 (Householder QR/bidiagonalisation + implicit-shift QR), ${threads} worker threads`,
  );
  notes.push(
    '"all S + top r/2 vectors" is what a task boundary needs (every singular value, the protected top-k vectors with k = r/2); the peer row beside it is still the full thin SVD, torch having no such mode',
  );

  // The peer reads the very same float32 matrices.
  const dir = mkdtempSync(join(tmpdir(), 'sculpt-svd-bench-'));
  const file = join(dir, 'matrices.f32');
  const shapes = JSON.stringify(mats.map((a) => [a.rows, a.cols]));
  let peerReason: string | null = null;
  const peer: Timings = { total: [], shapes: {} };
  try {
    if (opt.peer) {
      const bytes = Buffer.concat(mats.map((a) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength)));
      writeFileSync(file, bytes);
      const probe = runPeer(['--probe']);
      if (probe.ok) {
        const p = probe.value;
        notes.push(
          `peer: torch ${p.torch} (python ${p.python}), torch.linalg.svd(W, full_matrices=False) in float32, ${p.torch_threads} torch intra-op thread(s), ${p.openblas_threads ?? 'unknown'} OpenBLAS thread(s); BLAS/LAPACK mapped: ${p.blas_libraries.join(', ') || 'none found'}; matmul 1024² f32 ${p.matmul_1024_f32_gflops} GFLOP/s`,
        );
      } else {
        peerReason = probe.reason;
      }
    } else {
      peerReason = 'skipped (--no-peer)';
    }

    const runs: Run[] = [];
    if (lapack.available) {
      runs.push({ key: 'lapack', path: 'lapack', topHalf: false, label: 'LAPACK f64, full thin SVD' });
      runs.push({
        key: 'lapack-top-half',
        path: 'lapack',
        topHalf: true,
        label: 'LAPACK f64, all S + top r/2 vectors',
      });
      await svdBatch(mats.slice(0, 2), { path: 'lapack' }); // load and warm up
    }
    const tsRun: Run = { key: 'ts', path: 'ts', topHalf: false, label: 'TypeScript f64, full thin SVD' };
    const ours = new Map<Run, Timings>(
      [...runs, ...(opt.ts ? [tsRun] : [])].map((r) => [r, { total: [], shapes: {} }]),
    );
    const probe = mats[1]; // h.0.attn.c_proj, 768 x 768: cheap to check
    const check: string[] = [];
    for (let rep = 0; rep < opt.reps; rep++) {
      for (const run of runs) {
        const r = await timeOurs(run, mats, ours.get(run)!, true, probe);
        if (rep === 0 && !run.topHalf) check.push(`${run.key} ${reconstructionError(probe, r).toExponential(1)}`);
      }
      if (peerReason === null) {
        const r = runPeer(['--file', file, '--shapes', shapes, '--reps', '1']);
        if (r.ok) {
          peer.total.push(...r.value.total);
          for (const [k, v] of Object.entries<number[]>(r.value.shapes)) (peer.shapes[k] ??= []).push(...v);
        } else {
          peerReason = r.reason;
        }
      }
    }
    // One float64 pass of the peer: the like-for-like precision comparison for the full thin SVD.
    let peer64: number | null = null;
    if (peerReason === null && opt.peerF64) {
      const r = runPeer(['--file', file, '--shapes', shapes, '--reps', '1', '--dtype', 'float64']);
      if (r.ok) peer64 = r.value.total[0];
      else notes.push(`torch float64 pass failed: ${r.reason}`);
    }
    if (opt.ts) {
      for (let rep = 0; rep < opt.tsReps; rep++) {
        const r = await timeOurs(tsRun, mats, ours.get(tsRun)!, false, probe);
        if (rep === 0) check.push(`ts ${reconstructionError(probe, r).toExponential(1)}`);
      }
      notes.push(
        `TS path: ${opt.tsReps} repetition(s) (it is slow); its total is the sum of the four per-shape batches of ${opt.layers} matrices, each batch run on ${threads} worker threads`,
      );
    }
    if (check.length)
      notes.push(
        `reconstruction ||W - U S Vᵀ||_F / ||W||_F of h.0.attn.c_proj from the timed runs: ${check.join(', ')}`,
      );
    if (peerReason !== null) notes.push(`peer not measured: ${peerReason}`);

    const rows: BenchRow[] = [];
    const cells: string[][] = [];
    const peerStats = (xs: number[] | undefined): Stats | null =>
      peerReason === null && xs?.length ? stats(xs) : null;
    for (const [run, t] of ours) {
      const entries: [string, number[], number[] | undefined][] = [
        [`total, ${count} matrices`, t.total, peer.total],
        ...[...groupByShape(mats).entries()].map(([key, g]): [string, number[], number[] | undefined] => [
          `${key} x${g.length}`,
          t.shapes[key],
          peer.shapes[key],
        ]),
      ];
      for (const [what, xs, ps] of entries) {
        const o = stats(xs);
        const p = peerStats(ps);
        const s = speedup(o.median, p ? p.median : null);
        rows.push({
          name: `svd ${what} (${run.key})`,
          ours: round(o.median),
          peer: p ? round(p.median) : null,
          unit: 's',
          speedup: s === null ? null : round(s),
        });
        cells.push([run.label, what, formatStats(o), formatStats(p), s === null ? 'n/a' : `${s.toFixed(2)}x`]);
      }
    }
    const full = [...ours].find(([run]) => run.key === 'lapack');
    if (peer64 !== null && full) {
      const o = stats(full[1].total);
      const sp = speedup(o.median, peer64);
      rows.push({
        name: `svd total, ${count} matrices (lapack vs torch float64)`,
        ours: round(o.median),
        peer: round(peer64),
        unit: 's',
        speedup: sp === null ? null : round(sp),
      });
      cells.push([
        'LAPACK f64, full thin SVD',
        `total, ${count} matrices, peer in float64`,
        formatStats(o),
        `${peer64.toFixed(2)} s (n=1, float64)`,
        sp === null ? 'n/a' : `${sp.toFixed(2)}x`,
      ]);
    }
    const table = markdownTable(
      [
        'Sculpt path',
        'matrices',
        'Sculpt (median, min-max)',
        'torch.linalg.svd float32 (median, min-max)',
        'speedup (peer/ours)',
      ],
      cells,
    );
    printReport('svd', `## SVD of GPT-2-small's ${count} target matrices\n\n${table}`, notes, rows, opt.json);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
