/**
 * Faults in a run folder, through the built CLI and trainer (dist/; `npm run build` first): corrupt checkpoints,
 * edited states and configs, kills at the worst moments, damaged event logs. Each is either tolerated with the
 * numbers of an uninterrupted run or rejected with a named error that leaves the checkpoints as they were; none
 * may give a wrong result in silence.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEventLog, type SculptEvent } from '../../src/protocol/events';
import { effectiveEvents, foldRun } from '../../src/runs/fold';
import { writeExperiment } from '../helpers/experiment';
import { checkpoints, faultExperiment, freshCopy, leftovers } from '../helpers/faults';
import { RUN_ENV, TRAINER, cli, cliAsync, events, finished, runDirs } from '../helpers/runs';

const work = mkdtempSync(join(tmpdir(), 'sculpt-faults-'));
const out = join(work, 'runs');

const CONFIG = faultExperiment('faults', out);

let whole = '';
let reference: { matrix: number[][]; metrics: unknown };
/** Wall time of the uninterrupted run, CLI included: what the random kills are spread over. */
let referenceMs = 0;
/** A run stopped in its second task, with two checkpoints: the starting point of every corruption. */
let stoppedBase = '';
const fresh = (name: string): string => freshCopy(whole, work, name);

/** The trainer on `dir` with extra environment; resolves with its exit code once `onEvent` kills it or it ends. */
function runTrainer(
  dir: string,
  env: Record<string, string> = {},
  onEvent: (e: SculptEvent, kill: () => void) => void = () => {},
): Promise<number | null> {
  return new Promise((resolve) => {
    const child = fork(TRAINER, [dir], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...RUN_ENV, ...env } });
    child.on('message', (m) => onEvent(m as SculptEvent, () => child.kill('SIGKILL')));
    child.on('exit', (code) => resolve(code));
  });
}

