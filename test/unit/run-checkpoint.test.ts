// Checks of run checkpoints (manifest, state against the run, tensors against the model), run-folder fingerprints
// and the tolerant event-log reader and writer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CheckpointCorruptError,
  checkState,
  checkTensors,
  childPath,
  verifyManifest,
  writeManifest,
  type CheckpointContents,
  type CheckpointMeta,
} from '../../src/engine/run-checkpoint';
import type { StTensor } from '../../src/engine/io/safetensors';
import { changedConfigFields, configFingerprint } from '../../src/runs/run-dir';
import { parseEventLog } from '../../src/protocol/events';
import { EventWriter } from '../../src/trainer/event-writer';

const work = mkdtempSync(join(tmpdir(), 'sculpt-cp-'));
const EXPECT = { tasks: 3, epochs: 2, optimizer: 'adamw' };

function meta(over: Partial<CheckpointMeta> = {}, position: Partial<CheckpointMeta['position']> = {}): CheckpointMeta {
  return {
    format: 1,
    position: { task: 1, epoch: 1, batch: 2, taskStep: 5, globalStep: 12, trained: false, ...position },
    matrix: [[50, 25, 10]],
    zeroShot: [20, 30, null],
    seq: 40,
    elapsedMs: 1000,
    optimizer: { name: 'adamw', step: 5 },
    method: null,
    reason: 'steps',
    time: 1,
    ...over,
  };
}

test('checkState accepts a consistent state', () => {
  assert.deepEqual(checkState(meta(), EXPECT), []);
  assert.deepEqual(checkState(meta({ matrix: [] }, { task: 0 }), EXPECT), []);
  // At the end of the last epoch, before the task's evaluation.
  assert.deepEqual(checkState(meta({}, { epoch: 2, batch: 0, trained: true }), EXPECT), []);
});

test('checkState: a run with validation splits needs their rows; a run without reads none', () => {
  const withV = { ...EXPECT, validation: true };
  const v = { validationMatrix: [[40, 30, 20]], validationZeroShot: [10, null, 15] };
  assert.deepEqual(checkState(meta(v), withV), []);
  assert.deepEqual(checkState(meta({ ...v, validationZeroShot: null }), withV), []);
  assert.match(checkState(meta(), withV).join('; '), /validationMatrix is not an array/);
  assert.match(
    checkState(meta({ validationMatrix: [] }), withV).join('; '),
    /validationMatrix has 0 rows, position\.task 1 needs 1/,
  );
  assert.match(
    checkState(meta({ ...v, validationMatrix: [[40, 130, 20]] }), withV).join('; '),
    /validationMatrix\[0\] must be 3 numbers between 0 and 100/,
  );
  assert.match(
    checkState(meta({ ...v, validationZeroShot: [1] }), withV).join('; '),
    /validationZeroShot must be null or 3 numbers/,
  );
  assert.deepEqual(checkState(meta({ validationMatrix: 'x' as never }), EXPECT), [], 'not read without splits');
});

const BAD_STATES: [string, CheckpointMeta, RegExp][] = [
  ['task out of range', meta({}, { task: 99 }), /position\.task is 99, the run has tasks 0\.\.2/],
  ['negative task', meta({}, { task: -1 }), /position\.task is -1/],
  ['epoch out of range', meta({}, { epoch: 99 }), /position\.epoch is 99, training has epochs 0\.\.1/],
  ['fractional batch', meta({}, { batch: 1.5 }), /position\.batch is 1\.5/],
  ['task step above global step', meta({}, { taskStep: 20 }), /taskStep \(20\) exceeds position\.globalStep \(12\)/],
  ['matrix rows do not match the task', meta({ matrix: [] }), /matrix has 0 rows, position\.task 1 needs 1/],
  ['matrix of strings', meta({ matrix: [['a', 'b', 'c'] as unknown as number[]] }), /matrix\[0\] must be 3 numbers/],
  ['short matrix row', meta({ matrix: [[1, 2]] }), /matrix\[0\] must be 3 numbers/],
  ['NaN in the matrix', meta({ matrix: [[NaN, 1, 2]] }), /matrix\[0\]/],
  ['accuracy above 100', meta({ matrix: [[101, 1, 2]] }), /matrix\[0\]/],
  ['zero-shot of the wrong length', meta({ zeroShot: [1] }), /zeroShot must be null or 3 numbers/],
  [
    'another optimizer',
    meta({ optimizer: { name: 'sgd', step: 1 } }),
    /optimizer\.name is "sgd", the run uses 'adamw'/,
  ],
  ['no position', { ...meta(), position: undefined as never }, /position is missing/],
];

