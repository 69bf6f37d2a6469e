/**
 * From a config file to run folders, as `sculpt run` does, with this window's settings applied: they are
 * written into each run's config.json before the trainer starts, so the folder alone still tells how the run
 * was made (and a resume from the CLI uses the same backend).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { BackendName } from '../protocol/config';
import { parseConfigText, validateConfig, type ConfigIssue, type ResolvedConfig } from '../protocol/config-validate';
import { createRunDir } from '../runs/run-dir';

export interface RunSettings {
  /** `auto` keeps the config's own backend; anything else replaces it. */
  backend: BackendName;
  /** Used when the config does not set training.stepEventInterval. */
  stepEventInterval?: number;
  /** Absolute folder for new runs; empty keeps the config's `output`. */
  runsDirectory: string;
}

export type Prepared = { ok: true; config: ResolvedConfig; dirs: string[] } | { ok: false; issues: ConfigIssue[] };

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

/** Reads and validates a config file; on success creates one run folder per (order, method), in run order. */
export function prepareRuns(file: string, settings: RunSettings, now = new Date()): Prepared {
  const abs = path.resolve(file);
  if (!existsSync(abs))
    return { ok: false, issues: [{ path: '', message: `the config file ${abs} does not exist`, expected: 'a file' }] };
  const parsed = parseConfigText(readFileSync(abs, 'utf8'));
  if (parsed.issues.length) return { ok: false, issues: parsed.issues };
  const raw = parsed.value;
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) applySettings(raw as Record<string, unknown>, settings);
  const { config, issues } = validateConfig(raw, { file: abs, path, exists: existsSync });
  if (!config) return { ok: false, issues };
  const dirs: string[] = [];
  const orders = 1 + (config.orders?.length ?? 0);
  for (let order = 0; order < orders; order++) {
    for (let m = 0; m < config.methods.length; m++) dirs.push(createRunDir(config, { methodIndex: m, order }, now));
  }
  return { ok: true, config, dirs };
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
