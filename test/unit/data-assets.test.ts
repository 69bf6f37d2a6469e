import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { builtinTask, builtinTasks } from '../../src/runs/builtin/index';
import { loadTokenizer, unknownTokenId } from '../../src/engine/io/tokenizer';
import { answerText } from '../../src/engine/data/batches';
import type { Example } from '../../src/data/examples';
import { repoRoot } from '../helpers/paths';

// The committed benchmark files (assets/data, built by scripts/data/build.mjs) checked as they are: intact,
// balanced, disjoint, and loadable as builtin tasks.

const dataDir = join(repoRoot, 'assets', 'data');

interface TaskEntry {
  id: string;
  labels: string[];
  train: number;
  test: number;
  source: string;
  licence: string;
}
interface Manifest {
  maxInputWords: number;
  suites: Record<string, { tasks: TaskEntry[]; orders: Record<string, string[]> }>;
}

const manifest = JSON.parse(readFileSync(join(dataDir, 'manifest.json'), 'utf8')) as Manifest;
const allTasks = (): TaskEntry[] => [
  ...new Map(Object.values(manifest.suites).flatMap((s) => s.tasks.map((t) => [t.id, t] as const))).values(),
];

const cache = new Map<string, { train: Example[]; test: Example[] }>();
const load = (id: string) => {
  if (!cache.has(id)) cache.set(id, builtinTask(id));
  return cache.get(id)!;
};

/** The duplicate key of the build: lower-case letters and digits only. */
const norm = (s: string) =>
  s
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

test('data assets: every file matches SHA256SUMS and every file is listed', () => {
  const lines = readFileSync(join(dataDir, 'SHA256SUMS'), 'utf8').trim().split('\n');
  const listed = new Set<string>();
  for (const [i, line] of lines.entries()) {
    const m = /^([0-9a-f]{64}) {2}(\S+)$/.exec(line);
    assert.ok(m, `SHA256SUMS:${i + 1}: expected "<sha256>  <path>", got ${JSON.stringify(line)}`);
    const [, sum, rel] = m;
    const file = join(dataDir, rel);
    assert.ok(existsSync(file), `SHA256SUMS:${i + 1}: ${rel} does not exist`);
    assert.equal(
      createHash('sha256').update(readFileSync(file)).digest('hex'),
      sum,
      `${rel}: checksum differs from SHA256SUMS (rebuild with node scripts/data/build.mjs)`,
    );
    listed.add(rel);
  }
  const present = filesUnder(dataDir)
    .map((f) => relative(dataDir, f).split('\\').join('/'))
    .filter((f) => f !== 'SHA256SUMS');
  assert.deepEqual(
    present.filter((f) => !listed.has(f)),
    [],
    'files missing from SHA256SUMS',
  );
  assert.ok(listed.has('manifest.json') && listed.has('labels.txt'));
});

test('data assets: every task id of the manifest resolves as a builtin task with the stated sizes', () => {
  assert.deepEqual(Object.keys(manifest.suites).sort(), ['cl15', 'cl5']);
  assert.equal(manifest.suites.cl5.tasks.length, 5);
  assert.equal(manifest.suites.cl15.tasks.length, 15);
  const cl15 = new Set(manifest.suites.cl15.tasks.map((t) => t.id));
  for (const t of manifest.suites.cl5.tasks) assert.ok(cl15.has(t.id), `CL-15 holds the CL-5 task ${t.id}`);
  const listed = new Set(builtinTasks());
  for (const t of allTasks()) {
    assert.ok(listed.has(t.id), `${t.id} is listed by builtinTasks()`);
    const { train, test: testSplit } = load(t.id);
    assert.equal(train.length, t.train, `${t.id}: train size`);
    assert.equal(testSplit.length, t.test, `${t.id}: test size`);
    assert.ok(
      t.train >= 600 && t.train <= 1000 && t.test >= 300 && t.test <= 500,
      `${t.id}: sizes ${t.train}/${t.test}`,
    );
    assert.ok(t.source && t.licence, `${t.id}: source and licence are stated`);
  }
});

