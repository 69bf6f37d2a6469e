// The host side of the Predictions tab against a fake vscode API: a `predictions-request` for one of the panel's
// runs is answered from its folder (every set listed, the chosen one as a confusion matrix), a request for any
// other folder or a malformed one is not, and nothing about predictions is pushed unasked.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fake, Uri } from './fake-vscode';
import type { HostMessage } from '../../src/protocol/webview';
import type { PredictionsMessage } from '../../src/protocol/predictions';
import { predictionRecord, writePredictionPoint } from '../../src/runs/predictions';
import { fixture } from '../helpers/paths';

// Imported after the fake is installed (a static import would be evaluated first).
const host = () => import('../../src/extension/dashboard');

const root = mkdtempSync(join(tmpdir(), 'sculpt-predictions-host-'));
after(() => rmSync(root, { recursive: true, force: true }));
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

test('predictions are read on request, for the panel’s own runs only', async () => {
  const dir = join(root, 'run');
  mkdirSync(dir);
  cpSync(fixture('events', 'seqft-finished.jsonl'), join(dir, 'events.jsonl'));
  const records = [
    predictionRecord(0, 'sunny', 'good', 'good', true, { labels: ['good', 'bad'], values: [-0.1, -2] }),
    predictionRecord(1, 'rainy', 'bad', 'good', false, { labels: ['good', 'bad'], values: [-0.4, -1] }),
  ];
  const set = { split: 'test' as const, task: 0, name: 'sentiment', mode: 'rank' as const, labels: ['good', 'bad'] };
  writePredictionPoint(dir, 2, ['sentiment', 'topic', 'size'], [{ ...set, accuracy: 50, records }]);
  const { registerDashboard } = await host();
  const m = registerDashboard({ extensionUri: Uri.file('/ext'), subscriptions: [] } as never);
  m.open([dir]);
  const p = fake.panels.at(-1)!;
  p.fromWebview({ type: 'ready', protocol: 1 });
  await tick(20);
  const sent = () => p.sent as HostMessage[];
  assert.deepEqual(
    sent().map((x) => x.type),
    ['init'],
    'nothing about predictions unasked',
  );
  p.fromWebview({ type: 'predictions-request', requestId: 5, key: dir, pick: { task: 3 } });
  await tick(20);
  const reply = sent().at(-1) as PredictionsMessage;
  assert.equal(reply.type, 'predictions');
  assert.deepEqual([reply.requestId, reply.key, reply.sets.length], [5, dir, 1]);
  assert.deepEqual(reply.view?.confusion?.counts, [
    [1, 0],
    [1, 0],
  ]);
  assert.deepEqual(
    reply.view?.misclassified.map((r) => [r.index, r.input, r.predicted]),
    [[1, 'rainy', 'good']],
  );
  const n = sent().length;
  p.fromWebview({ type: 'predictions-request', requestId: 6, key: root, pick: {} });
  p.fromWebview({ type: 'predictions-request', requestId: 7, key: '/etc', pick: {} });
  p.fromWebview({ type: 'predictions-request', requestId: 8, key: dir, pick: { task: 'x' } });
  p.fromWebview({ type: 'predictions-request', requestId: 9, key: dir });
  await tick(20);
  assert.equal(sent().length, n, 'other folders and malformed requests get no answer');
  m.dispose();
});
