/**
 * The extension's trainers: the supervisor (src/supervisor/) with this window's choices. Trainers run detached,
 * so that they outlive a window reload and the next window attaches to them; each runs `dist/trainer.js` under
 * the Node.js the settings name, or VS Code's own runtime when there is none (wasm and cpu only). The adapters
 * (status bar, trees, dashboard) subscribe to `onEvent` and `onState`.
 */
import { Supervisor, nodeTrainerCommand, type SupervisorOptions } from '../supervisor';
import type { TrainerRuntime } from './node-runtime';

export type { RunRecord } from '../supervisor';
export { isLive, isSettled } from '../runs/status';

export interface RunManagerOptions extends Omit<SupervisorOptions, 'command' | 'detached'> {
  /** The trainer entry (dist/trainer.js), run as `<runtime> <trainerScript> <runDir>`. */
  trainerScript: string;
  /** The runtime for a run folder; throws (a RuntimeError) when none can be found. */
  runtime: (dir: string) => TrainerRuntime;
}

export class RunManager extends Supervisor {
  constructor({ trainerScript, runtime, ...rest }: RunManagerOptions) {
    super({
      ...rest,
      detached: true,
      command: (dir) => {
        const rt = runtime(dir);
        return nodeTrainerCommand({
          node: rt.command,
          script: trainerScript,
          dir,
          env: rt.env,
          embedded: rt.embedded,
          hint: 'Check "sculpt.nodePath".',
        });
      },
    });
  }
}