for (const [name, m, re] of BAD_STATES) {
  test(`checkState rejects: ${name}`, () => {
    const issues = checkState(m, EXPECT);
    assert.ok(
      issues.some((i) => re.test(i)),
      `${JSON.stringify(issues)} matches ${re}`,
    );
  });
}

const f32 = (shape: number[], values?: number[]): StTensor => {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => values?.[i] ?? i + 1);
  return { dtype: 'F32', shape, data };
};

function contents(over: Partial<CheckpointContents> = {}, slots?: Record<string, number[]>): CheckpointContents {
  return {
    meta: meta({ optimizer: { name: 'adamw', step: 5, ...(slots ? { slots } : {}) } }),
    model: new Map([
      ['w', f32([2, 3])],
      ['b', f32([3])],
    ]),
    optimizer: new Map([
      ['m/w', f32([2, 3])],
      ['v/w', f32([2, 3])],
    ]),
    method: new Map(),
    path: '/cp',
    verified: true,
    ...over,
  };
}

const PARAMS = new Map<string, number[]>([
  ['w', [2, 3]],
  ['b', [3]],
]);

test('checkTensors accepts tensors that fit the model and the listed moments', () => {
  assert.deepEqual(checkTensors(contents({}, { 'm/w': [2, 3], 'v/w': [2, 3] }), PARAMS), []);
  // Checkpoints written before the moments were listed: checked against the parameters only.
  assert.deepEqual(checkTensors(contents(), PARAMS), []);
});

const BAD_TENSORS: [string, CheckpointContents, RegExp][] = [
  ['a missing parameter', contents({ model: new Map([['w', f32([2, 3])]]) }), /lacks parameter 'b'/],
  [
    'a parameter of another shape',
    contents({
      model: new Map([
        ['w', f32([3, 2])],
        ['b', f32([3])],
      ]),
    }),
    /'w' has shape \[3,2\], the model has \[2,3\]/,
  ],
  [
    'an all-zero weight matrix',
    contents({
      model: new Map([
        ['w', f32([2, 3], [0, 0, 0, 0, 0, 0])],
        ['b', f32([3])],
      ]),
    }),
    /'w' is all zeros/,
  ],
  [
    'NaN in a weight',
    contents({
      model: new Map([
        ['w', f32([2, 3], [1, NaN])],
        ['b', f32([3])],
      ]),
    }),
    /model\.safetensors: 'w' holds NaN at element 1/,
  ],
  [
    'Infinity in a moment',
    contents({
      optimizer: new Map([
        ['m/w', f32([2, 3], [Infinity])],
        ['v/w', f32([2, 3])],
      ]),
    }),
    /optimizer\.safetensors: 'm\/w' holds Infinity/,
  ],
  [
    'no optimizer moments',
    contents({ optimizer: new Map() }, { 'm/w': [2, 3], 'v/w': [2, 3] }),
    /lacks moment 'm\/w' that state\.json lists/,
  ],
  [
    'a moment of another shape',
    contents({
      optimizer: new Map([
        ['m/w', f32([6])],
        ['v/w', f32([2, 3])],
      ]),
    }),
    /'m\/w' has shape \[6\], the parameter has \[2,3\]/,
  ],
];

for (const [name, cp, re] of BAD_TENSORS) {
  test(`checkTensors rejects: ${name}`, () => {
    const issues = checkTensors(cp, PARAMS);
    assert.ok(
      issues.some((i) => re.test(i)),
      `${JSON.stringify(issues)} matches ${re}`,
    );
  });
}

function checkpointFolder(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  for (const f of ['model.safetensors', 'optimizer.safetensors', 'method.safetensors'])
    writeFileSync(join(dir, f), `${f} bytes`);
  writeFileSync(join(dir, 'state.json'), JSON.stringify(meta()));
  return dir;
}

