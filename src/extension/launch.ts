/**
 * From a config file to an experiment folder of run folders, as `sculpt run` does, with this window's settings applied: they are
 * written into each run's config.json before the trainer starts, so the folder alone still tells how the run
 * was made (and a resume from the CLI uses the same backend).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { BackendName } from '../protocol/config';
import { parseConfigText, validateConfig, type ConfigIssue, type ResolvedConfig } from '../protocol/config-validate';
import { FileReadError, readConfigText } from '../data/read-bounded';
import { RunFolderError, outputDirProblem } from '../runs/output-dir';
import { createExperiment } from '../runs/experiment-dir';

export interface RunSettings {
  /** `auto` keeps the config's own backend; anything else replaces it. */
  backend: BackendName;
  /** Used when the config does not set training.stepEventInterval. */
  stepEventInterval?: number;
  /** Absolute folder for new runs; empty keeps the config's `output`. */
  runsDirectory: string;
}

export type Prepared =
  | { ok: true; config: ResolvedConfig; dirs: string[]; experimentDir: string }
  | { ok: false; issues: ConfigIssue[]; cancelled?: boolean };

/** Applies the settings to a parsed config, in place. */
export function applySettings(raw: Record<string, unknown>, s: RunSettings): void {
  if (s.backend !== 'auto') raw.backend = s.backend;
  if (s.stepEventInterval !== undefined) {
    const training = (raw.training ?? {}) as Record<string, unknown>;
    if (
      training &&
      typeof training === 'object' &&
      !Array.isArray(training) &&
      training.stepEventInterval === undefined
    ) {
      raw.training = { ...training, stepEventInterval: s.stepEventInterval };
    }
  }
  if (s.runsDirectory) raw.output = s.runsDirectory;
}

/** Reads and validates a config file with the settings applied; creates nothing. */
export function resolveRuns(
  file: string,
  settings: RunSettings,
): { ok: true; config: ResolvedConfig } | { ok: false; issues: ConfigIssue[] } {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readConfigText(abs);
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    const message = e.problem === 'missing' ? `the config file ${abs} does not exist` : e.message;
    return { ok: false, issues: [{ path: '', message, expected: 'a file' }] };
  }
  const parsed = parseConfigText(text);
  if (parsed.issues.length) return { ok: false, issues: parsed.issues };
  const raw = parsed.value;
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) applySettings(raw as Record<string, unknown>, settings);
  const { config, issues } = validateConfig(raw, { file: abs, path, exists: existsSync });
  if (!config) return { ok: false, issues };
  const problem = outputDirProblem(config.output);
  if (problem) return { ok: false, issues: [{ path: 'output', message: problem, expected: 'a writable folder' }] };
  return { ok: true, config };
}

/**
 * An experiment folder with one run folder per cell of the grid (method, order, seed), in run order. When one
 * cannot be created (a full disk, a permission), nothing stays, and the error is an issue at `output`.
 */
export function createRuns(config: ResolvedConfig, now = new Date(), configFile?: string): Prepared {
  try {
    const experiment = createExperiment(config, { now, configFile });
    return { ok: true, config, dirs: experiment.cells, experimentDir: experiment.dir };
  } catch (e) {
    if (!(e instanceof RunFolderError)) throw e;
    return { ok: false, issues: [{ path: 'output', message: e.message, expected: 'a writable folder' }] };
  }
}

/** Reads and validates a config file; on success creates its experiment folder (createRuns). */
export function prepareRuns(file: string, settings: RunSettings, now = new Date()): Prepared {
  const resolved = resolveRuns(file, settings);
  return resolved.ok ? createRuns(resolved.config, now, file) : resolved;
}

/** Whether `dir` is outside `folder` (both absolute). */
export function isOutside(dir: string, folder: string): boolean {
  const rel = path.relative(folder, dir);
  return rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel);
}

export interface ConfirmOptions {
  /** The workspace folder holding the config; runs going elsewhere are confirmed first. */
  workspaceFolder?: string;
  /** Asks the user (a modal warning); true to go on. */
  confirm(message: string): Promise<boolean>;
}

/**
 * prepareRuns, but when the config's `output` (or the runs-directory setting) leads outside the workspace
 * folder, the user is asked before anything is written; declining creates nothing (`cancelled`).
 */
export async function prepareRunsConfirmed(
  file: string,
  settings: RunSettings,
  opts: ConfirmOptions,
  now = new Date(),
): Promise<Prepared> {
  const resolved = resolveRuns(file, settings);
  if (!resolved.ok) return resolved;
  const out = resolved.config.output;
  if (opts.workspaceFolder && isOutside(out, opts.workspaceFolder)) {
    const go = await opts.confirm(
      `The run folders of ${path.basename(file)} go to ${out}, outside the workspace folder ${opts.workspaceFolder}. ` +
        'Continue writing there? (Change `output` in the config, or the sculpt.runsDirectory setting, to keep them in the workspace.)',
    );
    if (!go) return { ok: false, issues: [], cancelled: true };
  }
  return createRuns(resolved.config, now, file);
}

/** The backend a run folder's config asks for (`auto` when unreadable). */
export function runBackend(dir: string): BackendName {
  try {
    const c = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as { backend?: BackendName };
    return c.backend ?? 'auto';
  } catch {
    return 'auto';
  }
}

/** Before a resume: the backend setting replaces the one in the run's config.json (unless it is `auto`). */
export function applyBackendToRunFolder(dir: string, backend: BackendName): void {
  if (backend === 'auto') return;
  const file = path.join(dir, 'config.json');
  if (!existsSync(file)) return;
  const c = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  if (c.backend === backend) return;
  c.backend = backend;
  writeFileSync(file, JSON.stringify(c, null, 2) + '\n');
}
