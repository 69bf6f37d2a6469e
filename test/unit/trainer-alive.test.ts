/**
 * The trainer's notices that it is alive before its first event (src/trainer/alive.ts): sent at once and on an
 * interval, with the phase of the moment, until stopped; never without an IPC channel; never a timer left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AliveMessage } from '../../src/protocol/trainer';
import { ALIVE_INTERVAL_MS, ipcSendAlive, startHeartbeat, type IpcProcess } from '../../src/trainer/alive';

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
