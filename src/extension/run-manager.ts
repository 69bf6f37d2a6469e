/**
 * Trainer processes of this workspace: a queue (at most `maxConcurrent` at once), start-up timeout, stop
 * escalation (request, SIGTERM, kill of the process tree), crash detection, and reattachment to trainers that
 * an earlier window started. The run folder's events.jsonl stays the record: IPC only makes events arrive
 * sooner, and whatever IPC missed before an exit is read back from the log. No vscode import: the adapters
 * (status bar, trees, dashboard) subscribe to `onEvent` and `onState`.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { isEvent, type SculptEvent } from '../protocol/events';
import { effectiveEvents } from '../runs/report';
import { EventTail } from './event-tail';
import { advance, initialProgress, type LiveProgress } from './live-progress';
import type { TrainerRuntime } from './node-runtime';
import { isAlive, killTree, signal } from './process-tree';
import { LOG_FILE, eventsFile, livePid, logOutcome, readEvents, removePidFile, tailText } from './run-folder';
import { judge, newSession, type Session } from './run-session';
import { spawnTrainer } from './trainer-process';
import { threadsPerTrainer } from '../runs/threads';

export type RunState = 'queued' | 'starting' | 'running' | 'stopping' | 'finished' | 'stopped' | 'failed' | 'crashed' | 'killed' | 'cancelled';

const LIVE: ReadonlySet<RunState> = new Set(['starting', 'running', 'stopping']);
export const isLive = (s: RunState): boolean => LIVE.has(s);
export const isSettled = (s: RunState): boolean => s !== 'queued' && !LIVE.has(s);

export interface RunRecord {
  readonly dir: string;
  state: RunState;
  pid?: number;
  /** Started by an earlier window: watched through its events.jsonl, stopped by signals. */
  attached: boolean;
  /** Runs in VS Code's own runtime because no Node.js was found. */
  embedded: boolean;
  progress: LiveProgress;
  /** Why it ended as it did when that was not a clean finish or stop: what to tell the user. */
  problem?: string;
  /** The end of trainer.log when the run failed, crashed or was killed. */
  logTail?: string;
  exitCode?: number | null;
  exitSignal?: string | null;
  startedAt?: number;
  endedAt?: number;
}

export interface RunManagerOptions {
  /** The trainer entry (dist/trainer.js), run as `<runtime> <trainerScript> <runDir>`. */
  trainerScript: string;
  /** The runtime for a run folder; throws (a RuntimeError) when none can be found. */
  runtime: (dir: string) => TrainerRuntime;
  maxConcurrent: () => number;
  /** How long a trainer may take to send its first event. */
  startupTimeoutMs?: number;
  /** How long a trainer may take to finish its step and checkpoint after a stop request. */
  stopGraceMs?: number;
  /** How long after SIGTERM before the process tree is killed. */
  killGraceMs?: number;
  /** Polling interval for attached trainers. */
  pollMs?: number;
}

type Listener<A extends unknown[]> = (...args: A) => void;


export class RunManager {
  private readonly records = new Map<string, RunRecord>();
  private readonly sessions = new Map<string, Session>();
  private readonly queue: string[] = [];
  private readonly eventListeners = new Set<Listener<[string, SculptEvent]>>();
  private readonly stateListeners = new Set<Listener<[RunRecord]>>();
  private readonly settleWaiters = new Map<string, ((r: RunRecord) => void)[]>();
  private readonly o: Required<RunManagerOptions>;

  constructor(opts: RunManagerOptions) {
    this.o = { startupTimeoutMs: 120_000, stopGraceMs: 30_000, killGraceMs: 5_000, pollMs: 1_000, ...opts };
  }

  onEvent(fn: Listener<[string, SculptEvent]>): { dispose(): void } {
    this.eventListeners.add(fn);
    return { dispose: () => this.eventListeners.delete(fn) };
  }

