/**
 * `<runDir>/launch.json`: what node 0's trainer is about to start when a run spans several machines
 * (`torch.nnodes` > 1), written just before its torchrun and read by `sculpt join` on the other nodes
 * (src/cli/join.ts), which must start the same launch: the same checkpoint to resume from, the same rendezvous.
 *
 * Each session of the run is one launch, numbered from 1; `rdzvId` (torchrun's --rdzv-id) is new for each, so a
 * node that starts workers for an older launch can never meet node 0's workers of a newer one. The launch is
 * over once the log has a final event (run-finished, stopped, error) from `eventsFrom` on, or once the trainer
 * that wrote it is gone (trainer.pid no longer names it).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import type { SculptEvent } from '../../protocol/events';
import type { ResolvedTorch } from '../../protocol/config-resolved';
import { isFinalEvent } from '../../runs/fold';
import { writeFileAtomic } from '../../runs/output-dir';
import { readPidFile } from '../../runs/run-dir';

export const LAUNCH_FILE = 'launch.json';
export const LAUNCH_FORMAT = 1;

export interface LaunchRecord {
  format: number;
  /** 1 for the run's first session, then one more for each. */
  launch: number;
  /** torchrun's --rdzv-id for this launch. */
  rdzvId: string;
  /** The checkpoint the workers continue from, relative to the run folder (the folder may be mounted elsewhere). */
  resume: string | null;
  /** The seq of this session's first event: final events from here on end the launch. */
  eventsFrom: number;
  nnodes: number;
  nprocPerNode: number;
  rdzvEndpoint: string;
  /** The trainer that launches (node 0), as trainer.pid names it. */
  host: string;
  pid: number;
  /** Milliseconds since the epoch. */
  time: number;
}

export class LaunchFileError extends Error {
  override readonly name = 'LaunchFileError';
}

/** The record of a new launch of `runDir`, numbered after the one its folder holds. Not written yet. */
export function nextLaunch(
  runDir: string,
  o: { torch: ResolvedTorch; resume: string | null; log: readonly SculptEvent[] },
): LaunchRecord {
  let previous = 0;
  try {
    previous = readLaunch(runDir)?.launch ?? 0;
  } catch {
    // A damaged record counts as none: the new one replaces it, and its fresh rdzvId keeps launches apart.
  }
  const resume = o.resume === null ? null : isAbsolute(o.resume) ? relative(runDir, o.resume) : o.resume;
  return {
    format: LAUNCH_FORMAT,
    launch: previous + 1,
    rdzvId: `sculpt-${randomBytes(6).toString('hex')}`,
    resume,
    eventsFrom: o.log.reduce((m, e) => Math.max(m, e.seq), 0) + 1,
    nnodes: o.torch.nnodes,
    nprocPerNode: o.torch.nprocPerNode,
    rdzvEndpoint: o.torch.rdzvEndpoint ?? '',
    host: hostname(),
    pid: process.pid,
    time: Date.now(),
  };
}

export function writeLaunch(runDir: string, record: LaunchRecord): void {
  writeFileAtomic(join(runDir, LAUNCH_FILE), JSON.stringify(record, null, 1) + '\n');
}

/** The folder's launch record, null when it has none; a LaunchFileError names a record that cannot be used. */
export function readLaunch(runDir: string): LaunchRecord | null {
  const file = join(runDir, LAUNCH_FILE);
  if (!existsSync(file)) return null;
  let v: Partial<LaunchRecord>;
  try {
    v = JSON.parse(readFileSync(file, 'utf8')) as Partial<LaunchRecord>;
  } catch (e) {
    throw new LaunchFileError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const int = (x: unknown) => Number.isInteger(x) && (x as number) >= 0;
  const ok =
    v !== null &&
    typeof v === 'object' &&
    v.format === LAUNCH_FORMAT &&
    int(v.launch) &&
    typeof v.rdzvId === 'string' &&
    (v.resume === null || typeof v.resume === 'string') &&
    int(v.eventsFrom) &&
    int(v.nnodes) &&
    int(v.nprocPerNode) &&
    typeof v.host === 'string' &&
    int(v.pid);
  if (!ok)
    throw new LaunchFileError(
      `${file}: expected format ${LAUNCH_FORMAT} with launch, rdzvId, resume, eventsFrom, nnodes, nprocPerNode, host and pid`,
    );
  return v as LaunchRecord;
}

/** The final event that ended `launch` in `log`, if any. */
export function launchEnd(launch: LaunchRecord, log: readonly SculptEvent[]): SculptEvent | undefined {
  return log.find((e) => e.seq >= launch.eventsFrom && isFinalEvent(e));
}

/**
 * Whether node 0 may still be running `launch`: no final event of it in the log, and its trainer still holds the
 * folder (trainer.pid names it; on this machine, the process also exists).
 */
export function launchLive(runDir: string, launch: LaunchRecord, log: readonly SculptEvent[]): boolean {
  if (launchEnd(launch, log)) return false;
  const holder = readPidFile(runDir);
  if (!holder || holder.pid !== launch.pid || holder.host !== launch.host) return false;
  if (holder.host !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
