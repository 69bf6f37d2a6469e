/**
 * A rough duration of an experiment before it is written or run: training examples × epochs per task, plus
 * every evaluation (zero-shot and after each task, over each task's test and validation examples), per run;
 * times methods × orders × seeds runs, shared among the trainers that run at once. The per-example costs are
 * measured, not modelled: they hold for the wasm engine on a small CPU machine and are meant to tell seconds
 * from minutes from hours, nothing finer.
 */
import type { ExperimentConfig, TaskConfig } from '../protocol/config';

/**
 * Seconds per example, measured on the wasm backend on a 2-core machine with two trainers at once (one core
 * each), from the step and eval events of runs:
 * - `sculpt-base`: the CL-5 demo (examples/demo.sculpt.json: 8 epochs, batch 8, maxSeqLen 64, the products on
 *   OpenBLAS), whose 6 runs took 462 s two at a time. Training costs 0.011 s per example and epoch on the
 *   long-input tasks (software, spam, genre: 310-365 characters with the instruction, prompts cut at 64 tokens)
 *   and 0.008-0.010 s on the short ones (sentiment, concept: 88 and 121 characters); a rank evaluation costs
 *   0.003 s per example. Without a BLAS (tfjs's wasm kernels) the same runs take about 2.8 times as long.
 * - the tiny models: examples/tiny.sculpt.json with one seed and SeqFT (15 epochs, batch 16, maxSeqLen 16), one
 *   run at a time with the other core busy, 20 s a run: 0.007 s per training example and epoch (8 s and 11 s for
 *   the two tasks' 1,290 example-epochs), 0.001 s per evaluated example.
 * A task between the two input lengths is interpolated; a model of another size is scaled by its parameters
 * against sculpt-base's; prompts longer than 64 tokens (a larger maxSeqLen) cost proportionally more.
 */
export const COSTS = {
  base: {
    model: 'sculpt-base',
    trainShort: 0.009,
    trainLong: 0.0112,
    eval: 0.003,
    /** Mean input characters of the short and long tasks the two training costs were measured on. */
    shortChars: 105,
    longChars: 345,
    /** The maxSeqLen of the measurement. */
    seqLen: 64,
  },
  tiny: { trainExample: 0.007, evalExample: 0.001 },
  /** Starting a trainer, loading the model and the data, writing checkpoints: per run. */
  perRun: 5,
} as const;

/** What the estimate needs to know of each task, the builtin catalog or the user's files. */
export interface TaskSize {
  train: number;
  test: number;
  /** Mean input characters; unknown is costed as a short task. */
  inputChars?: number;
}

export interface EstimateInput {
  config: ExperimentConfig;
  /** The size of each task of `config.tasks`, in order; undefined where it is unknown (counted as 800 / 400). */
  sizes: (TaskSize | undefined)[];
  /** Parameters of the model, and of sculpt-base (for scaling); undefined when unknown. */
  parameters?: number;
  baseParameters?: number;
  /** Trainers at once (the extension's sculpt.maxConcurrentRuns, the CLI's --jobs). */
  jobs: number;
}

export interface Estimate {
  seconds: number;
  runs: number;
  /** Seconds of one run. */
  perRun: number;
  /** "2 methods × 1 order × 3 seeds = 6 runs" */
  grid: string;
}

const DEFAULT_SIZE: TaskSize = { train: 800, test: 400 };

/** Examples held out for validation (eval.validation: a fraction, a count, or 0), as validation-split.ts counts them. */
function heldOut(setting: number, n: number): number {
  if (!(setting > 0)) return 0;
  return setting >= 1 ? Math.min(setting, n - 1) : Math.min(n - 1, Math.max(1, Math.round(setting * n)));
}

function seedCount(c: ExperimentConfig): number {
  if (Array.isArray(c.seeds)) return c.seeds.length;
  return typeof c.seeds === 'number' ? c.seeds : 1;
}

const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;

export function estimateDuration(e: EstimateInput): Estimate {
  const c = e.config;
  const epochs = c.training?.epochs ?? 3;
  const seqLen = c.training?.maxSeqLen ?? 128;
  const validation = c.eval?.validation ?? 0.1;
  const zeroShot = c.eval?.zeroShot ?? true;
  const modes = c.eval?.modes?.length ?? 1;
  const tiny = /(^|:)tiny-/.test(c.model);
  const scale = !tiny && e.parameters && e.baseParameters ? e.parameters / e.baseParameters : 1;
  const b = COSTS.base;
  const trainCost = (chars: number | undefined) => {
    if (tiny) return COSTS.tiny.trainExample;
    const x = Math.min(1, Math.max(0, ((chars ?? b.shortChars) - b.shortChars) / (b.longChars - b.shortChars)));
    // Long inputs fill the window: a larger maxSeqLen lets them cost more, a smaller one less.
    const window = x > 0 ? Math.max(0.5, Math.min(seqLen, 512) / b.seqLen) : 1;
    return (b.trainShort + x * (b.trainLong - b.trainShort) * window) * scale;
  };
  const evalCost = (tiny ? COSTS.tiny.evalExample : b.eval * scale) * modes;
  let train = 0;
  let evaluated = 0;
  c.tasks.forEach((t: TaskConfig, i) => {
    const size = e.sizes[i] ?? DEFAULT_SIZE;
    const held = heldOut(validation, size.train);
    const n = Math.min(t.trainLimit ?? Infinity, size.train - held);
    train += n * epochs * trainCost(size.inputChars);
    evaluated += Math.min(t.testLimit ?? Infinity, size.test) + held;
  });
  const evaluations = c.tasks.length + (zeroShot ? 1 : 0);
  const perRun = COSTS.perRun + train + evaluations * evaluated * evalCost;
  const methods = c.methods.length;
  const orders = 1 + (c.orders?.length ?? 0);
  const seeds = seedCount(c);
  const runs = methods * orders * seeds;
  const jobs = Math.max(1, Math.min(e.jobs, runs));
  return {
    seconds: (perRun * runs) / jobs,
    runs,
    perRun,
    grid: `${plural(methods, 'method')} × ${plural(orders, 'order')} × ${plural(seeds, 'seed')} = ${plural(runs, 'run')}`,
  };
}

/** 42 -> "about 40 seconds", 540 -> "about 9 minutes", 7300 -> "about 2 hours" */
export function describeDuration(seconds: number): string {
  if (seconds < 60) return `about ${Math.max(5, Math.round(seconds / 5) * 5)} seconds`;
  const minutes = seconds / 60;
  if (minutes < 90) return `about ${Math.round(minutes)} minute${Math.round(minutes) === 1 ? '' : 's'}`;
  const hours = minutes / 60;
  return `about ${hours < 10 ? hours.toFixed(1).replace(/\.0$/, '') : Math.round(hours)} hours`;
}
