/**
 * Inputs a user hands in, read within bounds: only regular files under a size limit (FIFOs, devices and
 * folders refused without blocking), valid UTF-8 (the bad line named), JSON nesting limited, prototype keys
 * reported as unknown fields, huge configs refused fast, empty outputs refused, train/test overlap warned,
 * and output folders that cannot hold run folders refused before anything is written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DataError, readJsonl } from '../../src/data/examples';
import {
  DATA_LIMIT_ENV,
  FileReadError,
  byteLimit,
  readBoundedBytes,
  readBoundedText,
} from '../../src/data/read-bounded';
import { CONFIG_LIMITS, parseConfigText, validateConfig } from '../../src/protocol/config-validate';
import { MAX_JSON_DEPTH, excessiveNesting } from '../../src/protocol/json-limits';
import { loadTasks } from '../../src/engine/experiment';
import { describeFsError, outputDirProblem } from '../../src/runs/output-dir';
import { createRunDir } from '../../src/runs/run-dir';
import { isOutside, prepareRunsConfirmed } from '../../src/extension/launch';
import { tinyExperiment } from '../helpers/experiment';

const tmp = mkdtempSync(path.join(tmpdir(), 'sculpt-bounds-'));
const file = (name: string, data: string | Uint8Array) => {
  const p = path.join(tmp, name);
  writeFileSync(p, data);
  return p;
};

function fifo(name: string): string {
  const p = path.join(tmp, name);
  execFileSync('mkfifo', [p]);
  return p;
}

const validJsonl = '{"input":"a","output":"x"}\n{"input":"b","output":"y"}\n';

test('bounded reads: regular files only, under the limit, without blocking', () => {
  const regular = file('ok.jsonl', validJsonl);
  const link = path.join(tmp, 'link.jsonl');
  symlinkSync(regular, link);
  const folder = path.join(tmp, 'a-folder');
  mkdirSync(folder);
  const cases: { name: string; path: string; max?: number; problem?: string; message?: RegExp }[] = [
    { name: 'a regular file', path: regular },
    { name: 'a symlink to a regular file', path: link },
    {
      name: 'a FIFO',
      path: fifo('pipe.jsonl'),
      problem: 'not-a-file',
      message: /named pipe \(FIFO\), not a regular file/,
    },
    { name: '/dev/zero', path: '/dev/zero', problem: 'not-a-file', message: /\/dev\/zero is a device/ },
    { name: 'a folder', path: folder, problem: 'not-a-file', message: /is a folder, not a regular file/ },
    { name: 'a missing file', path: path.join(tmp, 'nope'), problem: 'missing', message: /not found/ },
    {
      name: 'a file over the limit',
      path: regular,
      max: 10,
      problem: 'too-large',
      message: /over the limit of 10 bytes/,
    },
  ];
  for (const c of cases) {
    const started = Date.now();
    const read = () =>
      readBoundedBytes(c.path, { what: 'data file', maxBytes: c.max ?? 1024, limitEnv: DATA_LIMIT_ENV });
    if (!c.problem) {
      assert.equal(read().toString('utf8'), validJsonl, c.name);
      continue;
    }
    assert.throws(
      read,
      (e: unknown) =>
        e instanceof FileReadError &&
        e.problem === c.problem &&
        c.message!.test(e.message) &&
        e.message.includes(c.path) &&
        (c.problem !== 'too-large' || e.message.includes(DATA_LIMIT_ENV)),
      c.name,
    );
    assert.ok(Date.now() - started < 2000, `${c.name}: refused at once`);
  }
});

test('bounded reads: the data readers turn refusals into DataErrors naming the file', () => {
  const pipe = fifo('data-pipe.jsonl');
  assert.throws(
    () => readJsonl(pipe),
    (e: unknown) => e instanceof DataError && e.file === pipe && /FIFO/.test(e.message),
  );
  assert.throws(
    () => readJsonl('/dev/zero'),
    (e: unknown) => e instanceof DataError && /device/.test(e.message),
  );
  const big = file('big.jsonl', validJsonl.repeat(100));
  const saved = process.env[DATA_LIMIT_ENV];
  process.env[DATA_LIMIT_ENV] = '1K';
  try {
    assert.throws(
      () => readJsonl(big),
      (e: unknown) => e instanceof DataError && /over the limit of 1 KB/.test(e.message),
    );
    process.env[DATA_LIMIT_ENV] = 'lots';
    assert.throws(() => readJsonl(big), /SCULPT_MAX_DATA_BYTES=lots is not a size/);
  } finally {
    if (saved === undefined) delete process.env[DATA_LIMIT_ENV];
    else process.env[DATA_LIMIT_ENV] = saved;
  }
  assert.equal(readJsonl(big).length, 200);
});

test('byte limits: plain bytes or K/M/G suffixes from the environment', () => {
  const env = 'SCULPT_TEST_LIMIT';
  const cases: [string | undefined, number][] = [
    [undefined, 77],
    ['1000', 1000],
    ['2K', 2048],
    ['3M', 3 * 1024 ** 2],
    ['1G', 1024 ** 3],
    ['5mb', 5 * 1024 ** 2],
  ];
  for (const [v, want] of cases) {
    if (v === undefined) delete process.env[env];
    else process.env[env] = v;
    assert.equal(byteLimit(env, 77), want, String(v));
  }
  process.env[env] = '-1';
  assert.throws(() => byteLimit(env, 77), FileReadError);
  delete process.env[env];
});

test('invalid UTF-8 is a DataError naming the file and the line; a byte order mark is dropped', () => {
  const bad = file(
    'latin1.jsonl',
    Buffer.concat([
      Buffer.from(validJsonl),
      Buffer.from('{"input":"caf'),
      Buffer.from([0xe9]),
      Buffer.from('","output":"x"}\n'),
    ]),
  );
  assert.throws(
    () => readJsonl(bad),
    (e: unknown) =>
      e instanceof DataError &&
      e.file === bad &&
      e.line === 3 &&
      e.message.startsWith(`${bad}:3:`) &&
      /UTF-8/.test(e.message),
  );
  const truncated = file('cut.jsonl', Buffer.concat([Buffer.from(validJsonl), Buffer.from([0xe2, 0x82])]));
  assert.throws(
    () => readJsonl(truncated),
    (e: unknown) => e instanceof DataError && e.line === 3,
  );
  const bom = file('bom.jsonl', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(validJsonl)]));
  assert.equal(readJsonl(bom)[0].input, 'a');
  assert.equal(readBoundedText(bom, { what: 'data file', maxBytes: 1000 }).charCodeAt(0), '{'.charCodeAt(0));
});

test('an empty or whitespace-only output is refused, naming the file and the line', () => {
  for (const output of ['', '   ', '\t\n']) {
    const f = file(`empty-${output.length}.jsonl`, `${validJsonl}${JSON.stringify({ input: 'c', output })}\n`);
    assert.throws(
      () => readJsonl(f),
      (e: unknown) => e instanceof DataError && e.file === f && e.line === 3 && /"output" is empty/.test(e.message),
    );
  }
});

test('JSON nesting deeper than the limit is an error naming the line, in configs and data lines', () => {
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
  assert.equal(excessiveNesting(deep(MAX_JSON_DEPTH)), -1);
  assert.equal(excessiveNesting(deep(MAX_JSON_DEPTH + 1)), MAX_JSON_DEPTH);
  assert.equal(excessiveNesting(`"${'['.repeat(500)}" // ${'{'.repeat(500)}\n /* ${'['.repeat(500)} */`), -1);
  const huge = `{"name": "x",\n "tasks": ${deep(200_000)}}`;
  const parsed = parseConfigText(huge);
  assert.equal(parsed.value, undefined);
  assert.match(parsed.issues[0].message, /deeper than 64 levels at line 2, column/);
  const f = file('deep.jsonl', `${validJsonl}{"input":"a","output":"b","x":${deep(200_000)}}\n`);
  assert.throws(
    () => readJsonl(f),
    (e: unknown) => e instanceof DataError && e.line === 3 && /nested deeper than 64/.test(e.message),
  );
});

test('prototype keys (__proto__, constructor, toString) are unknown fields, at any level', () => {
  for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    for (const where of ['root', 'training', 'method'] as const) {
      const cfg = tinyExperiment() as unknown as Record<string, unknown>;
      const extra = `${JSON.stringify(key)}: {"lr": 1}`;
      let text = JSON.stringify(cfg);
      if (where === 'root') text = text.replace(/^\{/, `{${extra},`);
      if (where === 'training') text = text.replace('"training":{', `"training":{${extra},`);
      if (where === 'method') text = text.replace('{"method":"seqft"', `{"method":"seqft",${extra}`);
      const parsed = parseConfigText(text);
      assert.deepEqual(parsed.issues, [], `${key} at ${where} parses`);
      const r = validateConfig(parsed.value);
      assert.equal(r.config, undefined, `${key} at ${where} must not pass`);
      const issue = r.issues.find((i) => i.path.endsWith(key));
      assert.ok(issue, `${key} at ${where}: ${JSON.stringify(r.issues)}`);
      assert.match(issue.message, /is not a known field/);
    }
  }
  // Nothing leaked into Object.prototype along the way.
  assert.equal(({} as Record<string, unknown>).lr, undefined);
});

test('a config with 200k tasks fails fast on the task count', () => {
  const tasks = Array.from({ length: 200_000 }, (_, i) => ({ name: `t${i}`, source: { builtin: 'tiny/sentiment' } }));
  const text = JSON.stringify(tinyExperiment({ tasks }));
  const started = Date.now();
  const parsed = parseConfigText(text);
  const r = validateConfig(parsed.value);
  assert.equal(r.config, undefined);
  assert.equal(r.issues[0].path, 'tasks');
  assert.match(r.issues[0].message, new RegExp(`has 200000 entries; at most ${CONFIG_LIMITS.tasks}`));
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  // At the limit, validation stays quick (the checks are linear).
  const many = Array.from({ length: CONFIG_LIMITS.tasks }, (_, i) => ({
    name: `t${i}`,
    source: { builtin: 'tiny/sentiment' },
  }));
  const t0 = Date.now();
  assert.ok(validateConfig(tinyExperiment({ tasks: many })).config);
  assert.ok(Date.now() - t0 < 5000);
});

test('train/test overlap is a warning: identical files, identical sets, some shared inputs', () => {
  const train = file(
    'ov-train.jsonl',
    '{"input":"a","output":"x"}\n{"input":"b","output":"y"}\n{"input":"c","output":"x"}\n',
  );
  const test = file('ov-test.jsonl', '{"input":"a","output":"y"}\n{"input":"d","output":"y"}\n');
  const copy = file(
    'ov-copy.jsonl',
    '{"input":"a","output":"x"}\n{"input":"b","output":"y"}\n{"input":"c","output":"x"}\n',
  );
  const clean = file('ov-clean.jsonl', '{"input":"e","output":"x"}\n{"input":"f","output":"y"}\n');
  const cases: [string, string, RegExp | undefined][] = [
    [train, train, /train and test are the same file/],
    [train, copy, /hold the same 3 examples/],
    [train, test, /1 of 2 test examples have an input that is also in the training data/],
    [train, clean, undefined],
  ];
  for (const [tr, te, want] of cases) {
    const { config } = validateConfig(tinyExperiment({ tasks: [{ name: 'ov', source: { train: tr, test: te } }] }), {
      file: path.join(tmp, 'x.sculpt.json'),
      path,
    });
    assert.ok(config);
    const warnings: { message: string; code: string }[] = [];
    const tasks = loadTasks(config, 0, (message, code) => warnings.push({ message, code }));
    assert.equal(tasks.length, 1);
    if (!want) assert.deepEqual(warnings, []);
    else {
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.equal(warnings[0].code, 'data-overlap');
      assert.match(warnings[0].message, want);
      assert.match(warnings[0].message, /task 'ov'/);
    }
  }
  // Without a listener, loading is as before.
  assert.equal(loadTasks(validateConfig(tinyExperiment()).config!, 0).length, 2);
});

test('output folders: not a folder, under /proc or /sys, or under a file are refused naming the path', () => {
  const plain = file('a-file', 'x');
  const cases: [string, RegExp | undefined][] = [
    [path.join(tmp, 'runs-here'), undefined],
    [path.join(tmp, 'deeper', 'and', 'deeper'), undefined],
    ['/dev/null', /\/dev\/null is a device, not a folder/],
    [plain, /is a file, not a folder/],
    [path.join(plain, 'sub'), /cannot be created: .*a-file is a file, not a folder/],
    ['/proc/self', /under \/proc, a kernel file system/],
    ['/sys/kernel/runs', /under \/sys/],
  ];
  for (const [dir, want] of cases) {
    const problem = outputDirProblem(dir);
    if (!want) assert.equal(problem, undefined, dir);
    else {
      assert.match(problem ?? '', want, dir);
      assert.match(problem ?? '', /set `output` in the config \(or pass --out\)/);
    }
  }
  assert.equal(existsSync(path.join(tmp, 'runs-here')), false, 'checking creates nothing');
});

test('createRunDir: refuses a bad output before writing, names OS errors, leaves nothing half-written', () => {
  const config = validateConfig(tinyExperiment(), { file: path.join(tmp, 'x.sculpt.json'), path }).config!;
  assert.throws(
    () => createRunDir({ ...config, output: '/dev/null' }, { methodIndex: 0, order: 0 }),
    /\/dev\/null is a device/,
  );
  const out = path.join(tmp, 'made', 'runs');
  const dir = createRunDir({ ...config, output: out }, { methodIndex: 0, order: 0 });
  assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'job.json']);
  for (const code of ['ENOSPC', 'EEXIST', 'ENOTDIR', 'EACCES']) {
    const e = Object.assign(new Error(`${code}: failed, write`), { code, path: path.join(dir, 'config.json') });
    const err = describeFsError(e, dir);
    assert.ok(err.message.startsWith(`cannot create the run folder ${dir}: `), err.message);
    assert.ok(err.message.includes(path.join(dir, 'config.json')));
    assert.doesNotMatch(err.message, new RegExp(`^${code}`));
  }
  assert.match(describeFsError(Object.assign(new Error('x'), { code: 'ENOSPC' }), dir).message, /no space left/);
});

test('VS Code: an output outside the workspace folder is confirmed before anything is written', async () => {
  const ws = mkdtempSync(path.join(tmpdir(), 'sculpt-ws-'));
  const elsewhere = mkdtempSync(path.join(tmpdir(), 'sculpt-elsewhere-'));
  const cfgFile = path.join(ws, 'exp.sculpt.json');
  writeFileSync(
    cfgFile,
    JSON.stringify(tinyExperiment({ name: 'exp', output: path.relative(ws, path.join(elsewhere, 'runs')) })),
  );
  assert.equal(isOutside(path.join(elsewhere, 'runs'), ws), true);
  assert.equal(isOutside(path.join(ws, 'runs'), ws), false);
  const asked: string[] = [];
  const settings = { backend: 'auto' as const, runsDirectory: '' };
  const no = await prepareRunsConfirmed(cfgFile, settings, {
    workspaceFolder: ws,
    confirm: async (m) => (asked.push(m), false),
  });
  assert.equal(no.ok, false);
  assert.equal(!no.ok && no.cancelled, true);
  assert.equal(asked.length, 1);
  assert.match(asked[0], /outside the workspace folder/);
  assert.ok(asked[0].includes(path.join(elsewhere, 'runs')));
  assert.equal(existsSync(path.join(elsewhere, 'runs')), false, 'nothing written after Cancel');
  const yes = await prepareRunsConfirmed(cfgFile, settings, { workspaceFolder: ws, confirm: async () => true });
  assert.ok(yes.ok);
  assert.equal(readdirSync(path.join(elsewhere, 'runs')).length, 1);
  // Inside the workspace: no question.
  const inside = await prepareRunsConfirmed(
    cfgFile,
    { ...settings, runsDirectory: path.join(ws, 'runs') },
    {
      workspaceFolder: ws,
      confirm: async () => assert.fail('asked for a folder inside the workspace'),
    },
  );
  assert.ok(inside.ok);
  // A bad output is an issue at `output`, and nothing is asked.
  const bad = await prepareRunsConfirmed(
    cfgFile,
    { ...settings, runsDirectory: '/dev/null' },
    {
      workspaceFolder: ws,
      confirm: async () => assert.fail('asked about an output that cannot be used'),
    },
  );
  assert.equal(bad.ok, false);
  assert.equal(!bad.ok && bad.issues[0].path, 'output');
});