/** Runs the trainer until it pauses at `point` (SCULPT_TEST_PAUSE_AT), then kills it with SIGKILL. */
async function killAt(dir: string, point: string): Promise<void> {
  const marker = join(work, `pause-${Math.random().toString(36).slice(2)}`);
  const child = fork(TRAINER, [dir], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...RUN_ENV, SCULPT_TEST_PAUSE_AT: point, SCULPT_TEST_PAUSE_FILE: marker },
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 60_000;
  while (!existsSync(marker)) {
    assert.ok(Date.now() < deadline, `the trainer reached ${point}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  await exited;
}

const latest = (dir: string) => join(checkpoints(dir), readFileSync(join(checkpoints(dir), 'LATEST'), 'utf8').trim());
const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

/** Rewrites a checkpoint's manifest after an edit: a well-formed checkpoint whose content is wrong. */
function reseal(cp: string): void {
  const files: Record<string, { size: number; sha256: string }> = {};
  for (const f of ['model.safetensors', 'optimizer.safetensors', 'method.safetensors', 'state.json']) {
    files[f] = { size: statSync(join(cp, f)).size, sha256: sha256(join(cp, f)) };
  }
  writeFileSync(join(cp, 'manifest.json'), JSON.stringify({ format: 1, files }));
}

function editState(cp: string, edit: (s: Record<string, any>) => void): void {
  const s = JSON.parse(readFileSync(join(cp, 'state.json'), 'utf8'));
  edit(s);
  writeFileSync(join(cp, 'state.json'), JSON.stringify(s));
  reseal(cp);
}

/** Overwrites the data of the first 2-D F32 tensor of a safetensors file with `value`. */
function fillMatrix(file: string, value: number): void {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const [, info] = Object.entries<any>(header).find(([k, v]) => k !== '__metadata__' && v.shape.length === 2)!;
  const data = new Float32Array(
    buf.buffer,
    buf.byteOffset + 8 + n + info.data_offsets[0],
    info.shape[0] * info.shape[1],
  );
  data.fill(value);
  writeFileSync(file, buf);
}

/** Every file of the run folder except the logs, with size and content hash. */
function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => !['trainer.log', 'events.jsonl', 'trainer.pid'].includes(f) && statSync(join(dir, f)).isFile())
    .sort()
    .map((f) => `${f}:${sha256(join(dir, f))}`);
}

/** The effective log holds one history: one start, each task started and finished once, steps never repeated. */
function assertOneHistory(dir: string): void {
  const eff = effectiveEvents(events(dir));
  assert.equal(eff.filter((e) => e.type === 'run-started').length >= 1, true);
  for (const type of ['task-started', 'task-finished'] as const) {
    const tasks = eff.filter((e) => e.type === type).map((e) => (e as { task: number }).task);
    assert.deepEqual(tasks, [0, 1], `${type} once per task in the effective log`);
  }
  const steps = eff.flatMap((e) => (e.type === 'step' ? [e.globalStep] : []));
  assert.deepEqual(
    steps,
    [...new Set(steps)].sort((a, b) => a - b),
    'no step twice in the effective log',
  );
  assert.equal(eff.filter((e) => e.type === 'run-finished').length, 1);
}

function assertSameNumbers(dir: string): void {
  const fin = finished(dir);
  assert.deepEqual(fin.matrix, reference.matrix);
  assert.deepEqual(fin.metrics, reference.metrics);
}

before(async () => {
  const t0 = Date.now();
  const r = cli('run', writeExperiment(work, CONFIG), '--json');
  referenceMs = Date.now() - t0;
  assert.equal(r.status, 0, r.stderr);
  [whole] = runDirs(out);
  reference = finished(whole);
  stoppedBase = fresh('stopped-base');
  // Killed 3 steps into the second task: two checkpoints, LATEST inside task 1.
  let killed = false;
  await runTrainer(stoppedBase, {}, (e, kill) => {
    if (e.type === 'step' && e.task === 1 && e.step === 3 && !killed) {
      killed = true;
      kill();
    }
  });
  assert.ok(killed);
  const names = readdirSync(checkpoints(stoppedBase)).filter((n) => n !== 'LATEST');
  assert.equal(names.length, 2, `two checkpoints: ${names}`);
});

interface Case {
  name: string;
  /** Damage done to the newest checkpoint (or the folder). */
  damage: (dir: string, cp: string) => void;
  /** tolerated: the run ends with the reference numbers (`warning`: a warning event says so). */
  expect: { tolerated: true; warning?: RegExp } | { tolerated: false; error: RegExp };
}

const CASES: Case[] = [
  {
    name: 'state position.task out of range',
    damage: (_d, cp) => editState(cp, (s) => (s.position.task = 99)),
    expect: { tolerated: true, warning: /position\.task is 99/ },
  },
  {
    name: 'state position.epoch out of range',
    damage: (_d, cp) => editState(cp, (s) => (s.position.epoch = 99)),
    expect: { tolerated: true, warning: /position\.epoch is 99/ },
  },
  {
    name: 'state matrix of strings',
    damage: (_d, cp) => editState(cp, (s) => (s.matrix = [['a', 'b']])),
    expect: { tolerated: true, warning: /matrix\[0\] must be 2 numbers/ },
  },
  {
    name: 'optimizer.safetensors without tensors',
    damage: (_d, cp) => {
      const header = Buffer.from('{}      ');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(header.length));
      writeFileSync(join(cp, 'optimizer.safetensors'), Buffer.concat([len, header]));
      reseal(cp);
    },
    expect: { tolerated: true, warning: /optimizer\.safetensors lacks moment/ },
  },
  {
    name: 'a bit flip in model.safetensors',
    damage: (_d, cp) => {
      const f = join(cp, 'model.safetensors');
      const buf = readFileSync(f);
      buf[buf.length - 5] ^= 0x10;
      writeFileSync(f, buf);
    },
    expect: { tolerated: true, warning: /model\.safetensors does not match its SHA-256/ },
  },
  {
    name: 'all-zero weights',
    damage: (_d, cp) => {
      fillMatrix(join(cp, 'model.safetensors'), 0);
      reseal(cp);
    },
    expect: { tolerated: true, warning: /is all zeros/ },
  },
  {
    name: 'NaN weights',
    damage: (_d, cp) => {
      fillMatrix(join(cp, 'model.safetensors'), NaN);
      reseal(cp);
    },
    expect: { tolerated: true, warning: /holds NaN/ },
  },
  {
    name: 'truncated state.json',
    damage: (_d, cp) => writeFileSync(join(cp, 'state.json'), '{"format": 1, "posi'),
    expect: { tolerated: true, warning: /state\.json has \d+ bytes, the manifest says/ },
  },
  {
    name: 'no manifest (a checkpoint of an earlier version)',
    damage: (_d, cp) => rmSync(join(cp, 'manifest.json')),
    expect: { tolerated: true, warning: /has no manifest/ },
  },
  {
    name: 'an orphan temporary folder',
    damage: (d) => cpSync(latest(d), join(checkpoints(d), '.tmp-step-99-1234'), { recursive: true }),
    expect: { tolerated: true },
  },
  {
    name: 'job.json without a config fingerprint (an earlier version)',
    damage: (d) => {
      const job = JSON.parse(readFileSync(join(d, 'job.json'), 'utf8'));
      delete job.config;
      writeFileSync(join(d, 'job.json'), JSON.stringify(job));
    },
    expect: { tolerated: true, warning: /no fingerprint of config\.json/ },
  },
  {
    name: 'every checkpoint corrupt',
    damage: (d) => {
      for (const n of readdirSync(checkpoints(d)).filter((x) => x !== 'LATEST')) {
        appendFileSync(join(checkpoints(d), n, 'method.safetensors'), 'x');
      }
    },
    expect: { tolerated: false, error: /no checkpoint of the run can be used .*method\.safetensors has \d+ bytes/ },
  },
  {
    name: 'LATEST pointing outside the run folder',
    damage: (d) => writeFileSync(join(checkpoints(d), 'LATEST'), '../../../../etc\n'),
    expect: {
      tolerated: false,
      error: /LATEST cannot be used: it names "\.\.\/\.\.\/\.\.\/\.\.\/etc", which is not a folder inside/,
    },
  },
  {
    name: 'config.json with another learning rate',
    damage: (d) => {
      const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
      c.training.lr = 0.5;
      writeFileSync(join(d, 'config.json'), JSON.stringify(c, null, 2));
    },
    expect: {
      tolerated: false,
      error: /config\.json was changed after the run was created \(field 'training' differs\)/,
    },
  },
  {
    name: 'config.json with a task removed',
    damage: (d) => {
      const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
      c.tasks = c.tasks.slice(0, 1);
      writeFileSync(join(d, 'config.json'), JSON.stringify(c, null, 2));
    },
    expect: { tolerated: false, error: /fields? 'tasks'/ },
  },
];

test('checkpoint, state and config corruptions are tolerated with the same numbers or rejected by name', async () => {
  const prepared = CASES.map((c, i) => {
    const dir = join(work, `case-${i}`);
    cpSync(stoppedBase, dir, { recursive: true });
    c.damage(dir, latest(dir));
    return { c, dir, before: snapshot(dir), logBefore: readFileSync(join(dir, 'events.jsonl'), 'utf8') };
  });
  // Two resumes at a time: each trainer uses one core.
  const results: { status: number | null; stderr: string }[] = [];
  for (let i = 0; i < prepared.length; i += 2) {
    results.push(...(await Promise.all(prepared.slice(i, i + 2).map((p) => cliAsync('resume', p.dir)))));
  }
  prepared.forEach(({ c, dir, before, logBefore }, i) => {
    const r = results[i];
    const evs = events(dir);
    if (c.expect.tolerated) {
      assert.equal(r.status, 0, `${c.name}: ${r.stderr}`);
      assertSameNumbers(dir);
      assertOneHistory(dir);
      const warnings = effectiveEvents(evs).filter((e) => e.type === 'warning');
      if (c.expect.warning) {
        const re = c.expect.warning;
        assert.ok(
          warnings.some((w) => w.type === 'warning' && re.test(w.message)),
          `${c.name}: a warning matching ${re}, got ${JSON.stringify(warnings)}`,
        );
      }
      assert.deepEqual(
        readdirSync(checkpoints(dir)).filter((n) => n.startsWith('.')),
        [],
        `${c.name}: no temporary folders left`,
      );
    } else {
      assert.equal(r.status, 1, `${c.name}: ${r.stderr}`);
      assert.deepEqual(snapshot(dir), before, `${c.name}: the folder's files are as they were`);
      const log = readFileSync(join(dir, 'events.jsonl'), 'utf8');
      assert.ok(log.startsWith(logBefore), `${c.name}: the log was only appended to`);
      const added = parseEventLog(log.slice(logBefore.length)).events;
      assert.deepEqual(
        added.map((e) => e.type),
        ['error'],
        `${c.name}: one error event`,
      );
      const err = added[0];
      assert.ok(err.type === 'error' && c.expect.error.test(err.message), `${c.name}: ${JSON.stringify(err)}`);
      assert.equal(foldRun('x', events(dir)).status, 'failed');
    }
  });
});

