// The dashboard's header line of facts about a run: a torch run names its engine as the Runs view does
// ("torch ×2 (fsdp2, bf16)"), with the version and device in the tooltip; a tfjs run, or one from a log written
// before the engine block existed, reads as it always did (its backend, no engine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseEventLog, type RunStartedEvent, type SculptEvent } from '../../src/protocol/events';
import { emptyDashboard, reduceHost, type RunState } from '../../webview/state';
import { runFactList } from '../../webview/components/header';
import { fixture } from '../helpers/paths';

const events = (name: string) => parseEventLog(readFileSync(fixture('events', `${name}.jsonl`), 'utf8')).events;

/** The log with its run-started event changed by `edit` (the same run, as if another engine had trained it). */
function restarted(evs: SculptEvent[], edit: (e: RunStartedEvent) => RunStartedEvent): SculptEvent[] {
  return evs.map((e) => (e.type === 'run-started' ? edit(e) : e));
}

function run(evs: SculptEvent[]): RunState {
  const st = emptyDashboard();
  reduceHost(st, {
    type: 'init',
    protocol: 1,
    theme: 'dark',
    runs: [
      { key: '/w/runs/seqft-o1-s0', name: 'seqft-o1-s0', live: false, events: evs, truncatedTail: false, badLines: 0 },
    ],
  });
  return st.runs[0];
}

const text = (r: RunState) =>
  runFactList(r)
    .map((f) => f.text)
    .join(' · ');

/** The run-started event as the torch worker writes it: the worker is the backend too. */
const torch = (e: RunStartedEvent): RunStartedEvent => ({
  ...e,
  backend: { name: 'torch', device: 'cuda:0 (NVIDIA H100 80GB HBM3)', isGpu: true, fallbacks: [] },
  engine: { name: 'torch', version: '2.13.0', world: 2, shard: 'fsdp2', precision: 'bf16' },
});

test('a torch run: the header names the engine, its world size, sharding and precision; version in the tooltip', () => {
  const r = run(restarted(events('seqft-finished'), torch));
  const facts = runFactList(r);
  assert.deepEqual(
    facts.map((f) => f.key),
    ['method', 'tasks', 'engine', 'model'],
  );
  assert.equal(
    text(r),
    'seqft · 3 tasks: sentiment → topic → size · torch ×2 (fsdp2, bf16) on GPU · llama, 21k parameters',
  );
  assert.equal(
    facts.find((f) => f.key === 'engine')?.title,
    'Engine: torch 2.13.0 ×2 (fsdp2, bf16)\nDevice: cuda:0 (NVIDIA H100 80GB HBM3)',
  );
});

test('a single-process fp32 torch run on the CPU reads as just "torch"', () => {
  const r = run(
    restarted(events('seqft-finished'), (e) => ({
      ...torch(e),
      backend: { name: 'torch', device: 'cpu', isGpu: false, fallbacks: [] },
      engine: { name: 'torch', version: '2.13.0', world: 1, shard: 'none', precision: 'fp32' },
    })),
  );
  const engine = runFactList(r).find((f) => f.key === 'engine');
  assert.equal(engine?.text, 'torch');
  assert.equal(engine?.title, 'Engine: torch 2.13.0\nDevice: cpu');
  assert.equal(runFactList(r).filter((f) => f.key === 'backend').length, 0, 'one fact says torch');
});

test('a tfjs run, and one from a log without the engine block, show their backend and no engine', () => {
  const old = events('seqft-finished');
  assert.equal((old[0] as RunStartedEvent).engine, undefined, 'the fixture predates the engine block');
  const expected = 'seqft · 3 tasks: sentiment → topic → size · wasm · llama, 21k parameters';
  for (const evs of [old, restarted(old, (e) => ({ ...e, engine: { name: 'tfjs' } }))]) {
    const r = run(evs);
    assert.equal(text(r), expected);
    assert.deepEqual(
      runFactList(r).map((f) => f.key),
      ['method', 'tasks', 'backend', 'model'],
    );
    assert.ok(runFactList(r).every((f) => f.title === undefined));
  }
});
