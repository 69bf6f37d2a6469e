/**
 * A full disk, through the built CLI and trainer (dist/; `npm run build` first): an event append or a checkpoint
 * write fails with ENOSPC (SCULPT_TEST_FAIL_WRITE, src/engine/io/write-failure.ts). The run must fail, never
 * finish, with a message that names the file and says to free space and resume; the resume must end with the
 * numbers of an uninterrupted run and one history in the effective log.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseEventLog, type SculptEvent } from '../../src/protocol/events';
import { effectiveEvents, foldRun } from '../../src/runs/fold';
import { EventWriter } from '../../src/trainer/event-writer';
import { WriteFailedError } from '../../src/engine/io/write-failure';
import { writeExperiment } from '../helpers/experiment';
import { checkpoints, faultExperiment, freshCopy, latestName, leftovers } from '../helpers/faults';
import { CLI, RUN_ENV, cli, cliAsync, events, finished, runDirs } from '../helpers/runs';

const work = mkdtempSync(join(tmpdir(), 'sculpt-disk-full-'));
const out = join(work, 'runs');

// Checkpoints: step-2, step-4, task-1 (after task 0), step-6, step-8.
const CONFIG = faultExperiment('disk-full', out);

let whole = '';
let reference: SculptEvent[] = [];
const fresh = (name: string): string => freshCopy(whole, work, name);

/** `sculpt resume <dir>` with the write fault `fault` (SCULPT_TEST_FAIL_WRITE). */
function resumeWithFault(dir: string, fault: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'resume', dir], {
      env: { ...RUN_ENV, SCULPT_TEST_FAIL_WRITE: fault },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

const logOf = (dir: string) => parseEventLog(readFileSync(join(dir, 'events.jsonl'), 'utf8'));

/** The seq of the reference run's n-th event of `type` (1-based): in a fresh run, the n-th event append. */
function seqOf(type: SculptEvent['type'], nth = 1): number {
  const e = reference.filter((x) => x.type === type)[nth - 1];
  assert.ok(e, `the reference run has ${nth} '${type}' event(s)`);
  return e.seq;
}

/** The name of the reference run's n-th checkpoint. */
function checkpointName(nth: number): string {
  const e = reference.filter((x) => x.type === 'checkpoint')[nth - 1];
  assert.ok(e?.type === 'checkpoint');
  return basename(e.path);
}

/** What a failed session must have said: the file, and to free space then resume this folder. */
function assertReported(dir: string, text: string, file: RegExp): void {
  assert.match(text, file);
  assert.match(text, /ENOSPC: no space left on device/);
  assert.ok(text.includes(`Free space on the disk that holds ${dir}, then \`sculpt resume ${dir}\``), text);
}

/** The run resumed without the fault: the reference numbers, one history, no temporary folder. */
function assertRecovered(dir: string, what: string): void {
  const fin = finished(dir);
  const ref = reference.find((e) => e.type === 'run-finished');
  assert.ok(ref?.type === 'run-finished');
  assert.deepEqual(fin.matrix, ref.matrix, `${what}: matrix`);
  assert.deepEqual(fin.metrics, ref.metrics, `${what}: metrics`);
  assert.deepEqual(fin.validationMatrix, ref.validationMatrix, `${what}: validation matrix`);
  const log = logOf(dir);
  assert.ok(log.badLines.length <= 1, `${what}: at most the fragment of the failed append is unreadable`);
  const eff = effectiveEvents(log.events);
  for (const type of ['task-started', 'task-finished'] as const) {
    const tasks = eff.filter((e) => e.type === type).map((e) => (e as { task: number }).task);
    assert.deepEqual(tasks, [0, 1], `${what}: ${type} once per task`);
  }
  const evals = eff.flatMap((e) => (e.type === 'eval' ? [`${e.afterTask}/${e.task}/${e.split ?? 'test'}`] : []));
  assert.deepEqual(evals, [...new Set(evals)], `${what}: no evaluation twice`);
  assert.equal(evals.length, reference.filter((e) => e.type === 'eval').length, `${what}: every evaluation`);
  const steps = eff.flatMap((e) => (e.type === 'step' ? [e.globalStep] : []));
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8], `${what}: every step once`);
  assert.equal(eff.filter((e) => e.type === 'run-finished').length, 1, `${what}: one run-finished`);
  assert.equal(eff.filter((e) => e.type === 'error').length, 0, `${what}: the failure is superseded`);
  assert.equal(foldRun('x', log.events).status, 'finished');
  assert.deepEqual(leftovers(dir), [], `${what}: no temporary folders left`);
}

before(() => {
  const r = cli('run', writeExperiment(work, CONFIG), '--json');
  assert.equal(r.status, 0, r.stderr);
  [whole] = runDirs(out);
  reference = events(whole);
});

