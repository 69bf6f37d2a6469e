import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { validateConfig, type ResolvedConfig } from '../../src/protocol/config-validate';
import type { ExperimentConfig } from '../../src/protocol/config';
import {
  ExperimentDirError,
  cellConfig,
  createExperiment,
  expandRunFolders,
  experimentOf,
  gridCells,
  gridSeeds,
  readExperiment,
} from '../../src/runs/experiment-dir';
import { RunFolderError } from '../../src/runs/output-dir';
import { tinyExperiment, tinyTasks } from '../helpers/experiment';

const work = mkdtempSync(join(tmpdir(), 'sculpt-experiment-dir-'));

function resolved(overrides: Partial<ExperimentConfig> = {}): ResolvedConfig {
  const { config, issues } = validateConfig(
    tinyExperiment({
      name: 'grid',
      output: join(work, 'runs'),
      tasks: tinyTasks(['sentiment', 'topic']),
      methods: [{ method: 'seqft' }, { method: 'adaptive-svd' }],
      ...overrides,
    }),
  );
  assert.deepEqual(issues, []);
  return config!;
}

test('the seeds of a grid: a count means 0..n-1, a list is kept, without either the one seed', () => {
  assert.deepEqual(gridSeeds(resolved({ seeds: 3 })), [0, 1, 2]);
  assert.deepEqual(gridSeeds(resolved({ seeds: [7, 2] })), [7, 2]);
  assert.deepEqual(gridSeeds(resolved({ seed: 5 })), [5]);
  // A config with `seeds` ignores the lone `seed` (its default is always there).
  assert.deepEqual(gridSeeds(resolved({ seed: 5, seeds: 1 })), [0]);
});

test('the cells: methods × orders × seeds, every method of an (order, seed) together, names that say the cell', () => {
  const config = resolved({ seeds: [3, 4], orders: [['topic', 'sentiment']] });
  const cells = gridCells(config);
  assert.equal(cells.length, 2 * 2 * 2);
  assert.deepEqual(
    cells.map((c) => [c.dir, c.methodIndex, c.order, c.seed]),
    [
      ['seqft-o1-s3', 0, 0, 3],
      ['adaptive-svd-o1-s3', 1, 0, 3],
      ['seqft-o2-s3', 0, 1, 3],
      ['adaptive-svd-o2-s3', 1, 1, 3],
      ['seqft-o1-s4', 0, 0, 4],
      ['adaptive-svd-o1-s4', 1, 0, 4],
      ['seqft-o2-s4', 0, 1, 4],
      ['adaptive-svd-o2-s4', 1, 1, 4],
    ],
  );
  const c = cellConfig(config, cells[5]);
  assert.equal(c.seed, 4);
  assert.equal(c.seeds, undefined);
  assert.deepEqual(config.seeds, [3, 4], 'the experiment config is not changed');
});

test('createExperiment: experiment.json and a run folder per cell with its seed; the record reads back', () => {
  const config = resolved({ seeds: 2, compare: { baseline: 'adaptive-svd' } });
  const { dir, cells } = createExperiment(config, {
    configFile: join(work, 'grid.sculpt.json'),
    now: new Date(2026, 0, 2, 3, 4, 5),
  });
  assert.equal(basename(dir), 'grid-20260102-030405');
  assert.deepEqual(
    cells.map((d) => basename(d)),
    ['seqft-o1-s0', 'adaptive-svd-o1-s0', 'seqft-o1-s1', 'adaptive-svd-o1-s1'],
  );
  const record = readExperiment(dir);
  assert.equal(record.name, 'grid');
  assert.deepEqual(record.seeds, [0, 1]);
  assert.deepEqual(record.orders, [['sentiment', 'topic']]);
  assert.equal(record.baseline, 'adaptive-svd');
  assert.equal(record.configFile, join(work, 'grid.sculpt.json'));
  for (const [i, d] of cells.entries()) {
    const job = JSON.parse(readFileSync(join(d, 'job.json'), 'utf8'));
    const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    assert.equal(job.seed, record.cells[i].seed);
    assert.equal(cfg.seed, record.cells[i].seed);
    assert.equal(experimentOf(d), dir);
  }
  // A second launch in the same second gets its own folder.
  const again = createExperiment(config, { now: new Date(2026, 0, 2, 3, 4, 5) });
  assert.equal(basename(again.dir), 'grid-20260102-030405-2');
  // Experiment folders expand to their cells in run order; run folders stay; each once.
  assert.deepEqual(expandRunFolders([dir, cells[1], again.cells[0]]), [...cells, again.cells[0]]);
  assert.equal(experimentOf(work), undefined);
  // A cell folder deleted by hand is left out, and said to be.
  rmSync(cells[2], { recursive: true });
  const missing: string[] = [];
  assert.deepEqual(
    expandRunFolders([dir], (d) => missing.push(d)),
    [cells[0], cells[1], cells[3]],
  );
  assert.deepEqual(missing, [cells[2]]);
});

test('createExperiment is all or nothing: a cell that cannot be made leaves no experiment folder', () => {
  const output = join(work, 'all-or-nothing', 'runs');
  // The second method's folder name is longer than a file name may be: its mkdir fails after the first cell's.
  const config = resolved({ output, methods: [{ method: 'seqft' }, { method: 'seqft', label: 'x'.repeat(300) }] });
  assert.throws(
    () => createExperiment(config),
    (e: unknown) => e instanceof RunFolderError && /too long/.test(e.message),
  );
  assert.ok(!existsSync(join(work, 'all-or-nothing')), 'the output folders this call created are gone too');
  assert.ok(existsSync(join(work, 'runs')), 'folders made before it stay');
});

test('a broken experiment.json is named with what is wrong, and a cell may not point outside its folder', () => {
  const dir = join(work, 'broken');
  mkdirSync(dir);
  writeFileSync(join(dir, 'experiment.json'), '{ not json');
  assert.throws(
    () => readExperiment(dir),
    (e: unknown) => e instanceof ExperimentDirError && /cannot be read/.test(String(e)),
  );
  writeFileSync(
    join(dir, 'experiment.json'),
    JSON.stringify({ kind: 'sculpt-experiment', cells: [{ dir: '../elsewhere', methodIndex: 0, order: 0, seed: 0 }] }),
  );
  assert.throws(() => readExperiment(dir), /cells\[0\] of experiment.json is not a cell of this folder/);
  assert.ok(existsSync(dir));
});
