/**
 * What the supervisor runs for a run folder. The host builds it, so the supervisor knows no trainer by name: today
 * `<node> dist/trainer.js <runDir>`; any program that takes the run folder, appends to its events.jsonl and
 * speaks src/protocol/trainer.ts over the IPC channel will do (a Python worker, `python -m sculpt_torch <runDir>`
 * under torchrun, for one).
 */

export interface TrainerCommand {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Working directory; the run folder when absent. */
  cwd?: string;
  /** Runs in a stand-in for Node (VS Code's own runtime run as Node) because no Node.js was found: said to the user. */
  embedded?: boolean;
  /** What to check when the command cannot be started at all (e.g. the setting that names the executable). */
  hint?: string;
}

export interface NodeTrainerOptions {
  /** The Node.js executable. */
  node: string;
  /** The trainer entry, dist/trainer.js. */
  script: string;
  dir: string;
  env: NodeJS.ProcessEnv;
  /** Options for Node itself, before the script (e.g. a host's own process.execArgv). */
  nodeArgs?: string[];
  embedded?: boolean;
  hint?: string;
}

/** `<node> [nodeArgs] <script> <runDir>`: the TypeScript trainer. */
export function nodeTrainerCommand(o: NodeTrainerOptions): TrainerCommand {
  return {
    command: o.node,
    args: [...(o.nodeArgs ?? []), o.script, o.dir],
    env: o.env,
    ...(o.embedded ? { embedded: true } : {}),
    ...(o.hint ? { hint: o.hint } : {}),
  };
}
