/**
 * `sculpt validate --json`: the checks of `sculpt validate` (validate.ts) as data, for an editor to show at the
 * JSON path each one names: the config (schema and semantics, files, the output folder), the model folder
 * (config.json and the weight files' headers, rank patterns against its matrices), every task's data read as a
 * run reads it, and the tokenizer's coverage of the data; for the torch engine, its Python (torch-check.ts). Every
 * stage runs that can (the model and the tasks do not wait for each other), and every problem of a stage is
 * reported, errors and warnings alike.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import {
  ConfigError,
  configWarnings,
  parseConfigText,
  validateConfig,
  type ConfigIssue,
} from '../protocol/config-validate';
import type { ResolvedConfig } from '../protocol/config-resolved';
import { InputError } from '../protocol/errors';
import { FileReadError, readConfigText } from '../data/read-bounded';
import { outputDirProblem } from '../runs/output-dir';
import { gridCells } from '../runs/experiment-dir';
import { checkModelFolder, type ModelFolderSummary } from '../engine/io/checkpoint';
import { loadTasks, modelDir, type RunTask } from '../engine/experiment';
import { checkRunInputs } from '../engine/run-inputs';
import { describeModel, modelNameIssues } from './model-check';
import { describeGrid } from './run';
import { torchCheck } from './torch-check';

export interface ValidateFinding {
  severity: 'error' | 'warning';
  /** The config's JSON path (`tasks[1].source.train`); `` for the file as a whole. */
  path: string;
  message: string;
  /** A warning's code (`truncated-inputs`, `data-overlap`, ...). */
  code?: string;
  /** The name the user most likely meant, for a quick fix. */
  suggestion?: string;
  /** The finding is about the property name at `path` (an unknown field). */
  onKey?: boolean;
}

export interface ValidateReport {
  /** The config file, absolute. */
  file: string;
  valid: boolean;
  findings: ValidateFinding[];
  /** Where run folders would go, once the config is valid. */
  output?: string;
  /** "5 tasks; 2 methods × 1 order × 3 seeds = 6 runs; model llama, 38 tensors in model.safetensors" */
  summary?: string;
  /**
   * For the torch engine, the Python found and what the config gets from it: "torch 2.13.0+cpu (CPU only): DDP
   * over gloo; FSDP2 available; 1 process on cpu, fp32 (python /abs/.venv/bin/python)".
   */
  engine?: string;
}

const errors = (issues: ConfigIssue[]): ValidateFinding[] =>
  issues.map((i) => ({
    severity: 'error',
    path: i.path,
    message: i.message,
    ...(i.suggestion !== undefined ? { suggestion: i.suggestion } : {}),
    ...(i.onKey ? { onKey: true } : {}),
  }));

/** A stage's failure as findings: a ConfigError's issues, or another input error at `where`; anything else is thrown. */
function failure(e: unknown, where: string): ValidateFinding[] {
  if (e instanceof ConfigError) return errors(e.issues);
  if (e instanceof InputError) return [{ severity: 'error', path: where, message: `${e.message} (${e.hint})` }];
  throw e;
}

/**
 * Validates the config `file`, whose text is `text` when given (an editor's unsaved document; relative paths
 * still resolve against the file's folder), else read from the file.
 */
/** How long the editor's checks trust what the torch probe found (installing torch anew is seen at once). */
const EDITOR_PROBE_REUSE_MS = 10 * 60_000;

export function validateReport(file: string, text?: string): ValidateReport {
  const abs = path.resolve(file);
  const findings: ValidateFinding[] = [];
  const done = (extra: Partial<ValidateReport> = {}): ValidateReport => ({
    file: abs,
    valid: !findings.some((f) => f.severity === 'error'),
    findings,
    ...extra,
  });
  let source = text;
  if (source === undefined) {
    try {
      source = readConfigText(abs);
    } catch (e) {
      if (!(e instanceof FileReadError)) throw e;
      findings.push({ severity: 'error', path: '', message: e.message });
      return done();
    }
  }
  const parsed = parseConfigText(source);
  if (parsed.issues.length) {
    findings.push(...errors(parsed.issues));
    return done();
  }
  const { config, issues } = validateConfig(parsed.value, { file: abs, path, exists: existsSync });
  if (!config) {
    findings.push(...errors(issues));
    return done();
  }
  const output = outputDirProblem(config.output);
  if (output) findings.push({ severity: 'error', path: 'output', message: output });
  for (const w of configWarnings(config))
    findings.push({ severity: 'warning', path: w.path, message: w.message, code: w.code });
  // The torch engine's Python is started only for configs that use it: tfjs configs validate without it. The
  // text of an unsaved document comes from the editor's checks while typing, which reuse a recent probe.
  const torch = torchCheck(config, abs, text === undefined ? {} : { reuseMs: EDITOR_PROBE_REUSE_MS });
  if (!torch.ok) findings.push(...errors(torch.issues));

  let model: ModelFolderSummary | undefined;
  try {
    model = checkModelFolder(modelDir(config));
    const names = modelNameIssues(config, model.inventory);
    if (names.length) {
      findings.push(...errors(names));
      model = undefined;
    }
  } catch (e) {
    findings.push(...failure(e, 'model'));
  }
  const warn = (message: string, code: string, at?: string) =>
    findings.push({ severity: 'warning', path: at ?? '', message, code });
  let tasks: RunTask[] | undefined;
  try {
    // Every order holds the same tasks with the same subsets (drawn from the seed and the task name).
    tasks = loadTasks(config, 0, warn);
  } catch (e) {
    findings.push(...failure(e, 'tasks'));
  }
  if (model && tasks) {
    try {
      checkRunInputs(config, tasks, model.inventory, warn);
    } catch (e) {
      findings.push(...failure(e, config.tokenizer !== undefined ? 'tokenizer' : 'model'));
    }
  }
  const report = done({ output: config.output, ...(torch.ok && torch.text ? { engine: torch.text } : {}) });
  if (report.valid && model) report.summary = summary(config, model);
  return report;
}

function summary(config: ResolvedConfig, model: ModelFolderSummary): string {
  return `${config.tasks.length} tasks; ${describeGrid(config, gridCells(config).length)}; model ${describeModel(model)}`;
}
