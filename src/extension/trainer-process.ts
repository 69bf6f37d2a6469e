/**
 * Starting one trainer process for a run folder. Detached, so it leads its own process group (the whole tree
 * can be killed) and outlives a window reload; its output goes straight to the folder's trainer.log, never
 * through a pipe that would break when the window goes; events come over IPC.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainerRuntime } from './node-runtime';
import { LOG_FILE, writePidFile } from './run-folder';

/** `threads`: the wasm threads this trainer may use (the cores shared among the trainers allowed at once). */
export function spawnTrainer(runtime: TrainerRuntime, trainerScript: string, dir: string, threads?: number): ChildProcess {
  const fd = openSync(join(dir, LOG_FILE), 'a');
  try {
    writeSync(fd, `--- ${new Date().toISOString()} ${runtime.command} ${trainerScript} ${dir}${runtime.embedded ? ' (ELECTRON_RUN_AS_NODE)' : ''}\n`);
    const env = threads && !runtime.env.SCULPT_WASM_THREADS ? { ...runtime.env, SCULPT_WASM_THREADS: String(threads) } : runtime.env;
    const child = spawn(runtime.command, [trainerScript, dir], { cwd: dir, env, stdio: ['ignore', fd, fd, 'ipc'], detached: true, windowsHide: true });
    if (child.pid !== undefined) writePidFile(dir, child.pid);
    return child;
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
}