test('ENOSPC on an event append: the run fails naming events.jsonl; resume ends with the same numbers', async () => {
  // At task 0's task-finished, after checkpoint step-4: the disk fills up for one append (the error event then
  // fits), or for good (nothing more can be appended).
  const at = seqOf('task-finished');
  const cases = [
    { fault: `events@${at}`, dir: fresh('events-once'), errorRecorded: true },
    { fault: `events@${at}+`, dir: fresh('events-full'), errorRecorded: false },
  ];
  const results = await Promise.all(cases.map((c) => resumeWithFault(c.dir, c.fault)));
  cases.forEach(({ fault, dir, errorRecorded }, i) => {
    const r = results[i];
    assert.equal(r.status, 1, `${fault}: ${r.stderr}`);
    const file = /could not append an event to \S*events\.jsonl: ENOSPC/;
    assertReported(dir, r.stderr, file);
    assertReported(dir, readFileSync(join(dir, 'trainer.log'), 'utf8'), file);
    assert.ok(!/^finished: /m.test(r.stderr), `${fault}: not reported as finished`);
    const log = logOf(dir);
    assert.equal(log.badLines.length, 1, `${fault}: the half-written line is the one unreadable line`);
    assert.equal(log.events.filter((e) => e.type === 'run-finished').length, 0, `${fault}: no run-finished`);
    const errors = log.events.filter((e) => e.type === 'error');
    if (errorRecorded) {
      // On a line of its own after the fragment, so that the log says why the run stopped.
      assert.equal(errors.length, 1, `${fault}: one error event`);
      assert.ok(
        errors[0].type === 'error' && file.test(errors[0].message) && errors[0].where?.endsWith('events.jsonl'),
      );
      assert.equal(foldRun('x', log.events).status, 'failed');
      assert.match(r.stderr, /^failed: /m);
    } else {
      assert.equal(errors.length, 0, `${fault}: nothing could be appended after the failure`);
      assert.match(r.stderr, /could not be recorded in the event log either/);
      assert.notEqual(foldRun('x', log.events).status, 'finished');
      assert.match(r.stderr, /^crashed: /m);
    }
    assert.equal(latestName(dir), checkpointName(2), `${fault}: LATEST names the last checkpoint written`);
  });
  const resumed = await Promise.all(cases.map((c) => cliAsync('resume', c.dir)));
  cases.forEach(({ fault, dir }, i) => {
    assert.equal(resumed[i].status, 0, `${fault} resumed: ${resumed[i].stderr}`);
    assertRecovered(dir, fault);
  });
});

test('ENOSPC part-way through a checkpoint write: LATEST stays on the previous one; resume gives the same run', async () => {
  // The first checkpoint (none before it) and the third (task-1, after step-2 and step-4).
  const cases = [
    { fault: 'checkpoint@1', dir: fresh('checkpoint-first'), previous: null },
    { fault: 'checkpoint@3', dir: fresh('checkpoint-third'), previous: checkpointName(2) },
  ];
  const results = await Promise.all(cases.map((c) => resumeWithFault(c.dir, c.fault)));
  cases.forEach(({ fault, dir, previous }, i) => {
    const r = results[i];
    assert.equal(r.status, 1, `${fault}: ${r.stderr}`);
    const failed = checkpointName(Number(fault.split('@')[1]));
    const file = new RegExp(`could not write checkpoint \\S*checkpoints/${failed}: ENOSPC`);
    assertReported(dir, r.stderr, file);
    assertReported(dir, readFileSync(join(dir, 'trainer.log'), 'utf8'), file);
    assert.match(r.stderr, /^failed: /m);
    const log = logOf(dir);
    assert.equal(log.badLines.length, 0);
    assert.equal(log.events.filter((e) => e.type === 'run-finished').length, 0, `${fault}: no run-finished`);
    const errors = log.events.filter((e) => e.type === 'error');
    assert.equal(errors.length, 1, `${fault}: one error event`);
    assert.ok(errors[0].type === 'error' && file.test(errors[0].message), JSON.stringify(errors[0]));
    assert.equal(foldRun('x', log.events).status, 'failed');
    assert.equal(latestName(dir), previous, `${fault}: LATEST as before the failed write`);
    assert.ok(!existsSync(join(checkpoints(dir), failed)), `${fault}: no folder of the failed checkpoint`);
    assert.deepEqual(leftovers(dir), [], `${fault}: the partial checkpoint was removed`);
  });
  const resumed = await Promise.all(cases.map((c) => cliAsync('resume', c.dir)));
  cases.forEach(({ fault, dir }, i) => {
    assert.equal(resumed[i].status, 0, `${fault} resumed: ${resumed[i].stderr}`);
    assertRecovered(dir, fault);
  });
});

test(
  'a real ENOSPC (/dev/full) on an event append is a WriteFailedError naming the file',
  { skip: !existsSync('/dev/full') },
  () => {
    const writer = new EventWriter('/dev/full', 'x', 0);
    assert.throws(
      () => writer.emit({ type: 'warning', code: 'test', message: 'm' }),
      (e: unknown) =>
        e instanceof WriteFailedError &&
        e.noSpace &&
        e.path === '/dev/full' &&
        /could not append an event to \/dev\/full: ENOSPC/.test(e.message),
    );
  },
);