test('data assets: classes are balanced and match the manifest labels', () => {
  for (const t of allTasks()) {
    for (const [split, rows] of Object.entries(load(t.id))) {
      const counts = new Map<string, number>();
      for (const ex of rows) counts.set(ex.output, (counts.get(ex.output) ?? 0) + 1);
      assert.deepEqual([...counts.keys()].sort(), [...t.labels].sort(), `${t.id} ${split}: labels`);
      const n = [...counts.values()];
      assert.ok(
        Math.max(...n) / Math.min(...n) <= 1.05,
        `${t.id} ${split}: class counts ${JSON.stringify(Object.fromEntries(counts))}`,
      );
    }
  }
});

test('data assets: inputs are non-empty, at most the stated length, unique, and train and test are disjoint', () => {
  const max = manifest.maxInputWords;
  assert.ok(max > 0);
  const owner = new Map<string, string>();
  for (const t of allTasks()) {
    const { train, test: testSplit } = load(t.id);
    for (const [split, rows] of [
      ['train', train],
      ['test', testSplit],
    ] as const) {
      rows.forEach((ex, i) => {
        const where = `${t.id}/${split}.jsonl:${i + 1}`;
        assert.ok(ex.input.trim().length > 0, `${where}: empty input`);
        const words = ex.input.split(/\s+/).filter(Boolean).length;
        assert.ok(words <= max, `${where}: ${words} words, more than ${max}`);
        const key = norm(ex.input);
        assert.ok(key.length > 0, `${where}: input has no letters or digits`);
        // One key, one place: within a split, across the splits, and across tasks.
        const here = `${t.id}/${split}`;
        assert.ok(
          !owner.has(key),
          `${where}: input also in ${owner.get(key)}: ${JSON.stringify(ex.input.slice(0, 80))}`,
        );
        owner.set(key, here);
      });
    }
  }
});

test('data assets: labels are single lower-case words, disjoint across the tasks of a suite, and listed in labels.txt', () => {
  for (const [suite, s] of Object.entries(manifest.suites)) {
    const seen = new Map<string, string>();
    for (const t of s.tasks) {
      for (const l of t.labels) {
        assert.match(l, /^[a-z]+$/, `${t.id}: label ${JSON.stringify(l)}`);
        assert.ok(!seen.has(l), `${suite}: label '${l}' is used by ${seen.get(l)} and ${t.id}`);
        seen.set(l, t.id);
      }
    }
  }
  const file = readFileSync(join(dataDir, 'labels.txt'), 'utf8').trim().split('\n');
  assert.deepEqual([...file].sort(), [...new Set(allTasks().flatMap((t) => t.labels))].sort());
});

test('data assets: every label is one known token of the shipped base model after the answer prompt', () => {
  // Rank classification scores each label as one token: the answer as training and evaluation encode it, one
  // space and the label (answerText). A label the tokenizer splits or does not know would score fragments or
  // <unk> instead. Rebuilding the data with new labels means retraining the tokenizer.
  const tok = loadTokenizer(join(repoRoot, 'assets', 'models', 'sculpt-base'));
  const unk = unknownTokenId(tok);
  const prompt = tok.encode('\nAnswer:');
  for (const label of readFileSync(join(dataDir, 'labels.txt'), 'utf8').trim().split('\n')) {
    const ids = tok.encode(answerText(label));
    assert.equal(ids.length, 1, `label '${label}' is ${ids.length} tokens of sculpt-base's tokenizer`);
    assert.notEqual(ids[0], unk, `label '${label}' is unknown to sculpt-base's tokenizer`);
    assert.deepEqual(
      tok.encode(`\nAnswer:${answerText(label)}`),
      [...prompt, ids[0]],
      `label '${label}' after the answer prompt`,
    );
  }
});

test('data assets: each suite has three task orders, each a permutation of its tasks', () => {
  for (const [suite, s] of Object.entries(manifest.suites)) {
    const ids = s.tasks.map((t) => t.id).sort();
    assert.deepEqual(Object.keys(s.orders).sort(), ['1', '2', '3'], `${suite}: orders`);
    for (const [n, order] of Object.entries(s.orders))
      assert.deepEqual([...order].sort(), ids, `${suite} order ${n} is a permutation of its tasks`);
    assert.notDeepEqual(s.orders['1'], s.orders['2'], `${suite}: orders 1 and 2 differ`);
    assert.notDeepEqual(s.orders['1'], s.orders['3'], `${suite}: orders 1 and 3 differ`);
  }
});
