/**
 * `npm run bench -- memory [--json] [--train-limit N] [--skip-gpt2]`: memory of training.
 *   peak-rss  peak resident set of the trainer process (`node dist/trainer.js <runDir>`, the process the CLI
 *             forks) for a short real run of sculpt-base on wasm: two CL-5 tasks, a few steps each, 1 epoch,
 *             rank evaluation after each task, with seqft and with adaptive-svd (default settings); run folders
 *             prepared as `sculpt run` prepares them. Measured by GNU time (-v) when /usr/bin/time exists, else by
 *             polling /proc/<pid>/status VmHWM. Peer: the PyTorch twin (scripts/bench/torch_twin.py, fp32,
 *             2 threads) doing the same number of training steps of the same model shape and batch (random
 *             tokens, no evaluation), its peak RSS measured the same way. Unit MB (10^6 bytes); speedup = peer / ours
 *             (>= 1: Sculpt uses less).
 *   bases     extra memory adaptive-svd keeps per target matrix after its task-boundary preparation
 *             (beforeTask): bytes of every tensor in method.state() (dense: U_h, V_h; factored: the fixed top-k
 *             product, U_low, S_low, V_low and U_h, V_h) over the bytes of the target matrices themselves.
 *             sculpt-base with the default rank policy (adaptive, calibrated on a CL-5 task), and a GPT-2-small-
 *             shaped random model with fixed ratio 0.5. Unit ratio, no peer.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../src/engine/tf';
import { selectBackend } from '../../src/engine/backend';
import { loadPretrained } from '../../src/engine/io/checkpoint';
import { loadTokenizer } from '../../src/engine/io/tokenizer';
import { randomModel } from '../../src/engine/models/registry';
import type { CausalLM } from '../../src/engine/models/types';
import { loadTasks } from '../../src/engine/experiment';
import { createRunDir, EVENTS_FILE } from '../../src/runs/run-dir';
import { RunContext } from '../../src/engine/method-context';
import { AdaptiveSvd } from '../../src/engine/methods/adaptive-svd';
import type { AdaptiveSvdConfig } from '../../src/protocol/config';
import { resolveMethod, type ResolvedConfig } from '../../src/protocol/config-validate';
import { loadConfig } from '../../src/cli/run';
import { MODELS } from './train';
import { markdownTable, printReport, type BenchRow } from './report';

const root = process.env.SCULPT_REPO_ROOT ?? process.cwd();
const GNU_TIME = '/usr/bin/time';
const MB = 1e6;

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

const BATCH = 16;
const MAX_SEQ_LEN = 96;

function memoryConfig(dir: string, trainLimit: number): ResolvedConfig {
  const file = join(dir, 'memory.sculpt.json');
  const raw = {
    name: 'bench-memory',
    seed: 0,
    model: 'builtin:sculpt-base',
    backend: 'wasm',
    tasks: [
      { name: 'sentiment', source: { builtin: 'cl5/sentiment' }, trainLimit, testLimit: 32 },
      { name: 'spam', source: { builtin: 'cl5/spam' }, trainLimit, testLimit: 32 },
    ],
    methods: [{ method: 'seqft' }, { method: 'adaptive-svd' }],
    training: { epochs: 1, batchSize: BATCH, maxSeqLen: MAX_SEQ_LEN },
    eval: { modes: ['rank'], zeroShot: false },
    output: join(dir, 'runs'),
  };
  writeFileSync(file, JSON.stringify(raw));
  const config = loadConfig(file);
  if (!config) throw new Error('the memory bench config did not validate (see above)');
  return config;
}

interface PeakRss {
  bytes: number | null;
  seconds: number;
  code: number | null;
  stderr: string;
}

/** Runs a command to completion and returns its peak RSS (GNU time -v, else polling VmHWM). */
function peakRss(cmd: string, args: string[]): Promise<PeakRss> {
  const gnu = existsSync(GNU_TIME);
  const t0 = performance.now();
  const child = gnu
    ? spawn(GNU_TIME, ['-v', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-100_000)));
  let polled: number | null = null;
  const poll = gnu
    ? null
    : setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
          if (m) polled = Math.max(polled ?? 0, Number(m[1]) * 1024);
        } catch {
          /* exited */
        }
      }, 20);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      if (poll) clearInterval(poll);
      const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      resolve({
        bytes: gnu ? (m ? Number(m[1]) * 1024 : null) : polled,
        seconds: (performance.now() - t0) / 1000,
        code,
        stderr: stderr + stdout,
      });
    });
  });
}

