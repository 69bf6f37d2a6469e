/**
 * A run's user text: the name it is shown under, free notes and tags, kept in `notes.json` in the run folder
 *   { "title": "lr 1e-3 retry", "notes": "after fixing the tokenizer", "tags": ["baseline", "ablation"] }
 * and never in events.jsonl, which only the trainer writes. Written to a temporary name and renamed, so that a
 * reader never sees half a file; a missing or damaged file reads as no notes.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './output-dir';

export const NOTES_FILE = 'notes.json';

export interface RunNotes {
  /** The name shown instead of `<method> · o<order> · s<seed>`; empty for none. */
  title: string;
  notes: string;
  tags: string[];
}

/** Bounds that keep a hand-edited or pasted file from flooding a tree row or a legend. */
export const NOTES_LIMITS = { title: 120, notes: 4000, tag: 40, tags: 20 };

export function emptyNotes(): RunNotes {
  return { title: '', notes: '', tags: [] };
}

export function hasNotes(n: RunNotes | undefined): n is RunNotes {
  return !!n && (n.title !== '' || n.notes !== '' || n.tags.length > 0);
}

/** One line, trimmed, control characters dropped. */
const oneLine = (s: string) =>
  s
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

/**
 * Tags from user text: split at commas and whitespace, a leading `#` dropped, duplicates (case-insensitive)
 * and empty ones removed, each cut to NOTES_LIMITS.tag characters, at most NOTES_LIMITS.tags.
 */
export function parseTags(input: string | readonly unknown[]): string[] {
  const parts = typeof input === 'string' ? input.split(/[,\s]+/) : input.filter((x) => typeof x === 'string');
  const out: string[] = [];
  const seen = new Set<string>();
  for (const raw of parts as string[]) {
    const t = oneLine(raw).replace(/^#+/, '').slice(0, NOTES_LIMITS.tag);
    if (!t || seen.has(t.toLowerCase())) continue;
    seen.add(t.toLowerCase());
    out.push(t);
    if (out.length >= NOTES_LIMITS.tags) break;
  }
  return out;
}

/** Whatever was read (anything) as well-formed notes: wrong types are dropped, long text is cut. */
export function normalizeNotes(x: unknown): RunNotes {
  const o = x && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : {};
  const notes = typeof o.notes === 'string' ? o.notes.replace(/\r\n?/g, '\n').trim() : '';
  return {
    title: typeof o.title === 'string' ? oneLine(o.title).slice(0, NOTES_LIMITS.title) : '',
    notes: notes.slice(0, NOTES_LIMITS.notes),
    tags: Array.isArray(o.tags) ? parseTags(o.tags) : [],
  };
}

/** The notes of a run folder; empty notes when there is no notes.json or it cannot be read. */
export function readRunNotes(dir: string): RunNotes {
  try {
    return normalizeNotes(JSON.parse(readFileSync(join(dir, NOTES_FILE), 'utf8')));
  } catch {
    return emptyNotes();
  }
}

/**
 * Changes some of a run folder's notes and writes notes.json atomically (removed when nothing is left in it);
 * returns the notes now on disk. Throws, with the file named, when the folder cannot be written.
 */
export function updateRunNotes(dir: string, patch: Partial<RunNotes>): RunNotes {
  const next = normalizeNotes({ ...readRunNotes(dir), ...patch });
  const file = join(dir, NOTES_FILE);
  try {
    if (!hasNotes(next)) rmSync(file, { force: true });
    else writeFileAtomic(file, JSON.stringify(next, null, 2) + '\n');
  } catch (e) {
    throw new Error(`cannot write ${file}: ${(e as Error).message}`);
  }
  return next;
}
