/**
 * The trainer processes of one host (a VS Code window, a `sculpt run`): a queue (at most `maxConcurrent` at
 * once, the cores shared among them), start-up timeout, stop escalation (request, SIGTERM, kill of the process
 * tree), crash reports (the end of trainer.log), and reattachment to trainers an earlier host started. The run
 * folder's events.jsonl stays the record: IPC only makes events arrive sooner, and whatever IPC missed before an
 * exit is read back from the log.
 *
 * No vscode and no engine here: hosts say how a trainer is started (`command`) and subscribe to `onEvent` and
 * `onState`.
 */
import { basename } from 'node:path';
import type { SculptEvent } from '../protocol/events';
import { describeMessage, type AliveMessage } from '../protocol/trainer';
import { emptySummary, foldEvent, foldRun } from '../runs/fold';
import { removePidFile } from '../runs/run-dir';
import { hasEnded, isLive, isSettled, type RunStatus } from '../runs/status';
import { threadsPerTrainer } from '../runs/threads';
import { TrainerChannel } from './channel';
import { EventTail } from './event-tail';
import { isAlive, killTree, signal } from './process-tree';
import { eventsPath, lastSeq, livePid, logPath, noteInLog, readLogEvents, tailText } from './run-files';
import { judge, newSession, type KillReason, type RunRecord, type Session } from './session';
import { spawnTrainer } from './spawn';
import type { TrainerCommand } from './trainer-command';

export interface SupervisorOptions {
  /** The command that runs a folder's trainer; throws an Error that says what to do when there is none. */
  command: (dir: string) => TrainerCommand;
  maxConcurrent: () => number;
  /**
   * Whether trainers lead their own process group and outlive the host (default true): an extension's trainers
   * must survive a window reload, and a detached group lets the whole tree be killed.
   */
  detached?: boolean;
  /**
   * How long a trainer may take to send its first event (Infinity: as long as it takes). A trainer that says it is
   * alive (an `alive` notice, src/protocol/trainer.ts) before then gets this long again from each notice.
   */
  startupTimeoutMs?: number;
  /** How long a trainer may take to finish its step and checkpoint after a stop request (Infinity: no limit). */
  stopGraceMs?: number;
  /** How long after SIGTERM before the process tree is killed. */
  killGraceMs?: number;
  /** Polling interval for attached trainers. */
  pollMs?: number;
}

/** How much of trainer.log a crash report carries. */
const LOG_TAIL_BYTES = 4000;
/** How much of a trainer's reported phase is kept, for a row of the Runs view and a problem's text. */
const MAX_PHASE_CHARS = 200;

type Listener<A extends unknown[]> = (...args: A) => void;

/**
 * Why a run folder cannot be started by any host now, or undefined when it can: a live trainer of this machine
 * already runs it, or its log says it finished.
 */
export function startRefusal(dir: string): string | undefined {
  const running = livePid(dir);
  if (running) return `${dir} is being run by trainer pid ${running.pid} (started elsewhere); stop that one first.`;
  if (foldRun(basename(dir), readLogEvents(dir)).status === 'finished') {
    return `${dir} has already finished (its events.jsonl ends with run-finished); start a new run instead.`;
  }
  return undefined;
}

export class Supervisor {
  private readonly records = new Map<string, RunRecord>();
  private readonly sessions = new Map<string, Session>();
  private readonly queue: string[] = [];
  private readonly eventListeners = new Set<Listener<[string, SculptEvent]>>();
  private readonly stateListeners = new Set<Listener<[RunRecord]>>();
  private readonly settleWaiters = new Map<string, ((r: RunRecord) => void)[]>();
  private readonly o: Required<SupervisorOptions>;

  constructor(opts: SupervisorOptions) {
    this.o = {
      detached: true,
      startupTimeoutMs: 120_000,
      stopGraceMs: 30_000,
      killGraceMs: 5_000,
      pollMs: 1_000,
      ...opts,
    };
  }

