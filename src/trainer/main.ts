/**
 * The trainer process: `node dist/trainer.js <runDir>`. Runs (or resumes) the job of a run folder prepared by
 * the CLI or the extension, writes events to its events.jsonl and, when started with an IPC channel, sends
 * them to the parent. A `stop` message (src/protocol/trainer.ts), SIGINT or SIGTERM asks it to finish the
 * current step, checkpoint and exit. Exit status: 0 finished or stopped, 1 failed, 2 bad arguments.
 */
import { existsSync } from 'node:fs';
import { describeMessage, isHostMessage } from '../protocol/trainer';
import { runFolder } from './run';
import { removePidFile, writePidFile } from '../runs/run-dir';

async function main(): Promise<number> {
  const runDir = process.argv[2];
  if (!runDir || !existsSync(runDir)) {
    console.error(`usage: trainer <runDir>  (${runDir ? `${runDir} does not exist` : 'no run folder given'})`);
    return 2;
  }
  let stop = false;
  const requestStop = () => {
    if (stop) process.exit(1); // a second request means: now
    stop = true;
  };
  process.on('SIGINT', requestStop);
  process.on('SIGTERM', requestStop);
  process.on('message', (m: unknown) => {
    // Only declared messages are acted on: a newer host's message is noted, not guessed at.
    if (!isHostMessage(m)) {
      console.error(`trainer: ignored a message from the host that is not a known host message: ${describeMessage(m)}`);
      return;
    }
    switch (m.type) {
      case 'stop':
        stop = true;
        break;
    }
  });
  writePidFile(runDir, process.pid);
  try {
    const outcome = await runFolder(runDir, { shouldStop: () => stop });
    return outcome === 'failed' ? 1 : 0;
  } finally {
    removePidFile(runDir, process.pid);
  }
}

main()
  .then(
    (code) => (process.exitCode = code),
    (e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = 1;
    },
  )
  // An open IPC channel keeps the process alive: close it whatever happened. Anything else left holding the
  // process (e.g. the worker threads of a wasm build that failed to start) must not keep a finished run "live":
  // the unref()ed timer ends the process if it has not ended by itself, after IPC has had time to drain.
  .finally(() => {
    if (process.connected) process.disconnect();
    setTimeout(() => process.exit(), 3000).unref();
  });
