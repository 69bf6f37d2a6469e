/**
 * A rough timing of the language-model loss on the wasm backend: forward + backward of the fused softmax
 * cross-entropy (src/engine/kernels/wasm-cross-entropy.ts) against the tf-op composition it replaces
 * (`meanNll(tf.logSoftmax(logits), targets)`, what SCULPT_WASM_UNFUSED=xent runs), on the same logits in one
 * process. The two alternate repetition by repetition, so load from elsewhere falls on both alike; medians.
 * Not part of `npm run bench`:
 *   node scripts/run-ts.mjs scripts/bench/wasm-cross-entropy.ts [rows=1024] [vocab=8192] [reps=5]
 */
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { wasmCrossEntropy } from '../../src/engine/kernels/wasm-cross-entropy';
import { meanNll } from '../../src/engine/models/layers';
import { Rng } from '../../src/data/rng';

type Loss = (logits: tf.Tensor2D, targets: tf.Tensor1D) => tf.Scalar;

const [rows, vocab, reps] = [1024, 8192, 5].map((d, i) => Number(process.argv[2 + i] ?? d));

/**
 * Milliseconds for the loss and dlogits. Wasm kernels run synchronously, so they are done when the gradient
 * returns; only the loss is read back (copying dlogits out of the heap would add the same ~10 ms to both).
 */
function time(loss: Loss, logits: tf.Tensor2D, targets: tf.Tensor1D): { ms: number; value: number } {
  const t0 = performance.now();
  const value = tf.tidy(() => {
    const { value: v } = tf.valueAndGrads((l: tf.Tensor) => loss(l as tf.Tensor2D, targets))([logits]);
    return v.dataSync()[0];
  });
  return { ms: performance.now() - t0, value };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const info = await selectBackend('wasm');
  const rng = new Rng(1);
  const logits = tf.tensor2d(
    Float32Array.from({ length: rows * vocab }, () => 8 * (2 * rng.next() - 1)),
    [rows, vocab],
  );
  const targets = tf.tensor1d(
    Array.from({ length: rows }, () => Math.floor(rng.next() * vocab)),
    'int32',
  );
  const paths: [string, Loss][] = [
    ['fused', wasmCrossEntropy],
    ['unfused', (l, t) => meanNll(tf.logSoftmax(l), t)],
  ];
  const ms: Record<string, number[]> = { fused: [], unfused: [] };
  const values: Record<string, number> = {};
  for (const [, f] of paths) time(f, logits, targets); // warm-up: compile, grow the heap
  for (let r = 0; r < reps; r++) {
    // Alternate which goes first, so neither always follows the other's garbage.
    for (const [name, f] of r % 2 ? [...paths].reverse() : paths) {
      const t = time(f, logits, targets);
      ms[name].push(t.ms);
      values[name] = t.value;
    }
  }
  console.log(`wasm cross-entropy forward+backward, logits [${rows}, ${vocab}], ${info.device}, ${reps} reps each`);
  for (const [name] of paths) {
    console.log(
      `  ${name.padEnd(8)} median ${median(ms[name]).toFixed(1)} ms  (${ms[name].map((m) => m.toFixed(1)).join(', ')})  loss ${values[name]}`,
    );
  }
  console.log(`  unfused / fused: ${(median(ms.unfused) / median(ms.fused)).toFixed(2)}`);
  tf.dispose([logits, targets]);
}

void main();