function countSteps(runDir: string): { finished: boolean; steps: number } {
  const p = join(runDir, EVENTS_FILE);
  if (!existsSync(p)) return { finished: false, steps: 0 };
  let finished = false;
  let steps = 0;
  for (const line of readFileSync(p, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as { type: string; steps?: number };
    if (e.type === 'run-finished') finished = true;
    if (e.type === 'task-started' && typeof e.steps === 'number') steps += e.steps;
  }
  return { finished, steps };
}

/** Bytes of the method's state against the bytes of its target matrices. */
async function basesRatio(
  model: CausalLM,
  ctx: RunContext,
  cfg: AdaptiveSvdConfig,
): Promise<{ ratio: number; stateBytes: number; targetBytes: number; tfDelta: number; ks: number[]; seconds: number }> {
  const method = new AdaptiveSvd(resolveMethod(cfg), 'bench');
  try {
    method.setup(ctx);
    const before = tf.memory().numBytes;
    const t0 = performance.now();
    await method.beforeTask(ctx);
    const seconds = (performance.now() - t0) / 1000;
    const tfDelta = tf.memory().numBytes - before;
    const st = method.state();
    const json = st.json as { ks: number[]; constrained: string[] };
    let stateBytes = 0;
    for (const t of st.tensors.values()) stateBytes += t.size * 4;
    let targetBytes = 0;
    for (const name of json.constrained) targetBytes += model.params.get(name)!.size * 4;
    if (targetBytes === 0) throw new Error('adaptive-svd constrained no matrix');
    return { ratio: stateBytes / targetBytes, stateBytes, targetBytes, tfDelta, ks: json.ks, seconds };
  } finally {
    method.dispose();
  }
}

export async function runMemoryBench(argv: string[]): Promise<void> {
  const json = argv.includes('--json');
  const trainLimit = Number(arg(argv, 'train-limit') ?? 64);
  const skipGpt2 = argv.includes('--skip-gpt2');
  const rows: BenchRow[] = [];
  const table: string[][] = [];
  const notes: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'sculpt-bench-memory-'));
  try {
    const config = memoryConfig(dir, trainLimit);
    const trainer = join(root, 'dist/trainer.js');
    const node = process.execPath;
    const python = process.env.SCULPT_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
    const modelCfg = join(root, 'assets/models/sculpt-base/config.json');
    notes.push(
      `peak-rss: ${existsSync(GNU_TIME) ? 'GNU time -v (Maximum resident set size)' : 'polled /proc/<pid>/status VmHWM every 20 ms'}; trainer: sculpt-base on wasm, ` +
        `2 CL-5 tasks (sentiment, spam) x ${trainLimit} train / 32 test examples, batch ${BATCH}, maxSeqLen ${MAX_SEQ_LEN}, 1 epoch, rank eval after each task, default checkpoints`,
    );
    // (a) peak RSS of the trainer per method, and of the PyTorch twin for the same steps.
    for (let m = 0; m < config.methods.length; m++) {
      const method = config.methods[m].method;
      const runDir = createRunDir(config, { methodIndex: m, order: 0 });
      const ours = await peakRss(node, [trainer, runDir]);
      const run = countSteps(runDir);
      if (ours.code !== 0 || !run.finished || ours.bytes === null) {
        notes.push(
          `${method}: the trainer did not finish (exit ${ours.code}): ${ours.stderr.trim().split('\n').slice(-3).join(' / ')}`,
        );
        continue;
      }
      const twinArgs = [
        join(root, 'scripts/bench/torch_twin.py'),
        '--config',
        modelCfg,
        '--batch',
        String(BATCH),
        '--seq',
        String(MAX_SEQ_LEN),
        '--steps',
        String(run.steps),
        '--threads',
        '2',
      ];
      if (method === 'adaptive-svd') twinArgs.push('--svd', '0.5');
      const peer = await peakRss(python, twinArgs);
      const peerBytes = peer.code === 0 ? peer.bytes : null;
      if (peer.code !== 0) notes.push(`PyTorch twin (${method}) did not run: ${peer.stderr.trim().split('\n').pop()}`);
      const name = `sculpt-base/wasm/${method}/peak-rss`;
      const o = ours.bytes / MB;
      const p = peerBytes !== null ? peerBytes / MB : null;
      rows.push({ name, ours: o, peer: p, unit: 'MB', speedup: p !== null ? p / o : null });
      table.push([
        name,
        `${run.steps} steps`,
        `${o.toFixed(1)} MB (${ours.seconds.toFixed(1)} s)`,
        p !== null ? `${p.toFixed(1)} MB (${peer.seconds.toFixed(1)} s)` : 'n/a',
        p !== null ? (p / o).toFixed(3) : 'n/a',
      ]);
    }
    notes.push(
      'peak-rss peer: torch_twin.py, the same model shape (random weights), batch and number of AdamW steps on random tokens at full maxSeqLen, no evaluation or checkpoints; ' +
        'its adaptive-svd is the dense projection with k = 0.5 min_dim (the trainer uses the default rank policy, the same fixed half); the Python process includes the torch runtime',
    );

    // (b) adaptive-svd's bases against the target matrices.
    await selectBackend('wasm');
    const ratioRow = (model: string, variant: string, r: Awaited<ReturnType<typeof basesRatio>>) => {
      const name = `${model}/${variant}/bases`;
      rows.push({ name, ours: r.ratio, peer: null, unit: 'ratio', speedup: null });
      const kInfo = `k ${Math.min(...r.ks)}-${Math.max(...r.ks)}`;
      table.push([
        name,
        `${r.ks.length} targets, ${kInfo}`,
        `${r.ratio.toFixed(3)}x (${(r.stateBytes / MB).toFixed(1)} MB / ${(r.targetBytes / MB).toFixed(1)} MB)`,
        'n/a',
        'n/a',
      ]);
      notes.push(
        `${name}: beforeTask ${r.seconds.toFixed(1)} s; tf.memory() grew ${(r.tfDelta / MB).toFixed(1)} MB over it`,
      );
    };
    {
      const modelDir = join(root, 'assets/models/sculpt-base');
      const model = loadPretrained(modelDir);
      try {
        const ctx = new RunContext(model, loadTokenizer(modelDir), loadTasks(config, 0), config, { emit: () => {} });
        ctx.task = 1; // the boundary before the second task: calibrated on the first task's data
        const base: AdaptiveSvdConfig = { method: 'adaptive-svd' };
        ratioRow('sculpt-base', 'adaptive-svd', await basesRatio(model, ctx, base));
        ratioRow(
          'sculpt-base',
          'adaptive-svd-factored',
          await basesRatio(model, ctx, { ...base, parametrisation: 'factored' }),
        );
      } finally {
        model.dispose();
      }
    }
    if (!skipGpt2) {
      const spec = MODELS.find((s) => s.name === 'gpt2-small-shape')!;
      const model = randomModel(spec.config(), { seed: 0 });
      try {
        const ctx = new RunContext(
          model,
          { encode: () => [], decode: () => '', bosId: null, eosId: null, padId: 0 },
          [{ index: 0, configIndex: 0, name: 'bench', train: [], test: [], validation: [], labels: [], template: '' }],
          { seed: 0, training: { evalBatchSize: 8, maxSeqLen: 64 } as never },
          { emit: () => {} },
        );
        const fixed: AdaptiveSvdConfig = {
          method: 'adaptive-svd',
          protectPretrained: true,
          rank: { policy: 'fixed', ratio: 0.5 },
        };
        ratioRow('gpt2-small-shape', 'adaptive-svd', await basesRatio(model, ctx, fixed));
        ratioRow(
          'gpt2-small-shape',
          'adaptive-svd-factored',
          await basesRatio(model, ctx, { ...fixed, parametrisation: 'factored' }),
        );
      } finally {
        model.dispose();
      }
    }
    notes.push(
      'bases: ratio = bytes of every tensor in method.state() after beforeTask / bytes of the constrained target matrices (fp32); dense keeps U_h [d_out, k] and V_h [d_in, k]; ' +
        'factored keeps the top-k product [d_out, d_in], U_low, S_low, V_low and U_h, V_h (the target variable itself stays too, not counted); issue target <= 1.0x',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  printReport('memory', markdownTable(['name', 'work', 'ours', 'PyTorch twin', 'peer/ours'], table), notes, rows, json);
}
