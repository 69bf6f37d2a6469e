/**
 * The PyTorch worker as a child process. Its stdout is read line by line: lines that start with `@sculpt ` are
 * messages, the rest is copied to the trainer's stdout (trainer.log); its stderr is copied to the trainer's
 * stderr. The last lines of both are kept, to quote when the worker dies without saying why.
 *
 * The worker leads its own process group, so that a terminal's Ctrl-C (which reaches the trainer, when the CLI
 * runs it, and becomes a stop request) does not also interrupt torchrun or Python mid-step: stops reach the worker
 * only as `<runDir>/stop-request`. The group is killed when the trainer exits before the worker (a second stop
 * request forces it out), and the worker's stdin is a pipe that nothing writes to: it reads end-of-file when the
 * trainer is gone, however it went (kill -9 included).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { WORKER_MESSAGE_PREFIX } from '../../protocol/torch-worker';
import type { WorkerCommand } from './worker-command';

/** How the worker ended. `spawnError`: it never started (e.g. ENOENT: no such Python). */
export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError?: NodeJS.ErrnoException;
}

export interface WorkerProcess {
  /** Resolves once the process has ended and all of its output has been read. */
  readonly exited: Promise<WorkerExit>;
  /** The last lines of its log output (stdout lines that are not messages, and stderr). */
  tail(): string;
  /** SIGTERM to the worker's process group, SIGKILL after `graceMs` if it is still there. */
  terminate(graceMs?: number): void;
  /** `sig` to the worker's first process alone (torchrun, which then stops its ranks itself). */
  signal(sig: NodeJS.Signals): void;
}

const TAIL_LINES = 30;
const MAX_LINE_CHARS = 2000;

/**
 * `log` takes the worker's log output that is not a message: by default its stdout lines to this process's stdout
 * and its stderr lines to this process's stderr.
 */
export function startWorker(
  cmd: WorkerCommand,
  cwd: string,
  onMessage: (json: string) => void,
  log: { out: NodeJS.WritableStream; err: NodeJS.WritableStream } = { out: process.stdout, err: process.stderr },
): WorkerProcess {
  const child = spawn(cmd.command, cmd.args, {
    cwd,
    env: cmd.env,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: process.platform !== 'win32',
  });
  const lines: string[] = [];
  const keep = (line: string) => {
    lines.push(line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line);
    if (lines.length > TAIL_LINES) lines.shift();
  };
  let ended = false;
  const signalGroup = (sig: NodeJS.Signals) => {
    if (ended || child.pid === undefined) return;
    for (const pid of [-child.pid, child.pid]) {
      try {
        process.kill(pid, sig);
      } catch {
        // Already gone, or not a group leader (Windows).
      }
    }
  };
  // The trainer leaving first (a forced exit) takes the worker with it.
  const onExit = () => signalGroup('SIGKILL');
  process.on('exit', onExit);
  // Nothing is written to stdin; a worker that has exited must not make a stray EPIPE crash the trainer.
  child.stdin.on('error', () => {});

  const out = createInterface({ input: child.stdout, crlfDelay: Infinity });
  out.on('line', (line) => {
    if (line.startsWith(WORKER_MESSAGE_PREFIX)) onMessage(line.slice(WORKER_MESSAGE_PREFIX.length));
    else {
      keep(line);
      log.out.write(line + '\n');
    }
  });
  const err = createInterface({ input: child.stderr, crlfDelay: Infinity });
  err.on('line', (line) => {
    keep(line);
    log.err.write(line + '\n');
  });
  const closed = (s: NodeJS.EventEmitter) => new Promise<void>((resolve) => s.once('close', () => resolve()));
  const streams = Promise.all([closed(out), closed(err)]);

  const exited = new Promise<WorkerExit>((resolve) => {
    child.once('error', (e: NodeJS.ErrnoException) => {
      // Spawning failed: there will be no exit event.
      if (child.pid === undefined) resolve({ code: null, signal: null, spawnError: e });
    });
    child.once('exit', (code, signal) => {
      ended = true;
      // Output still buffered is read first; a grandchild that keeps the pipes open (a rank torchrun left
      // behind) must not keep the trainer waiting for ever.
      let late: NodeJS.Timeout | undefined;
      const waited = new Promise<void>((r) => (late = setTimeout(r, 5000)));
      void Promise.race([streams, waited]).then(() => {
        clearTimeout(late);
        child.stdout.destroy();
        child.stderr.destroy();
        resolve({ code, signal });
      });
    });
  }).finally(() => {
    ended = true;
    process.off('exit', onExit);
  });

  return {
    exited,
    tail: () => lines.join('\n'),
    terminate: (graceMs = 10_000) => {
      signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      timer.unref();
      void exited.then(() => clearTimeout(timer));
    },
    signal: (sig) => {
      if (ended || child.pid === undefined) return;
      try {
        process.kill(child.pid, sig);
      } catch {
        // Already gone.
      }
    },
  };
}