  /** Fires when a run's state (or its pid, problem) changes; not for every step. */
  onState(fn: Listener<[RunRecord]>): { dispose(): void } {
    this.stateListeners.add(fn);
    return { dispose: () => this.stateListeners.delete(fn) };
  }

  get(dir: string): RunRecord | undefined {
    return this.records.get(dir);
  }

  list(): RunRecord[] {
    return [...this.records.values()];
  }

  live(): RunRecord[] {
    return this.list().filter((r) => isLive(r.state));
  }

  queued(): RunRecord[] {
    return this.queue.map((d) => this.records.get(d)!);
  }

  /** Queues a run folder (new, or to resume from its last checkpoint); it starts when a slot is free. */
  start(dir: string): RunRecord {
    const known = this.records.get(dir);
    if (known && !isSettled(known.state)) throw new Error(`${dir} is already ${known.state}.`);
    const running = livePid(dir);
    if (running) throw new Error(`${dir} is being run by trainer pid ${running.pid} (started by another window); stop that one first.`);
    if (logOutcome(effectiveEvents(readEvents(dir))) === 'finished') {
      throw new Error(`${dir} has already finished (its events.jsonl ends with run-finished); start a new run instead.`);
    }
    const rec: RunRecord = { dir, state: 'queued', attached: false, embedded: false, progress: initialProgress() };
    this.records.set(dir, rec);
    this.queue.push(dir);
    this.changed(rec);
    this.pump();
    return rec;
  }

  /**
   * Watches a trainer that an earlier window started, if the folder's pid file names a live process of this
   * machine running this folder. Returns the record, or undefined when there is nothing to attach to.
   */
  attach(dir: string): RunRecord | undefined {
    const known = this.records.get(dir);
    if (known && !isSettled(known.state)) return known;
    const pid = livePid(dir);
    return pid ? this.watch(dir, pid.pid, pid.started) : undefined;
  }

  /**
   * Follows a run whose trainer this window cannot signal (started from a terminal with the CLI, which writes
   * no pid file): its events.jsonl is read as it grows until it ends, or stays quiet for `quietMs`. Returns
   * undefined for a log that has ended or is empty.
   */
  follow(dir: string, quietMs = 5 * 60_000): RunRecord | undefined {
    const known = this.attach(dir);
    if (known) return known;
    return this.watch(dir, undefined, undefined, quietMs);
  }

  private watch(dir: string, pid: number | undefined, started: number | undefined, quietMs = Infinity): RunRecord | undefined {
    // Read through the tail itself, so that nothing appended between the replay and the first poll is missed.
    const tail = new EventTail(eventsFile(dir));
    const events = tail.read();
    const outcome = logOutcome(effectiveEvents(events));
    if (pid === undefined && (events.length === 0 || outcome)) return undefined;
    const rec: RunRecord = { dir, state: 'running', pid, attached: true, embedded: false, progress: effectiveEvents(events).reduce(advance, initialProgress()), startedAt: started };
    const s = newSession(events.reduce((m, e) => Math.max(m, e.seq), 0));
    s.gotEvent = true;
    s.outcome = outcome;
    s.tail = tail;
    s.quietMs = quietMs;
    s.poll = setInterval(() => this.pollAttached(rec, s), this.o.pollMs);
    this.records.set(dir, rec);
    this.sessions.set(dir, s);
    this.changed(rec);
    return rec;
  }

  /** Stop: a queued run is dropped; a live one is asked to checkpoint and exit, then signalled, then killed. */
  stop(dir: string): void {
    const rec = this.records.get(dir);
    if (!rec) return;
    if (rec.state === 'queued') {
      this.queue.splice(this.queue.indexOf(dir), 1);
      this.settle(rec, 'cancelled');
      return;
    }
    const s = this.sessions.get(dir);
    if (!s || !isLive(rec.state) || rec.pid === undefined) return;
    const pid = rec.pid;
    if (s.stopRequested) {
      // Asked twice: do not wait for the step to finish.
      signal(pid, 'SIGTERM');
      this.after(s, this.o.killGraceMs, () => this.kill(rec, s, 'stop'));
      return;
    }
    s.stopRequested = true;
    rec.state = 'stopping';
    this.changed(rec);
    if (s.child?.connected) s.child.send({ type: 'stop' });
    else signal(pid, 'SIGTERM');
    this.after(s, this.o.stopGraceMs, () => {
      // The trainer treats a second request as "exit now"; the kill follows if even that is ignored.
      signal(pid, 'SIGTERM');
      this.after(s, this.o.killGraceMs, () => this.kill(rec, s, 'stop'));
    });
  }

