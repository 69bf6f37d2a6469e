/**
 * The trainer's notices that it is alive before its first event (src/trainer/alive.ts): sent at once and on an
 * interval, with the phase of the moment, until stopped; never without an IPC channel; never a timer left behind;
 * and a tfjs run's phases up to its first event (the PyTorch engine's: test/integration/torch-bridge.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tinyRun } from '../helpers/tiny-run';
import type { AliveMessage } from '../../src/protocol/trainer';
import { ALIVE_INTERVAL_MS, ipcSendAlive, startHeartbeat, type IpcProcess } from '../../src/trainer/alive';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a heartbeat says its phase at once and on every interval, the new phase at once, nothing once stopped', async () => {
  const sent: AliveMessage[] = [];
  const beat = startHeartbeat((m) => sent.push(m), 'preparing', 20);
  assert.deepEqual(sent, [{ type: 'alive', phase: 'preparing' }], 'the first notice does not wait for the interval');
  assert.equal(beat.stopped, false);
  await sleep(110);
  assert.ok(sent.length >= 3, `${sent.length} notices in 110 ms at 20 ms`);
  assert.ok(sent.every((m) => m.phase === 'preparing'));
  const before = sent.length;
  beat.phase('loading the model');
  assert.deepEqual(sent.slice(before), [{ type: 'alive', phase: 'loading the model' }]);
  await sleep(60);
  assert.ok(sent.length > before + 1);
  assert.equal(sent.at(-1)?.phase, 'loading the model');
  beat.stop();
  assert.equal(beat.stopped, true);
  const atStop = sent.length;
  beat.phase('after the hello');
  beat.stop();
  await sleep(80);
  assert.equal(sent.length, atStop, 'no notice after stop: its timer is gone');
});

test('without a channel a heartbeat sends nothing and sets no timer', async () => {
  const beat = startHeartbeat(undefined, 'loading', 10);
  assert.equal(beat.stopped, true);
  beat.phase('other');
  beat.stop();
  assert.equal(ALIVE_INTERVAL_MS, 30_000, "a quarter of the extension's 120 s start-up timeout");
});

test('the IPC sender: none without a channel; nothing sent once it is closed; a failing send does not throw', () => {
  assert.equal(ipcSendAlive({ connected: false }), undefined, 'no process.send: a CLI run or a test');
  const sent: unknown[] = [];
  const proc: { connected: boolean; send: IpcProcess['send'] } = {
    connected: true,
    send: (m: unknown, _h?: unknown, _o?: unknown, cb?: (e: Error | null) => void) => {
      sent.push(m);
      assert.equal(typeof cb, 'function', 'errors go to a callback, not to an error event on the process');
      return true;
    },
  };
  const send = ipcSendAlive(proc)!;
  send({ type: 'alive', phase: 'loading' });
  proc.connected = false;
  send({ type: 'alive', phase: 'late' });
  assert.deepEqual(sent, [{ type: 'alive', phase: 'loading' }]);
  proc.connected = true;
  proc.send = () => {
    throw new Error('channel closed');
  };
  assert.doesNotThrow(() => send({ type: 'alive', phase: 'closing' }));
});

test('a tfjs run says each phase before run-started (backend, tasks, tokenizing, model, weights), then nothing', async () => {
  const seen: { phase: string; eventsBefore: number }[] = [];
  let events = 0;
  const { dir, outcome } = await tinyRun(
    'alive',
    { tasks: [{ name: 'sentiment', source: { builtin: 'tiny/sentiment' }, trainLimit: 8, testLimit: 4 }] },
    {
      echo: () => events++,
      notices: { send: (m) => seen.push({ phase: m.phase, eventsBefore: events }), intervalMs: 5 },
    },
  );
  assert.equal(outcome, 'finished', readFileSync(join(dir, 'events.jsonl'), 'utf8'));
  const phases = [...new Set(seen.map((n) => n.phase))];
  assert.deepEqual(phases, [
    'reading the run folder',
    'starting the cpu backend',
    'reading the tasks',
    'tokenizing the tasks and checking them against the model',
    'loading the model',
    'checking that the weights are finite',
  ]);
  assert.deepEqual(
    seen.filter((n) => n.eventsBefore > 0),
    [],
    'every notice went out before the first event (run-started), none after',
  );
  const atEnd = seen.length;
  await sleep(30);
  assert.equal(seen.length, atEnd, 'no timer left running');
});
