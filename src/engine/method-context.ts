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
    // Calibration draws depend only on the seed and the task, so a resumed run draws the same examples.
    const pick = new Rng(this.config.seed ^ hashString(`calibration/${t.name}`))
      .shuffle([...t.train])
      .slice(0, examples);
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
    this.hooks.emit({
      type: 'ranks',
      beforeTask: this.task,
      policy,
      matrices,
      seconds,
      ...(warnings.length ? { warnings } : {}),
    });
    if (!this.runDir) return;
    const file = join(this.runDir, rankPatternFile(this.task));
    try {
      mkdirSync(dirname(file), { recursive: true });
      writeFileAtomic(file, JSON.stringify(rankPatternOf(matrices), null, 2) + '\n');
    } catch (e) {
      // The ranks are in the event log too; a full disk here should not end the run.
      this.warn(
        `could not write ${file}: ${(e as Error).message}; the ranks are in this boundary's ranks event`,
        'rank-pattern-export',
      );
    }
  }

  warn(message: string, code?: string): void {
    this.hooks.emit({ type: 'warning', message, ...(code ? { code } : {}) });
  }
}
