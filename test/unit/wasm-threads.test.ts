// The wasm backend's threaded build under Node (scripts/build/wasm-threads.mjs makes it loadable): it starts
// with the requested threads, computes what the cpu backend computes, and lets the process exit (node --test
// would wait forever for this file otherwise).
import { test } from 'node:test';
import { existsSync, statSync } from 'node:fs';
import assert from 'node:assert/strict';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { namedGrads } from '../../src/engine/models/grads';
import { fixture } from '../helpers/paths';
import { relErr } from './models-util';

async function lossAndGrads(): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
  const model = loadPretrained(fixture('hf-reference', 'llama-tiny'));
  const ids = tf.tensor2d(
    Int32Array.from({ length: 2 * 24 }, (_, i) => (i * 37 + 5) % 512),
    [2, 24],
    'int32',
  );
  const { value, grads } = namedGrads(model, () => model.loss(ids, ids));
  const out = { loss: (await value.data())[0], grads: new Map<string, Float32Array>() };
  for (const [n, g] of grads) out.grads.set(n, (await g.data()) as Float32Array);
  tf.dispose([value, ids, ...grads.values()]);
  model.dispose();
  return out;
}

test('wasm with 2 threads: the threaded build starts and matches the cpu backend (rel. error <= 1e-5)', async () => {
  await selectBackend('cpu');
  const want = await lossAndGrads();
  process.env.SCULPT_WASM_THREADS = '2';
  const info = await selectBackend('wasm');
  assert.match(info.device, /2 threads/, info.device);
  // The worker scripts were written to a folder of this process that no other user can write to.
  const dir = (globalThis as { __sculptWasmScripts?: string }).__sculptWasmScripts;
  assert.ok(dir && existsSync(dir), 'the scripts folder exists while the process runs');
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const got = await lossAndGrads();
  assert.ok(Math.abs(got.loss - want.loss) / want.loss < 1e-5, `loss ${got.loss} vs ${want.loss}`);
  for (const [n, g] of want.grads)
    assert.ok(relErr(got.grads.get(n)!, g) < 1e-5, `${n}: ${relErr(got.grads.get(n)!, g)}`);
});
