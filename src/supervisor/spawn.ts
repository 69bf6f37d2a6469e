/**
 * Starting one trainer process for a run folder. Its output goes straight to the folder's trainer.log, never
 * through a pipe that would break when the host goes; events come over IPC.
 *
 * Detached or not is the host's choice (see SupervisorOptions.detached): a detached trainer leads its own process
 * group, so the whole tree can be killed, and outlives its host; an attached one shares the host's group, so that
 * a terminal's Ctrl-C and hang-up reach it as they reach the host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync, writeSync } from 'node:fs';
import { writePidFile } from '../runs/run-dir';
import { logPath } from './run-files';
import type { TrainerCommand } from './trainer-command';

export interface SpawnOptions {
  detached: boolean;
  /** The wasm threads this trainer may use (the cores shared among the trainers allowed at once). */
  threads: number;
}

export interface Spawned {
  child: ChildProcess;
  /** Where this session's output starts in trainer.log (after its header line). */
  logOffset: number;
}

/** The header line of a session in trainer.log: when, and what was run. */
function header(cmd: TrainerCommand): string {
  const how = cmd.env.ELECTRON_RUN_AS_NODE ? ' (ELECTRON_RUN_AS_NODE)' : '';
  return `--- ${new Date().toISOString()} ${[cmd.command, ...cmd.args].join(' ')}${how}\n`;
}

/** Throws when the process cannot be created at all; spawn failures reported later come as the child's `error`. */
export function spawnTrainer(cmd: TrainerCommand, dir: string, o: SpawnOptions): Spawned {
  const fd = openSync(logPath(dir), 'a');
  try {
    writeSync(fd, header(cmd));
    const logOffset = fstatSync(fd).size;
    // An explicit setting (the user's environment) wins over the even share.
    const env = cmd.env.SCULPT_WASM_THREADS ? cmd.env : { ...cmd.env, SCULPT_WASM_THREADS: String(o.threads) };
    const child = spawn(cmd.command, cmd.args, {
      cwd: cmd.cwd ?? dir,
      env,
      stdio: ['ignore', fd, fd, 'ipc'],
      detached: o.detached,
      windowsHide: true,
    });
    // The trainer writes the pid file too, once it runs; this one covers the time before that.
    if (child.pid !== undefined) writePidFile(dir, child.pid);
    return { child, logOffset };
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
}
