/**
 * The supervisor's parts that need no process: the typed channel to a trainer (both directions), the verdict on
 * how a session ended, and the rule that nothing under src/supervisor/ imports vscode or the engine. The
 * supervisor with real processes is in test/integration/supervisor.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isEvent, type SculptEvent } from '../../src/protocol/events';
import {
  describeMessage,
  isHostMessage,
  isTrainerMessage,
  type AliveMessage,
  type HostMessage,
} from '../../src/protocol/trainer';
import { emptySummary, foldEvent } from '../../src/runs/fold';
import { TrainerChannel, nodeTrainerCommand, type IpcEnd } from '../../src/supervisor';
import { judge, newSession, type RunRecord } from '../../src/supervisor/session';
import { repoRoot } from '../helpers/paths';

/** A stand-in for a child process's end of the IPC channel. */
class FakeEnd extends EventEmitter implements IpcEnd {
  connected = true;
  sent: unknown[] = [];
  send(message: HostMessage): boolean {
    this.sent.push(message);
    return true;
  }
}

const event = (seq: number, body: Record<string, unknown>) => ({ v: 1, runId: 'r', seq, time: 0, ...body });

/** A channel on a stand-in IPC end, with what it passed on to each handler. */
function channel() {
  const end = new FakeEnd();
  const events: SculptEvent[] = [];
  const strays: unknown[] = [];
  const notices: AliveMessage[] = [];
  new TrainerChannel(end, {
    event: (e) => events.push(e),
    alive: (m) => notices.push(m),
    stray: (m) => strays.push(m),
  });
  return { end, events, strays, notices };
}

test('the channel passes on events and nothing else', () => {
  const { end, events, strays, notices } = channel();
  const good = event(1, { type: 'warning', message: 'w' });
  const bad = [
    null,
    'text',
    42,
    [good],
    { type: 'warning' },
    event(2, { type: 'no-such-type' }),
    { ...good, seq: '3' },
    { ...good, runId: undefined },
  ];
  end.emit('message', good);
  for (const m of bad) end.emit('message', m);
  assert.deepEqual(events, [good]);
  assert.deepEqual(strays, bad);
  assert.deepEqual(notices, []);
});

test('the channel passes on notices that the trainer is alive, apart from events and strays', () => {
  const { end, events, strays, notices } = channel();
  const notice = { type: 'alive', phase: 'loading the model in the PyTorch worker' };
  const malformed = [{ type: 'alive' }, { type: 'alive', phase: 3 }, { type: 'Alive', phase: 'x' }];
  end.emit('message', notice);
  for (const m of malformed) end.emit('message', m);
  end.emit('message', event(1, { type: 'warning', message: 'w' }));
  assert.deepEqual(notices, [notice]);
  assert.deepEqual(strays, malformed);
  assert.deepEqual(
    events.map((e) => e.seq),
    [1],
  );
});

test('the channel sends only declared host messages, and only while it is open', () => {
  const end = new FakeEnd();
  const ch = new TrainerChannel(end, { event: () => {}, alive: () => {}, stray: () => {} });
  assert.equal(ch.send({ type: 'stop' }), true);
  assert.equal(ch.send({ type: 'pause' } as unknown as HostMessage), false, 'built from untyped input');
  end.connected = false;
  assert.equal(ch.send({ type: 'stop' }), false);
  assert.deepEqual(end.sent, [{ type: 'stop' }]);
});

test('host messages: stop is known, anything else is not; what is ignored can be printed', () => {
  assert.equal(isHostMessage({ type: 'stop' }), true);
  for (const m of [undefined, null, 'stop', ['stop'], {}, { type: 'Stop' }, { type: 'pause' }, { type: 1 }])
    assert.equal(isHostMessage(m), false, JSON.stringify(m));
  assert.equal(describeMessage({ type: 'pause' }), '{"type":"pause"}');
  assert.equal(describeMessage(undefined), 'undefined');
  assert.match(describeMessage({ s: 'x'.repeat(500) }), /^.{200}…$/);
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  assert.equal(describeMessage(circular), '[object Object]');
});

