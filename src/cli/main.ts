/**
 * The `sculpt` command line. Exit codes: 0 success, 1 run failure, 2 invalid input, 3 stopped on request before
 * every run finished (`sculpt resume` continues).
 */
import { SCULPT_VERSION } from '../protocol/version';
import { missingCell, runCommand, resumeCommand } from './run';
import { validateCommand } from './validate';
import { reportCommand } from './report';
import { listCommand } from './list';
import { inspectCommand } from './inspect';
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
                   from standard input
  report <experimentDir | runDir...> [--csv | --html | --json] [--baseline <method>] [--out <file>]
                   AA / BWT / forgetting / FWT per method with 95% confidence intervals, paired
                   differences against the baseline, and each run's accuracy matrix
  list             builtin models, builtin tasks and methods
  inspect <checkpointDir> [--input <in.safetensors> --out <out.safetensors>] [--backend cpu|wasm]
                   architecture, parameter counts and target matrices of a checkpoint; optionally its logits
  --version        print the version
  help             this text

exit codes: 0 success, 1 a run failed, 2 invalid input, 3 stopped (Ctrl-C, SIGTERM) before every run
finished; \`sculpt resume\` continues
`;

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(['--backend', '--out', '--jobs', '--input', '--baseline', '--node-rank', '--timeout']);

export function parseArgs(argv: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) flags.set(a.slice(0, eq), a.slice(eq + 1));
      else if (VALUE_FLAGS.has(a)) {
        if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
        flags.set(a, argv[++i]);
      } else flags.set(a, true);
    } else positional.push(a);
  }
  return { positional, flags };
}

/** Run folders from the command line, experiment folders expanded to their runs. */
function runFolders(paths: string[]): string[] {
  try {
    return expandRunFolders(paths, missingCell);
  } catch (e) {
    if (e instanceof ExperimentDirError) throw new UsageError(e.message);
    throw e;
  }
}

function str(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
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
    const code = inputFailure(e, COMMANDS.has(cmd) ? `sculpt ${cmd}` : 'sculpt');
    if (code === undefined) throw e;
    return code;
  }
}

const COMMANDS = new Set(['run', 'resume', 'join', 'validate', 'report', 'list', 'inspect']);

async function dispatch(cmd: string, rest: string[]): Promise<number> {
  if (cmd === 'inspect') return inspectCommand(rest);
  const p = parseArgs(rest);
  const jobs = str(p, '--jobs');
  const runArgs = {
    backend: str(p, '--backend'),
    out: str(p, '--out'),
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
      const rank = str(p, '--node-rank');
      if (rank === undefined) throw new UsageError("give this machine's --node-rank (1 to torch.nnodes - 1)");
      if (!/^\d+$/.test(rank)) throw new UsageError(`--node-rank must be a whole number, got ${rank}`);
      const timeout = str(p, '--timeout');
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
        out: str(p, '--out'),
        baseline: str(p, '--baseline'),
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
