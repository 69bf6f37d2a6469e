/**
 * The one argument parser of every `sculpt` command. Each command names the options it takes; anything else
 * that looks like an option is refused (a usage error: exit 2) naming it, the command's options and the one
 * the user most likely meant, so that a misspelt `--htm` never silently gives a Markdown report, nor `--bogus` a
 * run. An option that takes a value takes the next argument or `--opt=value`; a missing value is refused rather
 * than the next option taken for it. `--` ends the options: what follows is positional, dashes and all.
 */
import { UsageError } from '../protocol/errors';
import { closest } from '../protocol/schema-check';

/** A command's options: each name (`--out`) with the placeholder of its value (`<file>`), or null for a flag. */
export type OptionSpec = Readonly<Record<string, string | null>>;

export interface CommandSpec {
  options: OptionSpec;
  /** Options that exclude one another (report's formats): at most one of each group may be given. */
  exclusive?: readonly (readonly string[])[];
}

export interface CommandArgs {
  positional: string[];
  /** The options given: a value option's value, `true` for a flag. */
  flags: Map<string, string | true>;
  /** `--help` or `-h`, which every command takes. */
  help: boolean;
}

/** "run's options are --backend <backend>, --json", or that the command takes none. */
export function describeOptions(command: string, options: OptionSpec): string {
  const names = Object.entries(options).map(([name, value]) => (value === null ? name : `${name} ${value}`));
  return names.length ? `${command}'s options are ${names.join(', ')}` : `${command} takes no options`;
}

/** Parses `argv` (the arguments after the command's name); throws a UsageError for anything it does not take. */
export function parseCommandArgs(command: string, argv: string[], spec: CommandSpec): CommandArgs {
  const { options } = spec;
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  let help = false;
  const isOption = (a: string) => a.startsWith('-') && a !== '-' && !/^-\d/.test(a);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!isOption(a)) {
      positional.push(a);
      continue;
    }
    if (a === '--help' || a === '-h') {
      help = true;
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (!Object.hasOwn(options, name)) {
      const near = closest(name, Object.keys(options));
      throw new UsageError(
        `unknown option '${name}'${near ? ` (did you mean '${near}'?)` : ''}; ${describeOptions(command, options)}`,
      );
    }
    const placeholder = options[name];
    if (placeholder === null) {
      if (eq > 0) throw new UsageError(`${name} takes no value, got '${a}'`);
      flags.set(name, true);
      continue;
    }
    let value: string;
    if (eq > 0) value = a.slice(eq + 1);
    else if (i + 1 < argv.length && !isOption(argv[i + 1])) value = argv[++i];
    else {
      const next = i + 1 < argv.length ? `, got the option '${argv[i + 1]}'` : '';
      throw new UsageError(`${name} needs a value (${name} ${placeholder})${next}`);
    }
    if (value === '') throw new UsageError(`${name} needs a value (${name} ${placeholder}), got an empty one`);
    const before = flags.get(name);
    // Which of two values a script meant cannot be guessed; the last one silently winning hides the mistake.
    if (typeof before === 'string' && before !== value)
      throw new UsageError(`${name} is given twice ('${before}' and '${value}'): give it once`);
    flags.set(name, value);
  }
  for (const group of spec.exclusive ?? []) {
    const given = group.filter((name) => flags.has(name));
    if (given.length > 1)
      throw new UsageError(`${given.join(' and ')} cannot go together: give one of ${group.join(', ')}`);
  }
  return { positional, flags, help };
}

/** A value option's value, when it was given. */
export function optionValue(args: CommandArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}