test('trainer messages: an alive notice with its phase, nothing else; never an event, never a host message', () => {
  assert.equal(isTrainerMessage({ type: 'alive', phase: 'loading' }), true);
  assert.equal(isTrainerMessage({ type: 'alive', phase: '' }), true);
  for (const m of [undefined, null, 'alive', [{ type: 'alive', phase: 'x' }], { type: 'alive' }, { phase: 'x' }])
    assert.equal(isTrainerMessage(m), false, JSON.stringify(m));
  assert.equal(isTrainerMessage({ type: 'stop' }), false);
  assert.equal(isHostMessage({ type: 'alive', phase: 'x' }), false);
  assert.equal(isEvent({ v: 1, runId: 'r', seq: 1, time: 0, type: 'alive', phase: 'x' }), false);
});

test('the verdict: the session log first, then what the supervisor did, then how the process ended', () => {
  const rec = (events: Record<string, unknown>[], extra: Partial<RunRecord> = {}): RunRecord => ({
    dir: '/runs/r',
    state: 'running',
    attached: false,
    embedded: false,
    progress: events.reduce((s, e) => foldEvent(s, e as unknown as SculptEvent), emptySummary('r')),
    ...extra,
  });
  const started = {
    type: 'run-started',
    method: 'seqft',
    tasks: ['a'],
    order: 0,
    config: {},
    backend: { name: 'cpu' },
    model: {},
  };
  const s = newSession(0);
  assert.deepEqual(
    judge(rec([started, { type: 'run-finished', matrix: [[1]], zeroShot: null, metrics: {}, seconds: 1 }]), s, 1000),
    { state: 'finished' },
  );
  assert.deepEqual(judge(rec([started, { type: 'stopped', task: 0, step: 1 }]), s, 1000), { state: 'stopped' });
  assert.deepEqual(
    judge(rec([started, { type: 'stopped', task: 0, step: 1 }, started]), s, 1000).state,
    'crashed',
    'a resumed session that ends without a final event',
  );
  assert.deepEqual(judge(rec([started], { exitCode: null, exitSignal: 'SIGKILL' }), s, 1000), {
    state: 'crashed',
    problem: 'The trainer exited (signal SIGKILL) without finishing.',
  });
  assert.equal(judge(rec([started], { attached: true }), s, 1000).problem, 'The trainer ended without finishing.');
  assert.deepEqual(judge(rec([]), { ...s, killedFor: 'timeout' }, 120_000), {
    state: 'crashed',
    problem: 'The trainer sent no event within 120 s of starting and was killed.',
  });
  assert.deepEqual(judge(rec([], { phase: 'loading the model' }), { ...s, killedFor: 'timeout' }, 120_000), {
    state: 'crashed',
    problem:
      'The trainer sent no event and was killed after 120 s without word from it; the last it reported was: loading the model.',
  });
  assert.equal(judge(rec([started]), { ...s, killedFor: 'kill' }, 1000).state, 'killed');
  assert.equal(
    judge(rec([started, { type: 'stopped', task: 0, step: 1 }]), { ...s, killedFor: 'stop' }, 1000).state,
    'stopped',
    'it stopped before the kill landed',
  );
  const error = { type: 'error', message: 'boom', where: 'config', hint: 'Fix it.' };
  assert.deepEqual(judge(rec([started, error]), { ...s, error: event(2, error) as never }, 1000), {
    state: 'failed',
    problem: 'boom (config)\nFix it.',
  });
});

test('the node trainer command: node options, then the script, then the run folder', () => {
  const cmd = nodeTrainerCommand({
    node: '/usr/bin/node',
    nodeArgs: ['--max-old-space-size=4096'],
    script: '/x/dist/trainer.js',
    dir: '/runs/r',
    env: { A: '1' },
  });
  assert.deepEqual(cmd, {
    command: '/usr/bin/node',
    args: ['--max-old-space-size=4096', '/x/dist/trainer.js', '/runs/r'],
    env: { A: '1' },
  });
  assert.equal(nodeTrainerCommand({ node: 'code', script: 's', dir: 'd', env: {}, embedded: true }).embedded, true);
});

test('nothing under src/supervisor/ imports vscode or the engine', () => {
  const dir = join(repoRoot, 'src', 'supervisor');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 5, files.join(', '));
  for (const f of files) {
    const specifiers = [...readFileSync(join(dir, f), 'utf8').matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map(
      (m) => m[1],
    );
    for (const spec of specifiers) {
      assert.ok(
        spec !== 'vscode' &&
          !spec.includes('/engine') &&
          !spec.includes('/extension') &&
          !spec.startsWith('@tensorflow'),
        `${f} imports ${spec}`,
      );
    }
  }
});