test('the manifest verifies an intact checkpoint and names the file that changed', () => {
  const dir = checkpointFolder('intact');
  assert.equal(verifyManifest(dir), false, 'no manifest: an earlier version, not verified');
  writeManifest(dir);
  assert.equal(verifyManifest(dir), true);
  const flipped = checkpointFolder('flipped');
  writeManifest(flipped);
  writeFileSync(join(flipped, 'method.safetensors'), 'method.safetensors bytez');
  assert.throws(
    () => verifyManifest(flipped),
    (e: Error) =>
      e instanceof CheckpointCorruptError && /method\.safetensors does not match its SHA-256/.test(e.message),
  );
  const grown = checkpointFolder('grown');
  writeManifest(grown);
  appendFileSync(join(grown, 'state.json'), ' ');
  assert.throws(() => verifyManifest(grown), /state\.json has \d+ bytes, the manifest says \d+/);
  const garbled = checkpointFolder('garbled');
  writeFileSync(join(garbled, 'manifest.json'), '{"format":');
  assert.throws(() => verifyManifest(garbled), /manifest\.json is unreadable/);
});

test('names read from a run folder must stay inside it', () => {
  const root = join(work, 'checkpoints');
  assert.equal(childPath(root, 'step-4', 'LATEST'), join(root, 'step-4'));
  for (const bad of ['../../../../etc', '..', '.', '/etc', 'a/b', 'a\\b', '']) {
    assert.throws(
      () => childPath(root, bad, 'LATEST'),
      /LATEST cannot be used: it names .* which is not a folder inside/,
      bad,
    );
  }
});

test('the config fingerprint names the top-level fields that changed', () => {
  const config = { name: 'x', training: { lr: 0.01 }, tasks: [{ name: 'a' }, { name: 'b' }] };
  const job = { methodIndex: 0, order: 0, config: configFingerprint(config) };
  assert.deepEqual(changedConfigFields(structuredClone(config), job), []);
  // Another order of the fields is the same config.
  assert.deepEqual(changedConfigFields({ tasks: config.tasks, training: config.training, name: 'x' }, job), []);
  assert.deepEqual(changedConfigFields({ ...config, training: { lr: 0.5 } }, job), ['training']);
  assert.deepEqual(changedConfigFields({ ...config, tasks: config.tasks.slice(1), seed: 3 }, job), ['tasks', 'seed']);
  assert.equal(changedConfigFields(config, { methodIndex: 0, order: 0 }), null, 'a folder without a fingerprint');
});

test('the event log reader skips and counts events that break the schema', () => {
  const ok = { v: 1, runId: 'r', seq: 1, time: 0, type: 'warning', message: 'fine' };
  const lines = [
    JSON.stringify(ok),
    JSON.stringify({ ...ok, seq: 2, message: 7 }),
    JSON.stringify({
      v: 1,
      runId: 'r',
      seq: 3,
      time: 0,
      type: 'task-finished',
      task: 'one',
      name: 'a',
      row: [],
      metrics: {},
      seconds: 0,
    }),
    JSON.stringify({ ...ok, seq: 4, extra: 'a newer trainer' }),
    JSON.stringify({ v: 1, runId: 'r', seq: 5, time: 0, type: 'from-the-future' }),
    '\u0000\u00ff garbage',
    '{"v":1,"seq":',
  ];
  const log = parseEventLog(lines.join('\n'));
  assert.deepEqual(
    log.events.map((e) => e.seq),
    [1, 4],
  );
  assert.deepEqual(log.invalid, [2, 3]);
  assert.equal(log.unknown, 1);
  assert.deepEqual(log.badLines, [6]);
  assert.equal(log.truncatedTail, true);
});

test('the event writer starts a new line after a truncated last line', () => {
  const file = join(work, 'events.jsonl');
  writeFileSync(
    file,
    JSON.stringify({ v: 1, runId: 'r', seq: 1, time: 0, type: 'warning', message: 'a' }) + '\n{"v":1,"se',
  );
  const w = new EventWriter(file, 'r', 1);
  w.emit({ type: 'warning', message: 'b' });
  w.emit({ type: 'warning', message: 'c' });
  const text = readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'));
  const log = parseEventLog(text);
  assert.deepEqual(
    log.events.map((e) => e.seq),
    [1, 2, 3],
  );
  assert.deepEqual(log.badLines, [2]);
  // A log that ends with a newline is appended to as it is.
  const clean = join(work, 'clean.jsonl');
  writeFileSync(clean, '');
  new EventWriter(clean, 'r', 0).emit({ type: 'warning', message: 'x' });
  assert.equal(readFileSync(clean, 'utf8').split('\n').length, 2);
});