test('kill -9 before the first checkpoint, during a checkpoint write and during pruning: resume gives the same run', async () => {
  const points = ['checkpoint-write@1', 'checkpoint-write@3', 'prune@1'];
  const dirs = points.map((p) => fresh(`killed-${p.replace('@', '-')}`));
  await Promise.all(points.map((p, i) => killAt(dirs[i], p)));
  // Before the first checkpoint: a partial temporary folder and no LATEST.
  assert.ok(!existsSync(join(checkpoints(dirs[0]), 'LATEST')));
  assert.ok(readdirSync(checkpoints(dirs[0])).some((n) => n.startsWith('.tmp-')));
  // During pruning: LATEST names a complete checkpoint; the one being deleted is out of the way.
  assert.ok(existsSync(join(latest(dirs[2]), 'manifest.json')));
  assert.ok(readdirSync(checkpoints(dirs[2])).some((n) => n.startsWith('.del-')));
  const results = await Promise.all(dirs.map((d) => cliAsync('resume', d)));
  dirs.forEach((dir, i) => {
    assert.equal(results[i].status, 0, `${points[i]}: ${results[i].stderr}`);
    assertSameNumbers(dir);
    assertOneHistory(dir);
    assert.deepEqual(leftovers(dir), [], `${points[i]}: leftovers removed`);
  });
  // The restart after a kill before any checkpoint supersedes the first attempt entirely.
  const starts = events(dirs[0]).filter((e) => e.type === 'run-started');
  assert.equal(starts.length, 2);
  assert.ok(starts[1].type === 'run-started' && starts[1].resumedFrom?.supersededFrom === 1);
  assert.deepEqual(effectiveEvents(events(dirs[0]))[0], starts[1]);
});

