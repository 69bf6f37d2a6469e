/**
 * Errors for input a user can fix, one hierarchy for every kind of input:
 *
 *   InputError          message (what happened, where, what was expected), `where`, and a `hint` on what to do
 *   ├── ConfigError     the experiment config: issues with JSON paths (`methods[1].rank.k`)
 *   ├── ModelFileError  a model or checkpoint folder: the file, and the config.json field or tensor at fault
 *   ├── DataError       a task's data file: the file and the line
 *   └── UsageError      command-line arguments
 *
 * The CLI turns any of them into exit code 2 (src/cli/failures.ts), the trainer into an `error` event that
 * keeps the hint (src/trainer/run.ts); anything else is a failure of the run, not of its input.
 */
import type { SchemaIssue } from './schema-check';

export interface InputErrorOptions extends ErrorOptions {
  /** Replaces the class's hint where a site knows better. */
  hint?: string;
}

export abstract class InputError extends Error {
  readonly hint: string;

  protected constructor(message: string, hint: string, options?: InputErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.hint = options?.hint ?? hint;
  }

  /** Where the problem is, for the `where` of an error event. */
  abstract get where(): string;
}

export function formatIssues(issues: SchemaIssue[], file?: string): string {
  const where = file ? `${file}: ` : '';
  return issues.map((i) => `${where}${i.path || '(root)'}: ${i.message}`).join('\n');
}

/** The experiment config is invalid: each issue names its JSON path, what was expected and what was found. */
export class ConfigError extends InputError {
  override readonly name: string = 'ConfigError';

  constructor(
    readonly issues: SchemaIssue[],
    readonly file?: string,
    options?: InputErrorOptions,
  ) {
    super(formatIssues(issues, file), 'Fix the config and start a new run.', options);
  }

  get where(): string {
    return 'config';
  }
}

/** Where in a model file: the config.json field or the tensor at fault. */
export interface ModelFileLocation {
  field?: string;
  tensor?: string;
}

/**
 * A model or checkpoint file cannot be used: config.json, the safetensors files, the tokenizer. The message
 * is `<file>: [tensor "<name>": ]<detail>`. Model code parsing a config.json object knows the file only as
 * `config.json`; the loader that read it names the real path with `inFile`.
 */
export class ModelFileError extends InputError {
  override readonly name: string = 'ModelFileError';

  constructor(
    readonly file: string,
    readonly detail: string,
    readonly at: ModelFileLocation = {},
    options?: InputErrorOptions,
  ) {
    super(
      `${file}: ${at.tensor === undefined ? '' : `tensor ${JSON.stringify(at.tensor)}: `}${detail}`,
      'Check the model folder: config.json, the safetensors files and the tokenizer must describe one supported model (`sculpt inspect <folder>` shows what loads).',
      options,
    );
  }

  get where(): string {
    const at =
      this.at.tensor !== undefined
        ? `, tensor ${JSON.stringify(this.at.tensor)}`
        : this.at.field !== undefined
          ? `, field '${this.at.field}'`
          : '';
    return `${this.file}${at}`;
  }

  /** The same error for the file's full path. */
  inFile(file: string): ModelFileError {
    return new ModelFileError(file, this.detail, this.at, { cause: this, hint: this.hint });
  }
}

/** A task's data file cannot be used; `line` (1-based) where the problem is on one line. */
export class DataError extends InputError {
  override readonly name: string = 'DataError';

  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
    options?: InputErrorOptions,
  ) {
    super(message, "Fix the task's data file, or point the task's source at another one.", options);
  }

  get where(): string {
    return this.line === undefined ? this.file : `${this.file}:${this.line}`;
  }
}

/** Bad command-line arguments; `usage` is the command's usage text, printed after the message. */
export class UsageError extends InputError {
  override readonly name: string = 'UsageError';

  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super(message, 'Run `sculpt help` for the commands and their options.');
  }

  get where(): string {
    return 'command line';
  }
}
