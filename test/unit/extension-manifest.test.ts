/**
 * package.json's contributions agree with the code: every contributed command is registered and every
 * registered command contributed, menus and views name things that exist, settings are the documented ones,
 * and running is gated on workspace trust.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../helpers/paths';

const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
const c = pkg.contributes;
const extDir = path.join(repoRoot, 'src', 'extension');
const sources = [...readdirSync(extDir), ...readdirSync(path.join(extDir, 'trees')).map((f) => `trees/${f}`)]
  .filter((f) => f.endsWith('.ts'))
  .map((f) => readFileSync(path.join(extDir, f), 'utf8'))
  .join('\n');

test('contributed and registered commands are the same set', () => {
  const contributed = new Set<string>(c.commands.map((x: { command: string }) => x.command));
  const registered = new Set([...sources.matchAll(/(?:registerCommand|reg)\('(sculpt\.[\w.]+)'/g)].map((m) => m[1]));
  assert.deepEqual([...registered].sort(), [...contributed].sort());
  for (const x of c.commands) assert.equal(x.category, 'Sculpt', x.command);
  for (const title of [
    'New Experiment',
    'Run Experiment',
    'Stop Run',
    'Resume Run',
    'Open Dashboard',
    'Open Run...',
    'Compare Runs',
    'Export Report',
    'Show Trainer Log',
  ]) {
    assert.ok(
      c.commands.some((x: { title: string }) => x.title === title),
      title,
    );
  }
});

test('menus name contributed commands; views and their container exist, with the activity-bar icon', () => {
  const ids = new Set(c.commands.map((x: { command: string }) => x.command));
  for (const [menu, items] of Object.entries(c.menus as Record<string, { command: string }[]>)) {
    for (const i of items) assert.ok(ids.has(i.command), `${menu}: ${i.command}`);
  }
  const views = c.views.sculpt.map((v: { id: string; name: string }) => [v.id, v.name]);
  assert.deepEqual(views, [
    ['sculpt.runs', 'Runs'],
    ['sculpt.ranks', 'Subspace Ranks'],
    ['sculpt.experiments', 'Experiments'],
  ]);
  for (const [id] of views) assert.match(sources, new RegExp(`createTreeView\\('${id.replace('.', '\\.')}'`));
  const container = c.viewsContainers.activitybar[0];
  assert.equal(container.id, 'sculpt');
  assert.ok(existsSync(path.join(repoRoot, container.icon)), container.icon);
  const title = c.menus['editor/title'].find((m: { command: string }) => m.command === 'sculpt.runExperiment');
  assert.match(title.when, /resourceFilename =~ \/\\\.sculpt\\\.json\$\//);
});

test('running and resuming need a trusted workspace', () => {
  assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
  assert.ok(pkg.capabilities.untrustedWorkspaces.description);
  const gated = Object.values(c.menus as Record<string, { command: string; when?: string }[]>)
    .flat()
    .filter((m) => m.command === 'sculpt.runExperiment' || m.command === 'sculpt.resumeRun');
  assert.ok(gated.length > 0);
  for (const m of gated) assert.match(m.when ?? '', /isWorkspaceTrusted/, m.command);
  assert.match(sources, /requireTrust\('Running'\)/);
  assert.match(sources, /requireTrust\('Resuming'\)/);
});

test('settings', () => {
  const props = c.configuration.properties;
  assert.deepEqual(Object.keys(props).sort(), [
    'sculpt.backend',
    'sculpt.maxConcurrentRuns',
    'sculpt.nodePath',
    'sculpt.runsDirectory',
    'sculpt.stepEventInterval',
  ]);
  assert.deepEqual(props['sculpt.backend'].enum, ['auto', 'webgpu', 'tensorflow', 'wasm', 'cpu']);
  assert.equal(props['sculpt.nodePath'].default, 'node');
  assert.equal(props['sculpt.maxConcurrentRuns'].default, 1);
  assert.deepEqual(c.jsonValidation, [{ fileMatch: '*.sculpt.json', url: './schemas/sculpt.schema.json' }]);
});

test('the extension opens no network port', () => {
  assert.doesNotMatch(sources, /from 'node:(net|http|https|dgram|tls)'|createServer\(|\.listen\(/);
});