/** The trainer on `dir`, killed with SIGKILL after `ms` unless it ended before; resolves with its exit code. */
function killAfter(dir: string, ms: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = fork(TRAINER, [dir], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: RUN_ENV });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

test('kill -9 at seeded random moments, again and again, then resume: the same numbers and one history', async (t) => {
  // The moments are random in time, not chosen points: with start-up, steps, evaluations, checkpoint writes and
  // pruning all taking part of a run, some kills land inside a write. The seed fixes where in a run's length the
  // kills fall (300 ms to 80% of the uninterrupted run's time, which depends on the machine), not what they hit.
  let seed = 20261207;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const dirs = [0, 1, 2].map((i) => fresh(`random-kills-${i}`));
  const span = Math.max(1000, 0.8 * referenceMs) - 300;
  const delays: number[][] = dirs.map(() => [0, 1, 2].map(() => 300 + Math.floor(random() * span)));
  let killed = 0;
  await Promise.all(
    dirs.map(async (dir, i) => {
      for (const ms of delays[i]) {
        if (existsSync(join(dir, 'events.jsonl')) && foldRun(dir, events(dir)).status === 'finished') break;
        if ((await killAfter(dir, ms)) === null) killed++;
      }
      const r = await cliAsync('resume', dir);
      assert.equal(r.status, 0, `${dir} after kills at ${delays[i].join(', ')} ms: ${r.stderr}`);
      assertSameNumbers(dir);
      assertOneHistory(dir);
      assert.deepEqual(leftovers(dir), [], 'no temporary folders left');
    }),
  );
  t.diagnostic(`kill delays (ms): ${delays.map((d) => d.join('/')).join(', ')}; ${killed} trainers killed mid-run`);
  // Not a vacuous test: most delays fall inside a run, whose start-up alone takes longer than the shortest delay.
  assert.ok(killed >= 3, `only ${killed} of the kills landed inside a run`);
});

