/**
 * `sculpt run`'s plain progress lines (src/cli/progress.ts, as written to a log that is not a terminal): where
 * a run started, naming the torch engine with its version, world size, sharding and precision.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Progress } from '../../src/cli/progress';
import type { SculptEvent } from '../../src/protocol/events';

function startedLine(extra: Record<string, unknown>, backend = { name: 'wasm', device: 'cpu' }): string {
  let out = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out += chunk.toString();
      done();
    },
  });
  const progress = new Progress(sink, ['run-a']);
  const event = {
    v: 1,
    runId: 'r',
    seq: 1,
    time: 0,
    type: 'run-started',
    config: {},
    method: 'seqft',
    tasks: ['a', 'b'],
    order: 0,
    backend: { ...backend, isGpu: false, fallbacks: [] },
    model: { arch: 'llama', source: 'builtin', parameters: 1, trainable: 1, layers: 1, targets: 1 },
    ...extra,
  } as unknown as SculptEvent;
  progress.update(0, event);
  return out.trim();
}

test('progress: a tfjs run starts on its backend, a torch run on its engine', () => {
  assert.equal(startedLine({}), 'run-a: started on wasm (cpu), 2 tasks');
  assert.equal(startedLine({ engine: { name: 'tfjs' } }), 'run-a: started on wasm (cpu), 2 tasks');
  const engine = { name: 'torch', version: '2.13.0+cu128', world: 2, shard: 'fsdp2', precision: 'bf16' };
  assert.equal(
    startedLine({ engine }, { name: 'torch', device: 'cuda:0' }),
    'run-a: started on torch 2.13.0+cu128 ×2 (fsdp2, bf16) (cuda:0), 2 tasks',
  );
});

test('progress: a resumed run says where it picked up; a restart says it started over', () => {
  const resumedFrom = { task: 1, step: 40, supersededFrom: 7 };
  assert.equal(
    startedLine({ resumedFrom }),
    'run-a: started on wasm (cpu), 2 tasks; resumed from task 2/2 (b), step 40',
  );
  assert.equal(
    startedLine({ resumedFrom: { task: 0, step: 0, supersededFrom: 1 } }),
    'run-a: started on wasm (cpu), 2 tasks; resumed from the start (nothing trained to keep)',
  );
});
