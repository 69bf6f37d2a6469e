import { join } from 'node:path';
import { LOG_FILE } from '../../runs/run-dir';
import type { WorkerCommand } from './worker-command';
import type { WorkerExit } from './worker-process';

/**
 * A failure of the PyTorch worker or of its conversation with the trainer process: the message names what
 * happened, `where` and `hint` go into the run's `error` event (src/trainer/run.ts) as an input error's do.
 */
export class TorchWorkerError extends Error {
  override readonly name: string = 'TorchWorkerError';

  constructor(
    message: string,
    readonly where: string,
    readonly hint: string,
  ) {
    super(message);
  }

  /** The worker sent something docs/torch-engine.md does not allow where it was sent. */
  static protocol(message: string): TorchWorkerError {
    return new TorchWorkerError(
      `the PyTorch worker broke the message protocol: ${message}`,
      'PyTorch worker (python/sculpt_torch)',
      'The worker and the trainer process must come from the same Sculpt checkout (docs/torch-engine.md is their contract); the worker output before this is in trainer.log.',
    );
  }
}

/** "with code 3", "on signal SIGKILL". */
export function describeExit(exit: WorkerExit): string {
  return exit.signal ? `on signal ${exit.signal}` : `with code ${exit.code}`;
}

/**
 * Why a worker that ended without `done`, `stopped` or `error` failed: it could not be started, or it died (the
 * end of its output, `tail`, quoted: a Python traceback says more than an exit code).
 */
export function exitError(exit: WorkerExit, cmd: WorkerCommand, tail: string, runDir: string): TorchWorkerError {
  if (exit.spawnError?.code === 'ENOENT') return missingPython(cmd);
  if (exit.spawnError) {
    return new TorchWorkerError(
      `the PyTorch worker could not be started (${cmd.command} ${cmd.args.join(' ')}): ${exit.spawnError.message}`,
      'torch.python',
      'Check that torch.python names an executable Python interpreter.',
    );
  }
  const how = exit.code === 0 ? 'exited' : `exited ${describeExit(exit)}`;
  const without = exit.code === 0 ? "finishing the run (no 'done' or 'stopped' message)" : 'reporting an error';
  return new TorchWorkerError(
    `the PyTorch worker ${how} without ${without}${tail ? `; the end of its output:\n${tail}` : ' and printed nothing'}`,
    'PyTorch worker (python/sculpt_torch)',
    `Its whole output is in ${join(runDir, LOG_FILE)}. Once the cause is fixed, \`sculpt resume ${runDir}\` continues from the last checkpoint.`,
  );
}

function missingPython(cmd: WorkerCommand): TorchWorkerError {
  const { python, from } = cmd.python;
  const why =
    from === 'torch.python'
      ? `torch.python names ${python}, which does not exist`
      : from === '.venv'
        ? `the project's environment ${python} does not exist`
        : `no '${python}' was found on the PATH (the config names no torch.python and the project has no .venv)`;
  return new TorchWorkerError(
    `the PyTorch engine needs a Python interpreter with torch: ${why}`,
    'torch.python',
    "Set torch.python in the experiment config to a Python that has torch, transformers and safetensors, or run `npm run provision` to make the project's .venv.",
  );
}
