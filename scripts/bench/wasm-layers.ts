/**
 * A rough timing of the wasm backend's fused layer kernels (src/engine/kernels/wasm-rope.ts, wasm-norm.ts,
 * wasm-activation.ts) against the tf ops they replace (what SCULPT_WASM_UNFUSED=rope,norm,activation runs), at
 * sculpt-base's training shapes (batch 16 × 64 tokens, width 128, 4 heads of 32, MLP 344):
 *   rope     forward and dx of x [16, 64, 4, 32] with cos/sin [16, 64, 1, 32] (position ids from the mask)
 *   rmsnorm  forward, dx and dw of x [1024, 128]
 *   silu     forward and dx of x [1024, 344]
 *   gelu_new the same (GPT-2's activation, at sculpt-base's MLP shape for comparison)
 * each under tf.grads with a given dy (nothing around the layer itself), and one whole training step of
 * sculpt-base (seqft, AdamW; scripts/bench/train.ts's prepareSteps) with the kernels on and off. The two paths
 * alternate repetition by repetition, so load from elsewhere falls on both alike; medians. The step's kernel
 * profile (one step each way under tf.profile) lists where the time goes.
 * Not part of `npm run bench`:
 *   node scripts/run-ts.mjs scripts/bench/wasm-layers.ts [reps=21] [steps=7]
 */
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { activation, applyRope, rmsNorm } from '../../src/engine/models/layers';
import { Rng } from '../../src/data/rng';
import { MODELS, prepareSteps } from './train';

const reps = Number(process.argv[2] ?? 21);
const steps = Number(process.argv[3] ?? 7);

type Path = 'fused' | 'unfused';
const PATHS: Path[] = ['fused', 'unfused'];
const LAYER_KERNELS = 'rope,norm,activation';

function setPath(path: Path): void {
  if (path === 'unfused') process.env.SCULPT_WASM_UNFUSED = LAYER_KERNELS;
  else delete process.env.SCULPT_WASM_UNFUSED;
}

/** Runs f with the path's switch set; milliseconds. */
async function timed(path: Path, f: () => void | Promise<void>): Promise<number> {
  setPath(path);
  try {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  } finally {
    delete process.env.SCULPT_WASM_UNFUSED;
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const rng = new Rng(7);
const random = (shape: number[], lo = -1, hi = 1): tf.Tensor =>
  tf.tensor(
    Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => lo + (hi - lo) * rng.next()),
    shape,
  );

interface Layer {
  name: string;
  /** Inputs; the gradients are taken with respect to the first `wrt`. */
  inputs: tf.Tensor[];
  wrt: number;
  f: (...xs: tf.Tensor[]) => tf.Tensor;
}

/** Forward and backward of one layer with a fixed dy; wasm kernels run synchronously, so done when read. */
function forwardBackward(l: Layer, dy: tf.Tensor): void {
  const outs = tf.tidy(() => {
    const g = tf.grads((...ws: tf.Tensor[]) => l.f(...ws, ...l.inputs.slice(l.wrt)));
    return g(l.inputs.slice(0, l.wrt), dy);
  });
  tf.dispose(outs);
}

function report(what: string, byPath: Record<Path, number[]>, digits = 2): void {
  const line = PATHS.map(
    (p) => `${p} ${median(byPath[p]).toFixed(digits)} ms (${byPath[p].map((m) => m.toFixed(1)).join(', ')})`,
  );
  console.log(
    `  ${what.padEnd(9)} ${line.join('  ')}  unfused / fused ${(median(byPath.unfused) / median(byPath.fused)).toFixed(2)}`,
  );
}

async function main(): Promise<void> {
  const info = await selectBackend('wasm');
  const [B, T, H, D, d, ff] = [16, 64, 4, 32, 128, 344];
  const silu = activation('silu', 'bench');
  const gelu = activation('gelu_new', 'bench');
  const layers: Layer[] = [
    {
      name: 'rope',
      inputs: [random([B, T, H, D], -3, 3), random([B, T, 1, D]), random([B, T, 1, D])],
      wrt: 1,
      f: (x, cos, sin) => applyRope(x as tf.Tensor4D, cos, sin),
    },
    {
      name: 'rmsnorm',
      inputs: [random([B * T, d], -2, 2), random([d], 0.5, 1.5)],
      wrt: 2,
      f: (x, w) => rmsNorm(x as tf.Tensor2D, w, 1e-5),
    },
    { name: 'silu', inputs: [random([B * T, ff], -6, 6)], wrt: 1, f: (x) => silu(x as tf.Tensor2D) },
    { name: 'gelu_new', inputs: [random([B * T, ff], -6, 6)], wrt: 1, f: (x) => gelu(x as tf.Tensor2D) },
  ];
  console.log(
    `wasm fused layers (rope, RMSNorm, silu, gelu_new) against tf ops, sculpt-base shapes, ${info.device}, matmul ${info.matmul ?? '?'}; forward + backward, ${reps} reps each, medians`,
  );
  for (const l of layers) {
    const dy = random(l.f(...l.inputs).shape);
    const ms: Record<Path, number[]> = { fused: [], unfused: [] };
    for (let r = -3; r < reps; r++) {
      for (const path of r % 2 ? [...PATHS].reverse() : PATHS) {
        const t = await timed(path, () => forwardBackward(l, dy));
        if (r >= 0) ms[path].push(t);
      }
    }
    report(l.name, ms);
    tf.dispose([dy, ...l.inputs]);
  }

  const spec = MODELS.find((m) => m.name === 'sculpt-base')!;
  const run = await prepareSteps(spec, 'seqft');
  const ms: Record<Path, number[]> = { fused: [], unfused: [] };
  for (let r = -2; r < steps; r++) {
    for (const path of r % 2 ? [...PATHS].reverse() : PATHS) {
      const t = await timed(path, () => run.step());
      if (r >= 0) ms[path].push(t);
    }
  }
  console.log(`training step, sculpt-base ${spec.batch} x ${spec.seq} tokens, seqft + AdamW, ${steps} steps each:`);
  report('step', ms, 1);
  for (const path of PATHS) {
    setPath(path);
    const profile = await tf.profile(() => run.step());
    delete process.env.SCULPT_WASM_UNFUSED;
    const by = new Map<string, { count: number; ms: number }>();
    for (const k of profile.kernels) {
      const e = by.get(k.name) ?? { count: 0, ms: 0 };
      e.count++;
      e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      by.set(k.name, e);
    }
    const top = [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 14);
    const total = [...by.values()].reduce((a, e) => a + e.ms, 0);
    console.log(`  ${path} kernel profile (one step, ${total.toFixed(1)} ms in kernels):`);
    console.log(`    ${top.map(([n, e]) => `${n} ${e.count}x ${e.ms.toFixed(1)}`).join(', ')}`);
  }
  run.dispose();
}

void main();