  /** Drops what is known of an ended run (its folder was deleted). */
  forget(dir: string): void {
    const rec = this.records.get(dir);
    if (rec && isSettled(rec.state)) {
      this.records.delete(dir);
      this.sessions.delete(dir);
    }
  }

  /** Starts queued runs if slots are free (after `maxConcurrent` grew). */
  reschedule(): void {
    this.pump();
  }

  /** Resolves when the run has ended (finished, stopped, failed, crashed, killed or cancelled). */
  whenSettled(dir: string): Promise<RunRecord> {
    const rec = this.records.get(dir);
    if (!rec) return Promise.reject(new Error(`${dir} is not a run of this window`));
    if (isSettled(rec.state)) return Promise.resolve(rec);
    return new Promise((resolve) => this.settleWaiters.set(dir, [...(this.settleWaiters.get(dir) ?? []), resolve]));
  }

  /**
   * Lets go of every trainer without stopping it (a window reload or shutdown): they keep running and writing
   * their logs, and the next window attaches to them. Queued runs stay unstarted folders.
   */
  dispose(): void {
    for (const s of this.sessions.values()) {
      this.clearTimers(s);
      s.done = true;
      if (s.child) {
        s.child.removeAllListeners();
        if (s.child.connected) s.child.disconnect();
        s.child.unref();
      }
    }
    this.sessions.clear();
    this.queue.length = 0;
    this.eventListeners.clear();
    this.stateListeners.clear();
  }

  private pump(): void {
    const max = Math.max(1, Math.floor(this.o.maxConcurrent()) || 1);
    // Logs merely followed (trainers started outside VS Code) take no slot: they are not this window's to schedule.
    const busy = () => this.live().filter((r) => !(r.attached && r.pid === undefined)).length;
    while (this.queue.length > 0 && busy() < max) this.launch(this.records.get(this.queue.shift()!)!);
  }

  private launch(rec: RunRecord): void {
    const dir = rec.dir;
    const s = newSession(readEvents(dir).reduce((m, e) => Math.max(m, e.seq), 0));
    this.sessions.set(dir, s);
    rec.state = 'starting';
    rec.startedAt = Date.now();
    let runtime: TrainerRuntime;
    try {
      runtime = this.o.runtime(dir);
    } catch (e) {
      rec.problem = (e as Error).message;
      this.finish(rec, s, 'crashed');
      return;
    }
    rec.embedded = runtime.embedded;
    let child: ChildProcess;
    try {
      child = spawnTrainer(runtime, this.o.trainerScript, dir, threadsPerTrainer(this.o.maxConcurrent()));
    } catch (e) {
      rec.problem = `Cannot start the trainer with ${runtime.command}: ${(e as Error).message}`;
      this.finish(rec, s, 'crashed');
      return;
    }
    s.child = child;
    rec.pid = child.pid;
    child.on('message', (m: unknown) => {
      if (isEvent(m)) this.deliver(rec, s, m);
    });
    child.on('error', (err) => {
      // Spawn failures (ENOENT, EACCES) come here and no exit follows.
      if (child.pid === undefined) {
        rec.problem = `Cannot start the trainer with ${runtime.command}: ${err.message}. Check "sculpt.nodePath".`;
        this.finish(rec, s, 'crashed');
      }
    });
    child.on('exit', (code, sig) => {
      rec.exitCode = code;
      rec.exitSignal = sig;
      // Let IPC messages already received be handled before judging how it ended.
      setImmediate(() => this.finish(rec, s));
    });
    this.after(s, this.o.startupTimeoutMs, () => {
      if (!s.gotEvent) this.kill(rec, s, 'timeout');
    });
    this.changed(rec);
  }

