/**
 * A rough timing of the optimizer's end of a training step on the wasm backend, over sculpt-base's 38 variables
 * (1.84M floats): the fused AdamW update and global-norm clipping (src/engine/kernels/wasm-adamw.ts), with the
 * update in the SIMD module (simd/kernels.wat) and in TypeScript (SCULPT_WASM_UNFUSED=simd), against the tf ops
 * they replace (what SCULPT_WASM_UNFUSED=adamw,clip runs). Each path updates its own copy of the
 * variables with the same gradients; the two alternate repetition by repetition, so load from elsewhere falls on
 * both alike; medians. Clipping is timed where it scales (max norm 1) and where it does not (1e9).
 * Not part of `npm run bench`:
 *   node scripts/run-ts.mjs scripts/bench/wasm-adamw.ts [reps=9]
 */
import { join } from 'node:path';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { Optimizer, clipByGlobalNorm } from '../../src/engine/optim';
import { Rng } from '../../src/data/rng';

const reps = Number(process.argv[2] ?? 9);

/** fused: the kernels with the SIMD module; ts: the same kernels in TypeScript; unfused: the tf ops. */
type Path = 'fused' | 'ts' | 'unfused';
const PATHS: Path[] = ['fused', 'ts', 'unfused'];
const SWITCHES: Record<Path, string> = { fused: '', ts: 'simd', unfused: 'adamw,clip' };

/** Runs f with the path's switch set; milliseconds. Wasm kernels run synchronously: done when f returns. */
function timed(path: Path, f: () => void): number {
  process.env.SCULPT_WASM_UNFUSED = SWITCHES[path];
  try {
    const t0 = performance.now();
    f();
    return performance.now() - t0;
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const info = await selectBackend('wasm');
  const model = loadPretrained(join(process.env.SCULPT_REPO_ROOT ?? process.cwd(), 'assets', 'models', 'sculpt-base'));
  const vars = Object.fromEntries(
    PATHS.map((p) => [p, new Map([...model.params].map(([n, v]) => [n, tf.variable(v.clone(), true)]))]),
  ) as Record<Path, Map<string, tf.Variable>>;
  const floats = [...model.params.values()].reduce((a, v) => a + v.size, 0);
  const shapes = [...model.params].map(([n, v]) => [n, v.shape] as const);
  model.dispose();
  const opts = Object.fromEntries(PATHS.map((p) => [p, new Optimizer({ name: 'adamw', weightDecay: 0.01 })])) as Record<
    Path,
    Optimizer
  >;
  const rng = new Rng(1);
  const gradients = (): Map<string, tf.Tensor> =>
    new Map(
      shapes.map(([n, shape]) => {
        const size = shape.reduce((a, d) => a * d, 1);
        return [
          n,
          tf.tensor(
            Float32Array.from({ length: size }, () => 0.01 * (2 * rng.next() - 1)),
            shape,
          ),
        ];
      }),
    );

  const ms: Record<string, Record<Path, number[]>> = {};
  const record = (what: string, path: Path, t: number): void => {
    ms[what] ??= { fused: [], ts: [], unfused: [] };
    ms[what][path].push(t);
  };
  for (let r = -2; r < reps; r++) {
    const grads = gradients();
    // Alternate which goes first, so neither always follows the other's garbage; two warm-up rounds.
    for (const path of r % 2 ? [...PATHS].reverse() : PATHS) {
      const tAdam = timed(path, () => opts[path].apply(grads, vars[path], 1e-3));
      for (const [label, maxNorm] of [
        ['clip (scales)', 1],
        ['clip (within)', 1e9],
      ] as const) {
        let out: ReturnType<typeof clipByGlobalNorm> | undefined;
        const t = timed(path, () => {
          out = clipByGlobalNorm(grads, maxNorm);
        });
        tf.dispose([out!.norm!, ...out!.grads.values()]);
        if (r >= 0) record(label, path, t);
      }
      if (r >= 0) record('adamw', path, tAdam);
    }
    tf.dispose([...grads.values()]);
  }

  const maxDiff = (path: Path): number => {
    let d = 0;
    for (const [n, p] of vars[path]) {
      const a = p.dataSync();
      const b = vars.unfused.get(n)!.dataSync();
      for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
    }
    return d;
  };
  console.log(
    `wasm AdamW (weight decay 0.01) and clipping, sculpt-base's ${shapes.length} variables (${floats} floats), ${info.device}, ${reps} reps each`,
  );
  for (const [what, byPath] of Object.entries(ms)) {
    const line = PATHS.map(
      (p) => `${p} ${median(byPath[p]).toFixed(2)} ms (${byPath[p].map((m) => m.toFixed(1)).join(', ')})`,
    );
    console.log(
      `  ${what.padEnd(14)} ${line.join('  ')}  unfused / fused ${(median(byPath.unfused) / median(byPath.fused)).toFixed(2)}, ts / fused ${(median(byPath.ts) / median(byPath.fused)).toFixed(2)}`,
    );
  }
  console.log(
    `  max |p - p unfused| after ${reps + 2} steps: fused ${maxDiff('fused').toExponential(2)}, ts ${maxDiff('ts').toExponential(2)}`,
  );
  for (const path of PATHS) {
    opts[path].dispose();
    tf.dispose([...vars[path].values()]);
  }
}

void main();
