/**
 * `npm run bench -- eval [--json] [--reps N] [--backends wasm,cpu] [--examples N] [--prompts P] [--new-tokens T]`:
 * evaluation throughput of the shipped base model (assets/models/sculpt-base with its tokenizer) on CL-5
 * sentiment test examples, beside a PyTorch twin on the same weights and token ids in the same invocation
 * (scripts/bench/eval_twin.py, Debian python3-torch, fp32, 2 threads):
 *   rank      the runner's scoring (evaluate.ts rankAccuracy: with one-token labels, one forward per prompt and
 *             the labels' next-token log-probabilities; else Σ log p(label tokens | prompt) per prompt x label),
 *             examples/s (prompts·labels/s in the table);
 *   generate  greedy decoding with the key/value cache (both sides), P prompts x T new tokens, no EOS stop so
 *             both sides decode the same number of tokens; new tokens/s.
 * Rows `sculpt-base/<backend>/rank` and `sculpt-base/<backend>/generate`; speedup = ours / peer throughput.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { loadTokenizer } from '../../src/engine/io/tokenizer';
import { loadTasks } from '../../src/engine/experiment';
import { rankAccuracy, rankInputs, type RankInputs } from '../../src/engine/evaluate';
import { codecFor } from '../../src/engine/data/codec';
import { loadConfig } from '../../src/cli/run';
import { formatStats, markdownTable, printReport, stats, type BenchRow, type Stats } from './report';

const root = process.env.SCULPT_REPO_ROOT ?? process.cwd();
const MODEL = 'sculpt-base';
const TASK = 'cl5/sentiment';
const MAX_SEQ_LEN = 96;

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

type RankJob = RankInputs & {
  batchSize: number;
  /** Scored pairs: prompts x labels. */
  pairs: number;
  examples: number;
};

interface TwinOut {
  rank_s: number[];
  gen_s: number[];
  rank_scores: number[][] | number[];
  gen_tokens: number[][];
  threads: number;
  torch: string;
  blas: string;
}