  /** Every event of a live session, validated, in seq order, each once (IPC and the log are merged). */
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
    const refusal = startRefusal(dir);
    if (refusal) throw new Error(refusal);
    const rec: RunRecord = {
      dir,
      state: 'queued',
      attached: false,
      embedded: false,
      progress: emptySummary(basename(dir)),
    };
    this.records.set(dir, rec);
    this.queue.push(dir);
    this.changed(rec);
    this.pump();
    return rec;
  }

  /**
   * Watches a trainer that an earlier host started, if the folder's pid file names a live process of this
   * machine running this folder. Returns the record, or undefined when there is nothing to attach to.
   */
  attach(dir: string): RunRecord | undefined {
    const known = this.records.get(dir);
    if (known && !isSettled(known.state)) return known;
    const pid = livePid(dir);
    return pid ? this.watch(dir, pid.pid, pid.started) : undefined;
  }

  /**
   * Follows a run whose trainer this host cannot signal (on another machine, or one that wrote no pid file): its
   * events.jsonl is read as it grows until it ends, or stays quiet for `quietMs`. Returns undefined for a log
   * that has ended or is empty.
   */
  follow(dir: string, quietMs = 5 * 60_000): RunRecord | undefined {
    const known = this.attach(dir);
    if (known) return known;
    return this.watch(dir, undefined, undefined, quietMs);
  }

  /** Stop: a queued run is dropped; a live one is asked to checkpoint and exit, then signalled, then killed. */
  stop(dir: string): void {
    const rec = this.records.get(dir);
    if (!rec) return;
    if (rec.state === 'queued') return this.cancel(rec);
    const s = this.sessions.get(dir);
    if (!s || !isLive(rec.state) || rec.pid === undefined) return;
    const pid = rec.pid;
    if (s.stopRequested) {
      // Asked twice: do not wait for the step to finish.
      signal(pid, 'SIGTERM');
      this.after(s, this.o.killGraceMs, () => this.killTrainer(rec, s, 'stop'));
      return;
    }
    s.stopRequested = true;
    rec.state = 'stopping';
    this.changed(rec);
    if (!s.channel?.send({ type: 'stop' })) signal(pid, 'SIGTERM');
    this.after(s, this.o.stopGraceMs, () => {
      // The trainer treats a second request as "exit now"; the kill follows if even that is ignored.
      signal(pid, 'SIGTERM');
      this.after(s, this.o.killGraceMs, () => this.killTrainer(rec, s, 'stop'));
    });
  }

  /** Kills a live run's process tree now (no checkpoint); a queued run is dropped. */
  kill(dir: string): void {
    const rec = this.records.get(dir);
    if (!rec) return;
    if (rec.state === 'queued') return this.cancel(rec);
    const s = this.sessions.get(dir);
    if (s && isLive(rec.state)) this.killTrainer(rec, s, 'kill');
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
    if (!rec) return Promise.reject(new Error(`${dir} is not a run of this host`));
    if (isSettled(rec.state)) return Promise.resolve(rec);
    return new Promise((resolve) => this.settleWaiters.set(dir, [...(this.settleWaiters.get(dir) ?? []), resolve]));
  }

  /**
   * Lets go of every trainer without stopping it (a window reload or shutdown): they keep running and writing
   * their logs, and the next host attaches to them. Queued runs stay unstarted folders.
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

  private cancel(rec: RunRecord): void {
    this.queue.splice(this.queue.indexOf(rec.dir), 1);
    this.settle(rec, 'cancelled');
  }

  private watch(
    dir: string,
    pid: number | undefined,
    started: number | undefined,
    quietMs = Infinity,
  ): RunRecord | undefined {
    // Read through the tail itself, so that nothing appended between the replay and the first poll is missed.
    const tail = new EventTail(eventsPath(dir));
    const events = tail.read();
    const progress = foldRun(basename(dir), events);
    if (pid === undefined && (progress.status === 'new' || hasEnded(progress.status))) return undefined;
    const rec: RunRecord = {
      dir,
      state: 'running',
      pid,
      attached: true,
      embedded: false,
      progress,
      startedAt: started,
    };
    const s = newSession(lastSeq(events));
    s.gotEvent = true;
    if (progress.status === 'failed') {
      for (const e of events) if (e.type === 'error') s.error = e;
    }
    s.tail = tail;
    s.quietMs = quietMs;
    s.poll = setInterval(() => this.pollAttached(rec, s), this.o.pollMs);
    this.records.set(dir, rec);
    this.sessions.set(dir, s);
    this.changed(rec);
    return rec;
  }

  private pump(): void {
    const max = Math.max(1, Math.floor(this.o.maxConcurrent()) || 1);
    // Logs merely followed (trainers this host cannot signal) take no slot: they are not this host's to schedule.
    const busy = () => this.live().filter((r) => !(r.attached && r.pid === undefined)).length;
    while (this.queue.length > 0 && busy() < max) this.launch(this.records.get(this.queue.shift()!)!);
  }

  private launch(rec: RunRecord): void {
    const dir = rec.dir;
    const s = newSession(lastSeq(readLogEvents(dir)));
    this.sessions.set(dir, s);
    rec.state = 'starting';
    rec.startedAt = Date.now();
    let cmd: TrainerCommand;
    try {
      cmd = this.o.command(dir);
    } catch (e) {
      rec.problem = (e as Error).message;
      return this.finish(rec, s, 'crashed');
    }
    rec.embedded = Boolean(cmd.embedded);
    const cannotStart = (err: Error) =>
      `Cannot start the trainer with ${cmd.command}: ${err.message}.${cmd.hint ? ` ${cmd.hint}` : ''}`;
    let spawned: ReturnType<typeof spawnTrainer>;
    try {
      spawned = spawnTrainer(cmd, dir, {
        detached: this.o.detached,
        threads: threadsPerTrainer(this.o.maxConcurrent()),
      });
    } catch (e) {
      rec.problem = cannotStart(e as Error);
      return this.finish(rec, s, 'crashed');
    }
    const { child, logOffset } = spawned;
    s.child = child;
    s.logOffset = logOffset;
    rec.pid = child.pid;
    s.channel = new TrainerChannel(child, {
      event: (e) => this.deliver(rec, s, e),
      alive: (m) => this.alive(rec, s, m),
      stray: (m) => this.stray(rec, s, m),
    });
    child.on('error', (err) => {
      // Spawn failures (ENOENT, EACCES) come here and no exit follows.
      if (child.pid === undefined) {
        rec.problem = cannotStart(err);
        this.finish(rec, s, 'crashed');
      }
    });
    child.on('exit', (code, sig) => {
      rec.exitCode = code;
      rec.exitSignal = sig;
      // Let IPC messages already received be handled before judging how it ended.
      setImmediate(() => this.finish(rec, s));
    });
    this.armStartup(rec, s);
    this.changed(rec);
  }

  /** (Re)sets the start-up deadline: a trainer with no event by then is killed. */
  private armStartup(rec: RunRecord, s: Session): void {
    if (s.startup) {
      clearTimeout(s.startup);
      s.timers.delete(s.startup);
    }
    s.startup = this.after(s, this.o.startupTimeoutMs, () => {
      if (!s.gotEvent) this.killTrainer(rec, s, 'timeout');
    });
  }

  /**
   * The trainer says it is alive before its first event (e.g. while its worker loads a large model): it gets
   * another start-up timeout from now. Once events flow, notices change nothing.
   */
  private alive(rec: RunRecord, s: Session, m: AliveMessage): void {
    if (s.done || s.gotEvent) return;
    const phase = m.phase.trim().slice(0, MAX_PHASE_CHARS);
    if (phase && phase !== rec.phase) {
      rec.phase = phase;
      this.changed(rec);
    }
    this.armStartup(rec, s);
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
    if (e.type === 'run-started') s.error = undefined;
    else if (e.type === 'error') s.error = e;
    foldEvent(rec.progress, e);
    for (const fn of this.eventListeners) fn(rec.dir, e);
  }

  /**
   * A message from the trainer that is neither an event nor a trainer message: dropped, and noted once in
   * trainer.log for whoever debugs it.
   */
  private stray(rec: RunRecord, s: Session, m: unknown): void {
    if (s.strayNoted || s.done) return;
    s.strayNoted = true;
    noteInLog(
      rec.dir,
      `the host ignored a message from the trainer that is not an event (later ones are not noted): ${describeMessage(m)}`,
    );
  }

  private pollAttached(rec: RunRecord, s: Session): void {
    const fresh = s.tail!.read();
    if (fresh.length) s.lastGrowth = Date.now();
    for (const e of fresh) this.deliver(rec, s, e);
    if (rec.pid !== undefined) {
      if (!isAlive(rec.pid)) this.finish(rec, s);
    } else if (hasEnded(rec.progress.status)) {
      this.finish(rec, s);
    } else if (Date.now() - s.lastGrowth > s.quietMs) {
      s.quiet = true;
      this.finish(rec, s);
    }
  }

  private killTrainer(rec: RunRecord, s: Session, why: KillReason): void {
    if (s.done || rec.pid === undefined) return;
    s.killedFor ??= why;
    killTree(rec.pid, 'SIGKILL');
    // An attached trainer is not our child: no exit event, so notice its end here.
    if (!s.child) setTimeout(() => this.pollAttached(rec, s), 50);
  }

  /** Ends a session: delivers what the log holds beyond IPC, judges the outcome, cleans up, starts the next. */
  private finish(rec: RunRecord, s: Session, forced?: RunStatus): void {
    if (s.done) return;
    for (const e of this.unseenEvents(rec.dir, s.lastSeq)) this.deliver(rec, s, e);
    s.done = true;
    this.clearTimers(s);
    s.child?.removeAllListeners();
    rec.endedAt = Date.now();
    const verdict = forced ? { state: forced } : judge(rec, s, this.o.startupTimeoutMs);
    const state = verdict.state;
    if (verdict.problem) rec.problem = verdict.problem;
    if (state !== 'finished' && state !== 'stopped' && state !== 'cancelled')
      rec.logTail = tailText(logPath(rec.dir), LOG_TAIL_BYTES, s.logOffset);
    // Leave nothing behind: whatever the trainer started goes with it.
    if ((state === 'crashed' || state === 'killed') && rec.pid !== undefined) killTree(rec.pid, 'SIGKILL');
    if (rec.pid !== undefined) removePidFile(rec.dir, rec.pid);
    this.settle(rec, state);
    this.pump();
  }

  private unseenEvents(dir: string, after: number): SculptEvent[] {
    try {
      return readLogEvents(dir).filter((e) => e.seq > after);
    } catch {
      return [];
    }
  }

  private settle(rec: RunRecord, state: RunStatus): void {
    rec.state = state;
    this.changed(rec);
    const waiters = this.settleWaiters.get(rec.dir) ?? [];
    this.settleWaiters.delete(rec.dir);
    for (const w of waiters) w(rec);
  }

  /** Runs `fn` after `ms` unless the session has ended; an infinite wait sets no timer. */
  private after(s: Session, ms: number, fn: () => void): NodeJS.Timeout | undefined {
    if (!Number.isFinite(ms)) return undefined;
    const t = setTimeout(() => {
      s.timers.delete(t);
      if (!s.done) fn();
    }, ms);
    s.timers.add(t);
    return t;
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
