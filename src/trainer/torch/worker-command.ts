/**
 * The command line of the PyTorch worker (docs/torch-engine.md): `<python> -m sculpt_torch <runDir> [--resume
 * <checkpoint>]` for one process, or the same module under torchrun (`python -m torch.distributed.run`) when
 * `torch.nprocPerNode` or `torch.nnodes` asks for more. The worker's package lives in the repository's `python/`
 * folder, found above the running bundle (dist/trainer.js) as the assets are, and put on PYTHONPATH.
 */
import { existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import type { ResolvedTorch } from '../../protocol/config-resolved';
import { ConfigError } from '../../protocol/errors';

/** The Python to run and where that choice came from (for messages about a missing one). */
export interface PythonChoice {
  python: string;
  /** `torch.python` in the config, the project's `.venv` (npm run provision), or `python3` on the PATH. */
  from: 'torch.python' | '.venv' | 'PATH';
}

export interface WorkerCommand {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  python: PythonChoice;
  /** Processes over all machines. */
  world: number;
}

export interface WorkerCommandOptions {
  torch: ResolvedTorch;
  runDir: string;
  /** The checkpoint folder to continue from. */
  resume?: string;
  /** This machine's rank among `torch.nnodes`: `torch.nodeRank` unless given (`sculpt join` gives its own). */
  nodeRank?: number;
  /** torchrun's --rdzv-id, with several machines: one per launch (./launch.ts). */
  rdzvId?: string;
  /** The folder holding the `sculpt_torch` package (the repository's `python/`). */
  pythonDir: string;
  /** The repository root, whose `.venv` is the default Python; null when unknown. */
  repo: string | null;
  env: NodeJS.ProcessEnv;
  /** For tests: whether a file exists. */
  exists?: (file: string) => boolean;
}

/** The interpreter: `torch.python`, else the project's venv when it exists, else `python3` on the PATH. */
export function choosePython(
  torch: Pick<ResolvedTorch, 'python'>,
  repo: string | null,
  exists: (file: string) => boolean = existsSync,
): PythonChoice {
  if (torch.python !== undefined) return { python: torch.python, from: 'torch.python' };
  if (repo) {
    for (const venv of [join(repo, '.venv', 'bin', 'python'), join(repo, '.venv', 'Scripts', 'python.exe')])
      if (exists(venv)) return { python: venv, from: '.venv' };
  }
  return { python: 'python3', from: 'PATH' };
}

export function workerCommand(o: WorkerCommandOptions): WorkerCommand {
  const t = o.torch;
  const python = choosePython(t, o.repo, o.exists);
  const world = t.nprocPerNode * t.nnodes;
  const worker = ['-m', 'sculpt_torch', o.runDir, ...(o.resume ? ['--resume', o.resume] : [])];
  let args = worker;
  if (world > 1 || t.nnodes > 1) {
    let rendezvous = ['--standalone'];
    if (t.nnodes > 1) {
      if (!t.rdzvEndpoint) {
        throw new ConfigError([
          {
            path: 'torch.rdzvEndpoint',
            message: `is needed when torch.nnodes is ${t.nnodes}: the machines meet at this address`,
            expected: 'host:port of node 0 (e.g. "10.0.0.1:29500")',
          },
        ]);
      }
      // Static, not c10d: c10d orders the nodes by host name and process id and ignores --node-rank, so global
      // rank 0 (the one that sends the messages) could land on a node without the trainer. Static gives node r the
      // ranks r * nprocPerNode + local rank, and node 0 hosts the store at the endpoint.
      rendezvous = [
        '--rdzv-endpoint',
        t.rdzvEndpoint,
        '--rdzv-backend',
        'static',
        ...(o.rdzvId ? ['--rdzv-id', o.rdzvId] : []),
      ];
    }
    args = [
      '-m',
      'torch.distributed.run',
      '--nproc-per-node',
      String(t.nprocPerNode),
      '--nnodes',
      String(t.nnodes),
      '--node-rank',
      String(o.nodeRank ?? t.nodeRank),
      ...rendezvous,
      ...worker,
    ];
  }
  const pythonPath = [o.pythonDir, o.env.PYTHONPATH].filter((p) => p).join(delimiter);
  return {
    command: python.python,
    args,
    // Unbuffered: messages must reach the trainer when printed, not when a pipe buffer fills. The cores this trainer
    // was given (SCULPT_WASM_THREADS, the supervisor's share among the trainers it runs at once) are split among the
    // local processes, as torch would otherwise start a thread per core in each and oversubscribe the machine; a
    // user's own OMP_NUM_THREADS wins.
    env: {
      ...o.env,
      PYTHONPATH: pythonPath,
      PYTHONUNBUFFERED: '1',
      PYTHONDONTWRITEBYTECODE: '1',
      // The worker (each rank) leaves when its stdin, a pipe only the trainer holds, reads end-of-file.
      SCULPT_PARENT_STDIN: '1',
      ...(o.env.OMP_NUM_THREADS || !o.env.SCULPT_WASM_THREADS
        ? {}
        : {
            OMP_NUM_THREADS: String(Math.max(1, Math.floor(Number(o.env.SCULPT_WASM_THREADS) / t.nprocPerNode) || 1)),
          }),
    },
    python,
    world,
  };
}

/**
 * The folder holding `sculpt_torch`: SCULPT_PYTHON_DIR, else the nearest `python/sculpt_torch` above `from` (the
 * running bundle's folder). Throws, naming both, when there is none.
 */
export function findPythonDir(from: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.SCULPT_PYTHON_DIR) return env.SCULPT_PYTHON_DIR;
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'python', 'sculpt_torch'))) return join(dir, 'python');
    if (dirname(dir) === dir)
      throw new Error(
        `the PyTorch worker's package (python/sculpt_torch) was not found above ${from}; set SCULPT_PYTHON_DIR to the folder that holds sculpt_torch`,
      );
  }
}
