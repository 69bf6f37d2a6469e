/**
 * Task examples and where they come from: JSON Lines files, the O-LoRA benchmark folder layout, TRACE's JSON,
 * and the builtin tasks. Every loader reports bad input with the file, the line or index, and what was
 * expected, and an empty task is an error (a task that cannot be evaluated would make every metric NaN).
 * No tfjs here (src/data/ is plain TypeScript): the engine trains on these, and the builtin catalog
 * (src/runs/builtin/), which the extension lists, reads them too.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../protocol/errors';
import { MAX_JSON_DEPTH, excessiveNesting } from '../protocol/json-limits';
import { DATA_LIMIT_ENV, FileReadError, dataByteLimit, readBoundedText } from './read-bounded';

export { DataError };

export interface Example {
  instruction?: string;
  input: string;
  output: string;
  /** Task (index in the run's order) an example mixed into another task's training comes from (replay, MTL). */
  task?: number;
}

export interface TaskSplit {
  train: Example[];
  test: Example[];
}

/**
 * A data file's text: a regular file (not a FIFO, device or folder), at most SCULPT_MAX_DATA_BYTES (see
 * read-bounded.ts), valid UTF-8; anything else is a DataError naming the file (and the line).
 */
function readText(file: string, what: string): string {
  try {
    return readBoundedText(file, { what, maxBytes: dataByteLimit(), limitEnv: DATA_LIMIT_ENV });
  } catch (e) {
    if (e instanceof FileReadError) throw new DataError(e.message, file, e.line, { cause: e });
    throw e;
  }
}

/** JSON.parse, refusing nesting deeper than MAX_JSON_DEPTH first (no example needs it). */
function parseJson(text: string, where: string, file: string, line?: number): unknown {
  if (excessiveNesting(text) >= 0)
    throw new DataError(
      `${where}: JSON nested deeper than ${MAX_JSON_DEPTH} levels; an example is one flat object`,
      file,
      line,
    );
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DataError(`${where}: not valid JSON (${(e as Error).message})`, file, line);
  }
}

function toExample(obj: unknown, where: string, file: string, line?: number): Example {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
    throw new DataError(`${where}: expected an object with "input" and "output"`, file, line);
  const o = obj as Record<string, unknown>;
  for (const key of ['input', 'output'] as const) {
    if (typeof o[key] !== 'string') {
      throw new DataError(
        `${where}: "${key}" must be a string, got ${o[key] === undefined ? 'nothing' : JSON.stringify(o[key]).slice(0, 40)}`,
        file,
        line,
      );
    }
  }
  if (!(o.output as string).trim()) {
    throw new DataError(
      `${where}: "output" is empty; every example needs an output (it is the label or the expected answer)`,
      file,
      line,
    );
  }
  if (o.instruction !== undefined && typeof o.instruction !== 'string')
    throw new DataError(`${where}: "instruction" must be a string`, file, line);
  const ex: Example = { input: o.input as string, output: o.output as string };
  if (typeof o.instruction === 'string') ex.instruction = o.instruction;
  return ex;
}

/** `{"input","output"}` or `{"instruction","input","output"}` per line; blank lines are skipped. */
export function readJsonl(file: string): Example[] {
  const out: Example[] = [];
  readText(file, 'data file')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      const obj = parseJson(line, `${file}:${i + 1}`, file, i + 1);
      out.push(toExample(obj, `${file}:${i + 1}`, file, i + 1));
    });
  if (out.length === 0) throw new DataError(`${file}: no examples (expected one JSON object per line)`, file);
  return out;
}

/**
 * The O-LoRA benchmark layout: a task folder with train.json / test.json (dev.json is not used), each
 * `{"Definition": [text], "Instances": [{"sentence": ..., "label": ...}]}`; labels.json lists the label set.
 * The definition becomes the instruction.
 */
export function readOLoraFolder(folder: string): TaskSplit & { labels?: string[] } {
  const split = (name: string): Example[] => {
    const file = join(folder, `${name}.json`);
    const doc = parseJson(readText(file, `O-LoRA ${name} file`), file, file);
    const d = doc as { Definition?: unknown; Instances?: unknown };
    if (!Array.isArray(d.Instances))
      throw new DataError(`${file}: expected an object with an "Instances" array (O-LoRA layout)`, file);
    const definition = Array.isArray(d.Definition)
      ? String(d.Definition[0] ?? '')
      : typeof d.Definition === 'string'
        ? d.Definition
        : '';
    return d.Instances.map((inst, i) => {
      const o = inst as Record<string, unknown>;
      const output = Array.isArray(o.label) ? o.label[0] : o.label;
      return toExample(
        { instruction: definition ? `${definition}\n` : undefined, input: o.sentence ?? o.input, output },
        `${file}: Instances[${i}]`,
        file,
      );
    });
  };
  const train = split('train');
  const test = split('test');
  const labelsFile = join(folder, 'labels.json');
  const labels = existsSync(labelsFile)
    ? (parseJson(readText(labelsFile, 'labels file'), labelsFile, labelsFile) as string[])
    : undefined;
  if (labels !== undefined && (!Array.isArray(labels) || labels.some((l) => typeof l !== 'string'))) {
    throw new DataError(`${labelsFile}: expected a JSON array of label strings`, labelsFile);
  }
  return labels ? { train, test, labels } : { train, test };
}

/** TRACE's layout: a task folder with train.json / test.json, each a JSON array of `{"prompt", "answer"}`. */
export function readTraceFolder(folder: string): TaskSplit {
  const split = (name: string): Example[] => {
    const file = join(folder, `${name}.json`);
    const doc = parseJson(readText(file, `TRACE ${name} file`), file, file);
    if (!Array.isArray(doc))
      throw new DataError(`${file}: expected a JSON array of {"prompt", "answer"} objects (TRACE layout)`, file);
    return doc.map((o: Record<string, unknown>, i) =>
      toExample({ input: o?.prompt, output: o?.answer }, `${file}: [${i}]`, file),
    );
  };
  return { train: split('train'), test: split('test') };
}

/** Label set: given, else the distinct outputs of the training set in first-seen order. */
export function labelSet(examples: Example[], given?: string[]): string[] {
  if (given) return given;
  return [...new Set(examples.map((e) => e.output))];
}