test('a partial last line in events.jsonl: resume starts a new line and its record is kept', () => {
  const dir = join(work, 'partial');
  cpSync(stoppedBase, dir, { recursive: true });
  appendFileSync(join(dir, 'events.jsonl'), '{"v":1,"runId":"x","seq":99,"type":"st');
  const r = cli('resume', dir);
  assert.equal(r.status, 0, r.stderr);
  const log = parseEventLog(readFileSync(join(dir, 'events.jsonl'), 'utf8'));
  assert.equal(log.badLines.length, 1, 'the fragment stays one unreadable line');
  const resumed = log.events.filter((e) => e.type === 'run-started' && e.resumedFrom);
  assert.equal(resumed.length, 1, 'the resume record was written on a line of its own');
  assertSameNumbers(dir);
  assertOneHistory(dir);
});

test('malformed events do not crash report, report --html or --json; they are skipped and counted', () => {
  const dir = join(work, 'malformed');
  cpSync(whole, dir, { recursive: true });
  const bad = [
    { v: 1, runId: 'x', seq: 1000, time: 0, type: 'task-finished', task: 0, name: 7, row: 'x', metrics: null },
    { v: 1, runId: 'x', seq: 1001, time: 0, type: 'run-finished', matrix: [['a']], zeroShot: 5, metrics: {} },
    { v: 1, runId: 'x', seq: 1002, time: 0, type: 'run-started', tasks: 3, method: {} },
  ];
  appendFileSync(join(dir, 'events.jsonl'), bad.map((e) => JSON.stringify(e)).join('\n') + '\n');
  appendFileSync(join(dir, 'events.jsonl'), Buffer.from([0, 159, 146, 150, 10, 255, 254, 10]));
  appendFileSync(
    join(dir, 'events.jsonl'),
    '{"v":1,"runId":"x","seq":1003,"time":0,"type":"stopped","task":"one","step":1}\n',
  );
  for (const flags of [[], ['--html'], ['--json'], ['--csv']]) {
    const r = cli('report', dir, ...flags);
    assert.equal(r.status, 0, `report ${flags}: ${r.stderr}`);
    assert.match(r.stderr, /skipped 6 line\(s\) of events\.jsonl that are not valid events/);
  }
  const { runs, aggregate } = JSON.parse(cli('report', dir, '--json').stdout);
  assert.equal(runs[0].status, 'finished');
  assert.deepEqual(runs[0].matrix, reference.matrix);
  assert.equal(aggregate.methods[0].n, 1, 'the run is counted in the aggregate');
});
