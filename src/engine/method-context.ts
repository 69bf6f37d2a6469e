/**
 * The run as methods see it (MethodContext): the model, the tasks, seeded calibration batches, and a way to
 * report ranks and warnings as events (ranks also as a PEFT rank_pattern file in the run folder).
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tf } from './tf';
import type { ResolvedConfig } from '../protocol/config-validate';
import type { EventBody, MatrixRank } from '../protocol/events';
import type { CausalLM } from './models/types';
import type { Batch, TextTokenizer } from './data/batches';
import { codecFor, type Codec } from './data/codec';
import { labelShape } from './data/seq2seq';
import { Rng, hashString } from '../data/rng';
import type { BatchTensors, MethodContext } from './methods/method';
import type { RunTask } from './experiment';
import type { Example } from '../data/examples';
import { rankPatternFile, rankPatternOf } from './methods/rank-pattern';
import { writeFileAtomic } from '../runs/output-dir';

export class RunContext implements MethodContext {
  task = 0;
  readonly rng: Rng;
  readonly seed: number;
  readonly codec: Codec;

  constructor(
    readonly model: CausalLM,
    readonly tok: TextTokenizer,
    readonly tasks: RunTask[],
    private readonly config: Pick<ResolvedConfig, 'seed' | 'training'>,
    private readonly hooks: { emit(body: EventBody): void },
    /** The run folder, where the chosen ranks are written; none in tests that only read events. */
    private readonly runDir?: string,
  ) {
    this.rng = new Rng(config.seed);
    this.seed = config.seed;
    this.codec = codecFor(model, tok, config.training.maxSeqLen);
  }

  batchesOf(task: number, examples: number, batchSize = this.config.training.evalBatchSize): Batch[] {
    const t = this.tasks[task];
    const pick = calibrationOrder(this.config.seed, t).slice(0, examples);
    const enc = pick.map((ex) => this.codec.example(ex, t.template));
    const out: Batch[] = [];
    for (let i = 0; i < enc.length; i += batchSize) out.push(this.codec.batch(enc.slice(i, i + batchSize)));
    return out;
  }

  tensorsOf(b: Batch): BatchTensors {
    return {
      inputIds: tf.tensor2d(b.inputIds, [b.B, b.T], 'int32'),
      labels: tf.tensor2d(b.labels, labelShape(b), 'int32'),
      mask: tf.tensor2d(b.mask, [b.B, b.T], 'int32'),
    };
  }

  reportRanks(policy: string, matrices: MatrixRank[], seconds: number, warnings: string[] = []): void {
    reportRanks(this.hooks, this.runDir, {
      type: 'ranks',
      beforeTask: this.task,
      policy,
      matrices,
      seconds,
      ...(warnings.length ? { warnings } : {}),
    });
  }

  warn(message: string, code?: string): void {
    this.hooks.emit({ type: 'warning', message, ...(code ? { code } : {}) });
  }
}

/**
 * A task's training examples in the seeded calibration order; methods calibrate on the first n (ctx.batchesOf).
 * The draw depends only on the seed and the task, so a resumed run, and either engine, draws the same examples.
 */
export function calibrationOrder(seed: number, task: Pick<RunTask, 'name' | 'train'>): Example[] {
  return new Rng(seed ^ hashString(`calibration/${task.name}`)).shuffle([...task.train]);
}

/** A `ranks` event, and the chosen ranks as a PEFT rank_pattern file in the run folder (when there is one). */
export function reportRanks(
  hooks: { emit(body: EventBody): void },
  runDir: string | undefined,
  event: Extract<EventBody, { type: 'ranks' }>,
): void {
  hooks.emit(event);
  if (!runDir) return;
  const file = join(runDir, rankPatternFile(event.beforeTask));
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileAtomic(file, JSON.stringify(rankPatternOf(event.matrices), null, 2) + '\n');
  } catch (e) {
    // The ranks are in the event log too; a full disk here should not end the run.
    hooks.emit({
      type: 'warning',
      message: `could not write ${file}: ${(e as Error).message}; the ranks are in this boundary's ranks event`,
      code: 'rank-pattern-export',
    });
  }
}