  private deliver(rec: RunRecord, s: Session, e: SculptEvent): void {
    if (s.done || e.seq <= s.lastSeq) return;
    s.lastSeq = e.seq;
    if (!s.gotEvent) {
      s.gotEvent = true;
      if (rec.state === 'starting') {
        rec.state = 'running';
        this.changed(rec);
      }
    }
    if (e.type === 'run-started') s.outcome = undefined;
    else if (e.type === 'run-finished') s.outcome = 'finished';
    else if (e.type === 'stopped') s.outcome = 'stopped';
    else if (e.type === 'error') {
      s.outcome = 'failed';
      s.error = e;
    }
    rec.progress = advance(rec.progress, e);
    for (const fn of this.eventListeners) fn(rec.dir, e);
  }

  private pollAttached(rec: RunRecord, s: Session): void {
    const fresh = s.tail!.read();
    if (fresh.length) s.lastGrowth = Date.now();
    for (const e of fresh) this.deliver(rec, s, e);
    if (rec.pid !== undefined) {
      if (!isAlive(rec.pid)) this.finish(rec, s);
    } else if (s.outcome) {
      this.finish(rec, s);
    } else if (Date.now() - s.lastGrowth > s.quietMs) {
      s.quiet = true;
      this.finish(rec, s);
    }
  }

  private kill(rec: RunRecord, s: Session, why: 'timeout' | 'stop'): void {
    if (s.done || rec.pid === undefined) return;
    s.killedFor ??= why;
    killTree(rec.pid, 'SIGKILL');
    // An attached trainer is not our child: no exit event, so notice its end here.
    if (!s.child) setTimeout(() => this.pollAttached(rec, s), 50);
  }

  /** Ends a session: delivers what the log holds beyond IPC, judges the outcome, cleans up, starts the next. */
  private finish(rec: RunRecord, s: Session, forced?: RunState): void {
    if (s.done) return;
    for (const e of this.unseenEvents(rec.dir, s.lastSeq)) this.deliver(rec, s, e);
    s.done = true;
    this.clearTimers(s);
    s.child?.removeAllListeners();
    rec.endedAt = Date.now();
    const verdict = forced ? { state: forced } : judge(rec, s, this.o.startupTimeoutMs);
    const state = verdict.state;
    if (verdict.problem) rec.problem = verdict.problem;
    if (state !== 'finished' && state !== 'stopped' && state !== 'cancelled') rec.logTail = tailText(join(rec.dir, LOG_FILE), 2000);
    // Leave nothing behind: whatever the trainer started goes with it.
    if ((state === 'crashed' || state === 'killed') && rec.pid !== undefined) killTree(rec.pid, 'SIGKILL');
    if (rec.pid !== undefined) removePidFile(rec.dir, rec.pid);
    this.settle(rec, state);
    this.pump();
  }

  private unseenEvents(dir: string, lastSeq: number): SculptEvent[] {
    try {
      return readEvents(dir).filter((e) => e.seq > lastSeq);
    } catch {
      return [];
    }
  }

  private settle(rec: RunRecord, state: RunState): void {
    rec.state = state;
    this.changed(rec);
    const waiters = this.settleWaiters.get(rec.dir) ?? [];
    this.settleWaiters.delete(rec.dir);
    for (const w of waiters) w(rec);
  }

  private after(s: Session, ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      s.timers.delete(t);
      if (!s.done) fn();
    }, ms);
    s.timers.add(t);
  }

  private clearTimers(s: Session): void {
    for (const t of s.timers) clearTimeout(t);
    s.timers.clear();
    if (s.poll) clearInterval(s.poll);
    s.poll = undefined;
  }

  private changed(rec: RunRecord): void {
    for (const fn of this.stateListeners) fn(rec);
  }
}