/** The runner's resolved config for one sculpt-base task (defaults filled in exactly as `sculpt run` fills them). */
function evalTask(examples: number) {
  const dir = mkdtempSync(join(tmpdir(), 'sculpt-bench-eval-'));
  try {
    const file = join(dir, 'eval.sculpt.json');
    const raw = {
      name: 'bench-eval',
      seed: 0,
      model: `builtin:${MODEL}`,
      tasks: [{ name: 'sentiment', source: { builtin: TASK }, trainLimit: 16, testLimit: examples }],
      methods: [{ method: 'seqft' }],
      training: { maxSeqLen: MAX_SEQ_LEN },
      eval: { modes: ['rank'], zeroShot: false },
      output: join(dir, 'runs'),
    };
    writeFileSync(file, JSON.stringify(raw));
    const config = loadConfig(file);
    if (!config) throw new Error('the eval bench config did not validate (see above)');
    return { config, task: loadTasks(config, 0)[0] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runTwin(modelDir: string, job: object, reps: number): { out: TwinOut | null; note: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sculpt-bench-eval-'));
  try {
    const jobFile = join(dir, 'job.json');
    writeFileSync(jobFile, JSON.stringify(job));
    const python = process.env.SCULPT_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
    const r = spawnSync(
      python,
      [
        join(root, 'scripts/bench/eval_twin.py'),
        '--model',
        modelDir,
        '--job',
        jobFile,
        '--reps',
        String(reps),
        '--threads',
        '2',
      ],
      {
        encoding: 'utf8',
        timeout: 30 * 60 * 1000,
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    if (r.status !== 0)
      return {
        out: null,
        note: `PyTorch twin did not run (${(r.stderr || r.error?.message || '').trim().split('\n').pop()}); install Debian's python3-torch`,
      };
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as TwinOut;
    return { out, note: `PyTorch twin: ${out.torch}, ${out.threads} threads, BLAS ${out.blas}, fp32, inference_mode` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function timed<T>(reps: number, warmup: number, f: () => Promise<T>): Promise<{ times: number[]; result: T }> {
  const times: number[] = [];
  let result: T | undefined;
  for (let r = 0; r < warmup + reps; r++) {
    const t0 = performance.now();
    result = await f();
    if (r >= warmup) times.push((performance.now() - t0) / 1000);
  }
  return { times, result: result as T };
}

export async function runEvalBench(argv: string[]): Promise<void> {
  const json = argv.includes('--json');
  const reps = Number(arg(argv, 'reps') ?? 3);
  const backends = (arg(argv, 'backends') ?? 'wasm,cpu').split(',');
  const nExamples = Number(arg(argv, 'examples') ?? 64);
  const nPrompts = Number(arg(argv, 'prompts') ?? 16);
  const newTokens = Number(arg(argv, 'new-tokens') ?? 8);
  const modelDir = join(root, 'assets/models', MODEL);
  const rows: BenchRow[] = [];
  const table: string[][] = [];
  const notes: string[] = [];
  if (!existsSync(join(modelDir, 'config.json'))) {
    printReport(
      'eval',
      markdownTable(['model/backend/mode', 'work', 'ours', 'PyTorch', 'ours thrpt', 'PyTorch thrpt', 'ratio'], []),
      [`${MODEL}: not installed, skipped`],
      rows,
      json,
    );
    return;
  }
  const { config, task } = evalTask(nExamples);
  const settings = {
    maxSeqLen: config.training.maxSeqLen,
    batchSize: config.training.evalBatchSize,
    maxNewTokens: newTokens,
  };
  const tok = loadTokenizer(modelDir);

  // The token ids the runner scores (evaluate.ts rankInputs, what rankAccuracy scores), handed to the twin.
  let job: { rank: RankJob; generate: { prompts: number[][]; newTokens: number } } | null = null;
  let peer: { out: TwinOut | null; note: string } | null = null;
  for (const backend of backends) {
    await selectBackend(backend as 'wasm');
    const model = loadPretrained(modelDir);
    try {
      if (!job) {
        const codec = codecFor(model, tok, settings.maxSeqLen);
        const inputs = rankInputs(model, tok, task, settings.maxSeqLen);
        const rank: RankJob = {
          ...inputs,
          batchSize: settings.batchSize,
          pairs: inputs.mode === 'next' ? inputs.prompts.length * task.labels.length : inputs.prompts.length,
          examples: task.test.length,
        };
        const genPrompts = task.test.slice(0, nPrompts).map((ex) => codec.prompt(ex, task.template, newTokens));
        job = { rank, generate: { prompts: genPrompts, newTokens } };
        peer = runTwin(modelDir, job, reps);
        notes.push(peer.note);
        const meanLen = (ps: number[][]) => (ps.reduce((s, p) => s + p.length, 0) / ps.length).toFixed(1);
        notes.push(
          `rank: ${TASK} test, ${rank.examples} examples x ${task.labels.length} labels (${task.labels.join(', ')}), ` +
            (rank.mode === 'next'
              ? `every label one token: one forward per prompt and the labels' next-token log-probs (rankAccuracy's fast path)`
              : `Σ log p(label tokens + EOS | prompt) per prompt x label (continuationLogProbs)`) +
            `, eval batch ${settings.batchSize}, prompts ${meanLen(rank.prompts)} tokens on average (maxSeqLen ${settings.maxSeqLen})`,
        );
        notes.push(
          `generate: ${genPrompts.length} prompts (${meanLen(genPrompts)} tokens on average, left-padded, one batch) x ${newTokens} new tokens, greedy, key/value cache on both sides, EOS ignored`,
        );
      }
      const rj = job.rank;
      const pj = job.generate;
      const rankRun = await timed(reps, 1, () => rankAccuracy(model, tok, task, settings));
      const genRun = await timed(reps, 1, () => model.generate(pj.prompts, pj.newTokens, { eosTokenIds: [] }));
      // Agreement with the twin (untimed): scores of the same ids, and the greedy tokens.
      const p = peer?.out ?? null;
      if (p && backend === backends[0]) {
        const ours =
          rj.mode === 'next'
            ? (await model.nextTokenLogProbs!(rj.prompts, rj.candidates, rj.batchSize)).flat()
            : await model.continuationLogProbs(rj.prompts, rj.continuations, rj.batchSize);
        const theirs = (p.rank_scores as (number | number[])[]).flat();
        const diff = Math.max(...ours.map((x, i) => Math.abs(x - theirs[i])));
        const gOurs = genRun.result.flat();
        const gTheirs = p.gen_tokens.flat();
        const same = gOurs.filter((t, i) => t === gTheirs[i]).length;
        notes.push(
          `agreement (${backend} vs PyTorch): rank log-prob max |diff| ${diff.toExponential(2)}; greedy tokens equal ${same}/${gTheirs.length}`,
        );
      }
      const rankS = stats(rankRun.times);
      const genS = stats(genRun.times);
      const peerRank: Stats | null = p ? stats(p.rank_s) : null;
      const peerGen: Stats | null = p ? stats(p.gen_s) : null;
      const genTokens = pj.prompts.length * pj.newTokens;
      const add = (
        mode: string,
        work: string,
        ours: Stats,
        theirs: Stats | null,
        amount: number,
        unit: string,
        extra: (s: number) => string,
      ) => {
        const o = amount / ours.median;
        const t = theirs ? amount / theirs.median : null;
        const name = `${MODEL}/${backend}/${mode}`;
        rows.push({ name, ours: o, peer: t, unit, speedup: t ? o / t : null });
        table.push([
          name,
          work,
          formatStats(ours, 's', 3),
          formatStats(theirs, 's', 3),
          `${o.toFixed(1)} ${unit}${extra(ours.median)}`,
          t ? `${t.toFixed(1)} ${unit}${extra(theirs!.median)}` : 'n/a',
          t ? (o / t).toFixed(3) : 'n/a',
        ]);
      };
      add(
        'rank',
        `${rj.examples} ex x ${task.labels.length} labels`,
        rankS,
        peerRank,
        rj.examples,
        'examples/s',
        (s) => ` (${((rj.examples * task.labels.length) / s).toFixed(0)} prompts·labels/s)`,
      );
      add('generate', `${pj.prompts.length} x ${pj.newTokens} tokens`, genS, peerGen, genTokens, 'tokens/s', () => '');
    } finally {
      model.dispose();
    }
  }
  notes.push(
    'speedup = ours / PyTorch throughput (>= 1: Sculpt faster); times are per full pass (median, min-max) after one warm-up pass',
  );
  printReport(
    'eval',
    markdownTable(
      ['model/backend/mode', 'work', 'ours', 'PyTorch', 'ours throughput', 'PyTorch throughput', 'ratio'],
      table,
    ),
    notes,
    rows,
    json,
  );
}
