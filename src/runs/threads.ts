/**
 * How the cores are shared among trainers: each wasm trainer gets cores / (trainers running at once) threads,
 * passed to it as SCULPT_WASM_THREADS by whoever launches it (the CLI, the extension). No tfjs import: the
 * extension host uses this too.
 */
import { availableParallelism } from 'node:os';

/** The wasm backend's pthread pool has 8 workers. */
export const MAX_WASM_THREADS = 8;

export function threadsPerTrainer(concurrent: number): number {
  return Math.min(
    MAX_WASM_THREADS,
    Math.max(1, Math.floor(availableParallelism() / Math.max(1, Math.floor(concurrent) || 1))),
  );
}
