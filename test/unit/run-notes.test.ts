/**
 * notes.json: a run's user name, notes and tags, read and written in the run folder (never in events.jsonl),
 * atomically, normalised on the way in and out; a missing or damaged file reads as no notes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  NOTES_FILE,
  NOTES_LIMITS,
  normalizeNotes,
  parseTags,
  readRunNotes,
  updateRunNotes,
} from '../../src/runs/run-notes';

const scratch = () => mkdtempSync(join(tmpdir(), 'sculpt-notes-'));

test('notes.json: written beside the log, read back, patched field by field, removed when emptied', () => {
  const dir = scratch();
  writeFileSync(join(dir, 'events.jsonl'), '{"v":1}\n');
  assert.deepEqual(readRunNotes(dir), { title: '', notes: '', tags: [] }, 'no file: no notes');
  const a = updateRunNotes(dir, { title: '  lr 1e-3\tretry  ' });
  assert.deepEqual(a, { title: 'lr 1e-3 retry', notes: '', tags: [] });
  assert.deepEqual(JSON.parse(readFileSync(join(dir, NOTES_FILE), 'utf8')), a);
  updateRunNotes(dir, { tags: ['#baseline', 'ablation', 'Baseline', ''] });
  updateRunNotes(dir, { notes: 'after fixing\r\nthe tokenizer' });
  assert.deepEqual(readRunNotes(dir), {
    title: 'lr 1e-3 retry',
    notes: 'after fixing\nthe tokenizer',
    tags: ['baseline', 'ablation'],
  });
  assert.equal(readFileSync(join(dir, 'events.jsonl'), 'utf8'), '{"v":1}\n', 'the event log is untouched');
  assert.deepEqual(readdirSync(dir).sort(), ['events.jsonl', NOTES_FILE], 'no temporary file is left');
  updateRunNotes(dir, { title: '', notes: '', tags: [] });
  assert.equal(existsSync(join(dir, NOTES_FILE)), false, 'nothing left: no file');
  rmSync(dir, { recursive: true, force: true });
});

test('a damaged or hand-edited notes.json reads as what can be had', () => {
  const dir = scratch();
  writeFileSync(join(dir, NOTES_FILE), '{"title": "half');
  assert.deepEqual(readRunNotes(dir), { title: '', notes: '', tags: [] });
  writeFileSync(join(dir, NOTES_FILE), JSON.stringify({ title: 42, notes: 'ok', tags: 'a, b', extra: true }));
  assert.deepEqual(readRunNotes(dir), { title: '', notes: 'ok', tags: [] });
  assert.deepEqual(normalizeNotes(null), { title: '', notes: '', tags: [] });
  assert.deepEqual(normalizeNotes([1, 2]), { title: '', notes: '', tags: [] });
  const long = normalizeNotes({ title: 'x'.repeat(500), notes: 'y'.repeat(10_000), tags: ['z'.repeat(100)] });
  assert.equal(long.title.length, NOTES_LIMITS.title);
  assert.equal(long.notes.length, NOTES_LIMITS.notes);
  assert.equal(long.tags[0].length, NOTES_LIMITS.tag);
  rmSync(dir, { recursive: true, force: true });
});

test('tags from user text: commas or spaces, # dropped, duplicates ignoring case, bounded', () => {
  assert.deepEqual(parseTags(' #baseline, ablation  lr-sweep,,Baseline '), ['baseline', 'ablation', 'lr-sweep']);
  assert.deepEqual(parseTags(''), []);
  assert.equal(parseTags(Array.from({ length: 50 }, (_, i) => `t${i}`).join(' ')).length, NOTES_LIMITS.tags);
});

test('a folder that cannot be written is named in the error', () => {
  const missing = join(tmpdir(), 'sculpt-notes-does-not-exist', 'run');
  assert.throws(
    () => updateRunNotes(missing, { title: 'x' }),
    /cannot write .*sculpt-notes-does-not-exist.*notes\.json/,
  );
});
