/**
 * `npm run bench -- models [--json] [--reps N] [--backends cpu,wasm] [--batch B] [--seq T]`
 *
 * Training throughput of the engine's decoders: one forward + backward of the HF causal-LM loss (gradients
 * of every parameter, no optimizer) on tiny GPT-2 and LLaMA models, in tokens per second, on each backend
 * that initialises here. Median of --reps timed steps after two warm-up steps, with min and max.
 * No peer runs in this suite yet (the rows carry peer: null); the PyTorch twin lives in the shared tools.
 */
import { cpus } from 'node:os';
import { tf } from '../../src/engine/tf';
import { selectBackend, type BackendRequest } from '../../src/engine/backend';
import { namedGrads } from '../../src/engine/models/grads';
import { randomModel } from '../../src/engine/models/registry';
import { formatStats, markdownTable, printReport, stats, type BenchRow, type Stats } from './report';
import { positiveIntOption } from './options';

/** The shapes of the reference fixtures (test/fixtures/hf-reference): L=2, d=64, vocab 512. */
const MODELS: Record<string, Record<string, unknown>> = {
  'gpt2-tiny': { model_type: 'gpt2', n_embd: 64, n_head: 4, n_layer: 2, n_positions: 256, vocab_size: 512 },
  'llama-tiny': {
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 512,
    max_position_embeddings: 256,
  },
};

interface Options {
  json: boolean;
  reps: number;
  backends: string[];
  batch: number;
  seq: number;
}

function parseOptions(args: string[]): Options {
  const value = (flag: string, fallback: string): string => {
    const i = args.indexOf(flag);
    return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
  };
  const int = (flag: string, fallback: number): number => positiveIntOption(args, flag, fallback);
  return {
    json: args.includes('--json'),
    reps: int('--reps', 7),
    backends: value('--backends', 'cpu,wasm').split(','),
    batch: int('--batch', 4),
    seq: int('--seq', 32),
  };
}

/** Seconds per forward+backward step, one sample per repetition. */
function timeSteps(raw: Record<string, unknown>, o: Options): number[] {
  const model = randomModel(raw, { seed: 1 });
  const V = model.config.vocabSize;
  const ids = tf.tidy(() => tf.randomUniform([o.batch, o.seq], 0, V, 'int32', 7) as tf.Tensor2D);
  const step = (): void =>
    tf.tidy(() => {
      const { value, grads } = namedGrads(model, () => model.loss(ids, ids));
      value.dataSync();
      for (const g of grads.values()) g.dataSync();
    });
  try {
    step();
    step();
    const samples: number[] = [];
    for (let r = 0; r < o.reps; r++) {
      const t0 = performance.now();
      step();
      samples.push((performance.now() - t0) / 1000);
    }
    return samples;
  } finally {
    ids.dispose();
    model.dispose();
  }
}

export async function runModelsBench(args: string[]): Promise<void> {
  const o = parseOptions(args);
  const rows: BenchRow[] = [];
  const table: string[][] = [];
  const notes = [
    `forward + backward of the causal-LM loss (all parameter gradients, no optimizer step), batch ${o.batch} x ${o.seq} tokens, fp32; ${o.reps} timed steps after 2 warm-up steps`,
    `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} logical cores; Node ${process.version}`,
    'no peer in this suite yet: peer and speedup are null',
  ];
  for (const backend of o.backends) {
    try {
      const info = await selectBackend(backend as BackendRequest);
      notes.push(`${backend}: ${info.device}`);
    } catch (e) {
      notes.push(`${backend}: skipped (${(e as Error).message})`);
      continue;
    }
    for (const [name, raw] of Object.entries(MODELS)) {
      const perStep: Stats = stats(timeSteps(raw, o));
      const tokens = o.batch * o.seq;
      // tokens/s: the median step gives the median rate; the slowest step gives the minimum.
      const rate: Stats = {
        median: tokens / perStep.median,
        min: tokens / perStep.max,
        max: tokens / perStep.min,
        count: perStep.count,
      };
      rows.push({
        name: `${name}/${backend}/fwd-bwd`,
        ours: Math.round(rate.median),
        peer: null,
        unit: 'tokens/s',
        speedup: null,
      });
      table.push([
        name,
        backend,
        formatStats(rate, 'tokens/s', 0),
        formatStats(
          { ...perStep, median: perStep.median * 1000, min: perStep.min * 1000, max: perStep.max * 1000 },
          'ms',
          1,
        ),
      ]);
    }
  }
  printReport(
    'models',
    markdownTable(['model', 'backend', 'fwd+bwd throughput', 'step time'], table),
    notes,
    rows,
    o.json,
  );
}
