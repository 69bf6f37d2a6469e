/**
 * Experience replay with a fixed per-task share (as the replay baselines of the O-LoRA and TRACE studies).
 *
 * When task j ends, max(1, round(bufferRatio · |train_j|)) of its training examples (seeded, balanced over
 * its labels) are kept. While task t >= 1 trains, its training set is its own N examples plus
 *   M = round(N · mixRatio / (1 - mixRatio))
 * buffer examples, split equally over the earlier tasks (the remainder to a seeded choice of tasks), each
 * task's share drawn by cycling through seeded shuffles of its buffer (so a small buffer is repeated evenly
 * rather than at random). The runner shuffles the union each epoch, so a batch holds about mixRatio buffer
 * examples on average. Everything trains, as in SeqFT. Defaults: bufferRatio 0.1, mixRatio 0.25. The draw
 * depends only on the seed, the task index and the buffer, so a resumed run trains on the same set.
 */
import type { tf } from '../tf';
import type { ReplayConfig } from '../../protocol/config';
import type { ResolvedMethod } from '../../protocol/config-resolved';
import type { Example } from '../../data/examples';
import { balancedSubset } from '../data/batches';
import { Rng, hashString } from '../../data/rng';
import type { Method, MethodContext, MethodState } from './method';
import { methodSeed } from './support';

export class Replay implements Method {
  readonly name = 'replay';
  readonly bufferRatio: number;
  readonly mixRatio: number;
  /** buffers[j]: the examples kept from task j. */
  private buffers: Example[][] = [];
  private seed = 0;

  constructor(cfg: ResolvedMethod<ReplayConfig>) {
    this.bufferRatio = cfg.bufferRatio;
    this.mixRatio = cfg.mixRatio;
  }

  setup(ctx: MethodContext): void {
    this.seed = methodSeed(ctx.rng, 'replay');
  }

  trainable(ctx: MethodContext): Map<string, tf.Variable> {
    return ctx.model.params;
  }

  trainingSet(ctx: MethodContext): Example[] {
    const own = ctx.tasks[ctx.task].train;
    return [...own, ...this.draw(ctx.task, own.length)];
  }

  /** The buffer examples mixed into task `task`'s training set of `n` own examples. */
  draw(task: number, n: number): Example[] {
    const sources = this.buffers
      .slice(0, task)
      .map((b, j) => ({ b, j }))
      .filter((s) => s.b.length > 0);
    if (sources.length === 0 || this.mixRatio <= 0) return [];
    const total = Math.round((n * this.mixRatio) / (1 - this.mixRatio));
    const rng = new Rng(this.seed ^ hashString(`mix/${task}`));
    const extra = new Set(rng.shuffle(sources.map((_, i) => i)).slice(0, total % sources.length));
    const out: Example[] = [];
    sources.forEach(({ b, j }, i) => {
      const share = Math.floor(total / sources.length) + (extra.has(i) ? 1 : 0);
      const pick = new Rng(this.seed ^ hashString(`mix/${task}/${j}`));
      let pool: Example[] = [];
      for (let k = 0; k < share; k++) {
        if (pool.length === 0) pool = pick.shuffle([...b]);
        out.push({ ...pool.pop()!, task: j });
      }
    });
    return out;
  }

  afterTask(ctx: MethodContext): void {
    const train = ctx.tasks[ctx.task].train;
    const size = Math.max(1, Math.round(this.bufferRatio * train.length));
    const kept = balancedSubset(train, size, new Rng(this.seed ^ hashString(`buffer/${ctx.task}`)));
    this.buffers[ctx.task] = kept.map((e) => ({ ...e }));
  }

  /** The buffer per finished task (a copy). */
  buffer(): Example[][] {
    return this.buffers.map((b) => b.map((e) => ({ ...e })));
  }

  state(): MethodState {
    return { tensors: new Map(), json: { buffers: this.buffer() } };
  }

  restore(state: MethodState): void {
    const j = state.json as { buffers: (Example[] | null)[] };
    // A JSON round trip turns holes (tasks not yet finished) into null.
    this.buffers = j.buffers.map((b) => (b ?? []).map((e) => ({ ...e })));
  }

  dispose(): void {}
}
