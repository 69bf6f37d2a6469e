/**
 * The evaluations of a PyTorch run, from the worker's `scores` messages: the accuracy of each (task, split, mode)
 * counted here as the tfjs engine counts it (evaluate.ts: the best-scoring label; generation decoded with the
 * run's tokenizer and trimmed), one `eval` event each in the tfjs order (every task's test set, then every
 * task's validation split, each in the order of `eval.modes`) whatever order the scores arrive in, and the
 * predictions `eval.predictions` asks for. A row is complete when every evaluation of its point is in.
 */
import type { ResolvedConfig } from '../../protocol/config-resolved';
import type { EventBody } from '../../protocol/events';
import type { ScoresMessage } from '../../protocol/torch-worker';
import { generatedPrediction, rankResult, type EvalResult } from '../../engine/evaluate';
import type { RunTask } from '../../engine/experiment';
import type { TextTokenizer } from '../../engine/data/batches';
import { hasValidation, oneAnswerWarning, predictionSet, writePredictions } from '../../engine/run-evaluation';
import { writesPredictions, type PredictionSetData } from '../../runs/predictions';
import type { Manifest, EvalSplit } from './prepare';
import { TorchWorkerError } from './worker-error';

type Mode = 'rank' | 'generate';

/** A finished evaluation point: the first mode's accuracy of every task, on the test sets and validation splits. */
export interface EvalRow {
  afterTask: number;
  test: number[];
  validation: number[] | null;
}

interface Slot {
  split: EvalSplit;
  task: number;
  mode: Mode;
}

interface Done {
  event: EventBody;
  /** The tfjs engine's warning after the same evaluation, if any (oneAnswerWarning). */
  warning: EventBody | null;
  predictions: PredictionSetData;
  accuracy: number;
}

const keyOf = (s: Slot) => `${s.split}/${s.task}/${s.mode}`;

export class EvalRows {
  /** Every evaluation of a point, in the order the tfjs engine emits them. */
  private readonly slots: Slot[] = [];
  private afterTask: number | null = null;
  private received = new Map<string, Done>();
  private next = 0;
  private emitted: Done[] = [];

  constructor(
    private readonly o: {
      config: ResolvedConfig;
      tasks: RunTask[];
      manifest: Manifest;
      tok: TextTokenizer;
      runDir: string;
      emit: (body: EventBody) => void;
    },
  ) {
    const splits: EvalSplit[] = hasValidation(o.tasks) ? ['test', 'validation'] : ['test'];
    for (const split of splits)
      for (const t of o.tasks) for (const mode of o.config.eval.modes) this.slots.push({ split, task: t.index, mode });
  }

  /** Whether a point is partly received. */
  get open(): boolean {
    return this.afterTask !== null;
  }

  /**
   * Takes one `scores` message of the point after task `expected` (-1: zero-shot); emits the `eval` events that
   * are now due; returns the row once the point is complete (its predictions written).
   */
  add(m: ScoresMessage, expected: number): EvalRow | null {
    if (m.afterTask !== expected) {
      throw protocol(
        `scores for the evaluation ${point(m.afterTask)} arrived where the evaluation ${point(expected)} was due`,
      );
    }
    const t = this.o.tasks[m.task];
    if (!t) throw protocol(`scores name task ${m.task}, the run has tasks 0..${this.o.tasks.length - 1}`);
    const slot: Slot = { split: m.split, task: m.task, mode: m.mode === 'generate' ? 'generate' : 'rank' };
    const key = keyOf(slot);
    if (!this.slots.some((s) => keyOf(s) === key))
      throw protocol(`scores for ${describe(t, slot)} were not asked for (eval.modes, eval.validation)`);
    if (this.received.has(key)) throw protocol(`scores for ${describe(t, slot)} arrived twice`);
    this.afterTask = m.afterTask;
    this.received.set(key, this.evaluate(m, t, slot));
    for (; this.next < this.slots.length; this.next++) {
      const done = this.received.get(keyOf(this.slots[this.next]));
      if (!done) return null;
      this.o.emit(done.event);
      if (done.warning) this.o.emit(done.warning);
      this.emitted.push(done);
    }
    return this.finish();
  }

  private evaluate(m: ScoresMessage, t: RunTask, slot: Slot): Done {
    const entry = this.o.manifest.tasks[t.index].evaluations.find(
      (e) => e.split === slot.split && (e.mode === 'generate') === (slot.mode === 'generate'),
    )!;
    if (entry.mode !== m.mode)
      throw protocol(`scores for ${describe(t, slot)} say mode '${m.mode}', the manifest '${entry.mode}'`);
    const examples = slot.split === 'test' ? t.test : t.validation;
    let result: EvalResult;
    if (slot.mode === 'rank') {
      const rows = m.scores;
      if (!rows) throw protocol(`scores for ${describe(t, slot)} have no \`scores\``);
      if (rows.length !== examples.length || rows.some((r) => r.length !== t.labels.length)) {
        throw protocol(
          `scores for ${describe(t, slot)} must be ${examples.length} rows of ${t.labels.length} label scores, got ${rows.length} rows`,
        );
      }
      // A non-finite score (JSON null) never wins.
      result = rankResult(
        { test: examples, labels: t.labels },
        rows.map((r) => r.map((v) => v ?? -Infinity)),
      );
    } else {
      const outs = m.outputs;
      if (!outs) throw protocol(`scores for ${describe(t, slot)} have no \`outputs\``);
      if (outs.length !== examples.length)
        throw protocol(`outputs for ${describe(t, slot)} must be ${examples.length} id lists, got ${outs.length}`);
      const predictions = examples.map((ex, i) => generatedPrediction(this.o.tok, outs[i], ex.output));
      result = {
        accuracy: (100 * predictions.filter((p) => p.correct).length) / examples.length,
        predictions,
      };
    }
    return {
      event: {
        type: 'eval',
        afterTask: m.afterTask,
        task: t.index,
        name: t.name,
        mode: slot.mode,
        split: slot.split,
        accuracy: result.accuracy,
        examples: examples.length,
      },
      warning: oneAnswerWarning(t, slot.split, slot.mode, examples, result, m.afterTask),
      predictions: predictionSet(t, slot.split, slot.mode, examples, result),
      accuracy: result.accuracy,
    };
  }

  private finish(): EvalRow {
    const afterTask = this.afterTask!;
    const { config, tasks, runDir } = this.o;
    if (writesPredictions(config.eval.predictions, afterTask, tasks.length)) {
      writePredictions(
        runDir,
        afterTask,
        tasks,
        this.emitted.map((d) => d.predictions),
        { emit: this.o.emit },
      );
    }
    // The matrix entry is the first mode's accuracy, as evaluateAll returns it.
    const first = config.eval.modes[0];
    const row = (split: EvalSplit) =>
      tasks.map((t) => this.received.get(keyOf({ split, task: t.index, mode: first }))!.accuracy);
    const out = { afterTask, test: row('test'), validation: hasValidation(tasks) ? row('validation') : null };
    this.afterTask = null;
    this.received = new Map();
    this.next = 0;
    this.emitted = [];
    return out;
  }
}

function point(afterTask: number): string {
  return afterTask < 0 ? 'before training (zero-shot)' : `after task ${afterTask + 1}`;
}

function describe(t: RunTask, s: Slot): string {
  return `task ${t.index + 1} ('${t.name}'), ${s.split} split, ${s.mode} mode`;
}

function protocol(message: string): TorchWorkerError {
  return TorchWorkerError.protocol(message);
}
