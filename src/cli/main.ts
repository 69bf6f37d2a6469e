/**
 * The `sculpt` command line. Exit codes: 0 success, 1 run failure, 2 invalid input, 3 stopped on request before
 * every run finished (`sculpt resume` continues).
 */
import { SCULPT_VERSION } from '../protocol/version';
import { missingCell, runCommand, resumeCommand } from './run';
import { validateCommand } from './validate';
import { reportCommand } from './report';
import { listCommand } from './list';
import { INSPECT_OPTIONS, inspectCommand } from './inspect';
import { parseCommandArgs, optionValue, type CommandSpec } from './args';
import { joinCommand } from './join';
import { inputFailure } from './failures';
import { UsageError } from '../protocol/errors';
import { ExperimentDirError, expandRunFolders } from '../runs/experiment-dir';

const USAGE = `sculpt ${SCULPT_VERSION}: continual fine-tuning experiments

usage: sculpt <command> [options]

commands:
  run <config.sculpt.json> [--backend auto|webgpu|tensorflow|wasm|cpu] [--out <runsDir>] [--jobs N] [--json]
                   run the experiment's grid (methods × orders × seeds) in a new experiment folder, one
                   trainer process per run
  resume <experimentDir | runDir...> [--jobs N] [--json]
                   continue stopped or interrupted runs from their last checkpoint (every unfinished run
                   of an experiment folder)
  join <experimentDir | runDir> --node-rank R [--timeout S] [--json]
                   node R of a torch run over several machines (torch.nnodes > 1): waits for node 0's
                   sculpt run or resume to launch each run, then starts this machine's workers on the
                   shared run folder (docs/scale.md)
  validate <config...> [--json [--stdin]]
                   check experiment configs (schema, semantics, data files, model files); --json prints
                   each config's errors and warnings as a line of JSON, --stdin reads the one config's text
                   from standard input (the config's path is still given: relative paths resolve against it)
  report <experimentDir | runDir...> [--csv | --html | --json] [--baseline <method>] [--out <file>]
                   AA / BWT / forgetting / FWT per method with 95% confidence intervals, paired
                   differences against the baseline, and each run's accuracy matrix; --out creates the
                   folders above its file
  list             builtin models, builtin tasks and methods
  inspect <checkpointDir | builtin:<model>> [--input <in.safetensors> --out <out.safetensors>] [--backend cpu|wasm]
                   architecture, parameter counts and target matrices of a checkpoint or builtin model;
                   optionally its logits
  --version        print the version
  help             this text; so does \`sculpt <command> --help\`

Each command refuses an option it does not take (exit 2), naming the options it takes.

exit codes: 0 success, 1 a run failed, 2 invalid input, 3 stopped (Ctrl-C, SIGTERM; a second one kills
the trainers) before every run finished; \`sculpt resume\` continues
`;

/** What each command takes; the parser (args.ts) refuses anything else. */
export const COMMAND_SPECS: Readonly<Record<string, CommandSpec>> = {
  run: { options: { '--backend': '<backend>', '--out': '<runsDir>', '--jobs': 'N', '--json': null } },
  resume: { options: { '--jobs': 'N', '--json': null } },
  join: { options: { '--node-rank': 'R', '--timeout': 'S', '--json': null } },
  validate: { options: { '--json': null, '--stdin': null } },
  report: {
    options: { '--csv': null, '--html': null, '--json': null, '--baseline': '<method>', '--out': '<file>' },
    exclusive: [['--csv', '--html', '--json']],
  },
  list: { options: {} },
  // inspect parses its own arguments (inspect.ts) with the same parser, so that it can run on its own.
  inspect: { options: INSPECT_OPTIONS },
};

/** Run folders from the command line, experiment folders expanded to their runs. */
function runFolders(paths: string[]): string[] {
  try {
    return expandRunFolders(paths, missingCell);
  } catch (e) {
    if (e instanceof ExperimentDirError) throw new UsageError(e.message);
    throw e;
  }
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === '--version' || cmd === '-v') {
    console.log(SCULPT_VERSION);
    return 0;
  }
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return 0;
  }
  try {
    return await dispatch(cmd, rest);
  } catch (e) {
    const code = inputFailure(e, Object.hasOwn(COMMAND_SPECS, cmd) ? `sculpt ${cmd}` : 'sculpt');
    if (code === undefined) throw e;
    return code;
  }
}

async function dispatch(cmd: string, rest: string[]): Promise<number> {
  if (!Object.hasOwn(COMMAND_SPECS, cmd)) throw new UsageError(`unknown command '${cmd}'`, USAGE);
  if (cmd === 'inspect') return inspectCommand(rest);
  const p = parseCommandArgs(cmd, rest, COMMAND_SPECS[cmd]);
  if (p.help) {
    console.log(USAGE);
    return 0;
  }
  const jobs = optionValue(p, '--jobs');
  const runArgs = {
    backend: optionValue(p, '--backend'),
    out: optionValue(p, '--out'),
    json: p.flags.has('--json'),
    jobs: jobs ? Number(jobs) : undefined,
  };
  if (jobs !== undefined && !(Number.isInteger(runArgs.jobs) && runArgs.jobs! >= 1))
    throw new UsageError(`--jobs must be a positive integer, got ${jobs}`);
  switch (cmd) {
    case 'run':
      if (p.positional.length !== 1) throw new UsageError('give exactly one config file');
      return runCommand(p.positional[0], runArgs);
    case 'resume':
      if (p.positional.length === 0) throw new UsageError('give an experiment folder or run folders');
      return resumeCommand(p.positional, runArgs);
    case 'join': {
      if (p.positional.length !== 1) throw new UsageError('give one experiment folder or run folder of node 0');
      const rank = optionValue(p, '--node-rank');
      if (rank === undefined) throw new UsageError("give this machine's --node-rank (1 to torch.nnodes - 1)");
      if (!/^\d+$/.test(rank)) throw new UsageError(`--node-rank must be a whole number, got ${rank}`);
      const timeout = optionValue(p, '--timeout');
      const timeoutS = timeout === undefined ? undefined : Number(timeout);
      if (timeoutS !== undefined && !(timeoutS > 0))
        throw new UsageError(`--timeout must be a positive number of seconds, got ${timeout}`);
      return joinCommand(p.positional[0], { nodeRank: Number(rank), json: p.flags.has('--json'), timeoutS });
    }
    case 'validate':
      return validateCommand(p.positional, { json: p.flags.has('--json'), stdin: p.flags.has('--stdin') });
    case 'report':
      return reportCommand(runFolders(p.positional), {
        csv: p.flags.has('--csv'),
        html: p.flags.has('--html'),
        json: p.flags.has('--json'),
        out: optionValue(p, '--out'),
        baseline: optionValue(p, '--baseline'),
      });
    case 'list':
      return listCommand();
    default:
      throw new UsageError(`unknown command '${cmd}'`, USAGE);
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e) => {
    console.error(`sculpt: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  },
);
