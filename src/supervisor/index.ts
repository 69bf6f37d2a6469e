/**
 * One supervisor for trainer processes, used by the extension and the CLI alike (see supervisor.ts). Neither
 * vscode nor the engine is imported anywhere under this folder.
 */
export { Supervisor, startRefusal, type SupervisorOptions } from './supervisor';
export type { KillReason, RunRecord } from './session';
export { nodeTrainerCommand, type NodeTrainerOptions, type TrainerCommand } from './trainer-command';
export { TrainerChannel, type IpcEnd } from './channel';
export { EventTail } from './event-tail';
export { isAlive, killTree } from './process-tree';
export { livePid, tailText } from './run-files';
