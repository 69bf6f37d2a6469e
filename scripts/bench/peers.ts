/**
 * `npm run bench -- peers [--json] [--config file] [--seed n] [--methods a,b] [--variants file] [--validation v]
 *                          [--jobs n] [--out dir]`:
 * whether every method learns every task of a suite at its documented defaults. Runs the suite (default
 * examples/demo.sculpt.json, CL-5 on the shipped sculpt-base) once per method, one seed (default 0), each method
 * as `{ "method": name }` and nothing else, through the built CLI (`sculpt run`, `--jobs` 1 by default, so runs
 * do not share the cores); then reads each run's accuracy matrix and prints, per method and task, the accuracy
 * right after training that task (the diagonal R[j][j]) against the bar chance + 25 points (chance = 100 / the
 * task's labels), the one README's demo and docs/peers.md hold every method to. The suite's own training
 * settings apply (its `methods`, `seeds` and `orders` are replaced; order 1 only).
 *   --methods     the methods to run (default: every method Sculpt has)
 *   --variants    a JSON file holding a list of method entries to run instead (each with a distinct `label`), for
 *                 sweeps of a method's options
 *   --validation  sets the suite's `eval.validation`: the validation diagonal is then printed too, which is
 *                 where a setting is chosen; the test diagonal only checks it
 * Writes `<out>/peers.json` (default runs/bench-peers): per method the options it ran with (defaults filled in),
 * the diagonal, the bar, whether each task was learned, and the run's seconds. Exit code 1 when a run failed or
 * a method left a task below its bar. With --json, a last line {"suite": "peers", "rows": [...]}: one row per
 * method and task, `ours` the diagonal accuracy and `peer` the bar (unit %, no speedup).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { MethodConfig, MethodName } from '../../src/protocol/config';
import type { ResolvedConfig } from '../../src/protocol/config-validate';
import { loadConfig } from '../../src/cli/run';
import { loadTasks } from '../../src/engine/experiment';
import { EXPERIMENT_FILE, readExperiment } from '../../src/runs/experiment-dir';
import { foldRun, type RunSummary } from '../../src/runs/fold';
import { readRunDir, withFolderJob } from '../../src/runs/run-dir';
import { markdownTable, printReport, type BenchRow } from './report';

const root = process.env.SCULPT_REPO_ROOT ?? process.cwd();

/** Every method, in the order the docs list them. */
export const PEER_METHODS: MethodName[] = [
  'seqft',
  'adaptive-svd',
  'o-lora',
  'ewc',
  'replay',
  'lwf',
  'mtl',
  'per-task',
];

/** Points above chance a task must reach right after its training to count as learned. */
export const LEARNED_MARGIN = 25;

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

export interface PeerTask {
  name: string;
  labels: number;
  chance: number;
  bar: number;
}

export interface PeerResult {
  /** The method's label (its name unless a variant gives one). */
  method: string;
  /** The entry as run, every default filled in. */
  options: unknown;
  status: string;
  /** R[j][j] per task, in the suite's order; null where the run did not get there. */
  diagonal: (number | null)[];
  /** The same on the validation splits, when the suite holds them out. */
  validationDiagonal: (number | null)[] | null;
  learned: boolean[];
  allLearned: boolean;
  AA: number | null;
  BWT: number | null;
  seconds: number | null;
  error: string | null;
}

/** The accuracy right after training each task, and whether it clears chance + LEARNED_MARGIN. */
export function judge(summary: RunSummary, tasks: readonly PeerTask[]): Omit<PeerResult, 'options'> {
  const diagonalOf = (m: number[][] | null) =>
    m ? tasks.map((t) => summary.tasks.indexOf(t.name)).map((i) => (i >= 0 ? (m[i]?.[i] ?? null) : null)) : null;
  const diagonal = diagonalOf(summary.matrix)!;
  const learned = diagonal.map((v, j) => v != null && v >= tasks[j].bar);
  return {
    method: summary.method,
    status: summary.status,
    diagonal,
    validationDiagonal: diagonalOf(summary.validationMatrix),
    learned,
    allLearned: summary.status === 'finished' && learned.every(Boolean),
    AA: summary.metrics?.AA ?? null,
    BWT: summary.metrics?.BWT ?? null,
    seconds: summary.seconds,
    error: summary.error,
  };
}

/** `sculpt run` of the built CLI on `file`; its progress goes to this process's stderr. */
function runCli(file: string, jobs: number): Promise<number | null> {
  const child = spawn(process.execPath, [join(root, 'dist', 'cli.js'), 'run', file, '--jobs', String(jobs)], {
    stdio: ['ignore', process.stderr, process.stderr],
  });
  return new Promise((done) => child.on('close', (code) => done(code)));
}

export async function runPeersBench(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const configFile = resolve(arg(argv, 'config') ?? join(root, 'examples', 'demo.sculpt.json'));
  const seed = Number(arg(argv, 'seed') ?? 0);
  const jobs = Number(arg(argv, 'jobs') ?? 1);
  const out = resolve(arg(argv, 'out') ?? join(root, 'runs', 'bench-peers'));
  const variantsFile = arg(argv, 'variants');
  const validation = arg(argv, 'validation');
  const methods: MethodConfig[] = variantsFile
    ? (JSON.parse(readFileSync(variantsFile, 'utf8')) as MethodConfig[])
    : ((arg(argv, 'methods')?.split(',') ?? PEER_METHODS) as MethodName[]).map(
        (method) => ({ method }) as MethodConfig,
      );
  if (!Number.isInteger(seed) || !Number.isInteger(jobs) || jobs < 1 || methods.length === 0)
    throw new Error('peers: --seed and --jobs take integers (jobs >= 1), and there must be a method to run');

  mkdirSync(out, { recursive: true });
  // The suite as validation resolves it (paths absolute, so the copy runs from anywhere), cut to one cell per method.
  const suite = loadConfig(configFile, { out });
  if (!suite) throw new Error(`peers: ${configFile} does not validate (see above)`);
  const raw: Record<string, unknown> = JSON.parse(readFileSync(configFile, 'utf8'));
  const config: Record<string, unknown> = {
    ...suite,
    name: `peers-${String(raw.name ?? 'suite')}`,
    seed,
    methods,
    output: out,
    ...(validation !== undefined ? { eval: { ...suite.eval, validation: Number(validation) } } : {}),
  };
  delete config.seeds;
  delete config.orders;
  delete config.$schema;
  const file = join(out, 'peers.sculpt.json');
  writeFileSync(file, JSON.stringify(config, null, 2) + '\n');
  const resolved = loadConfig(file) as ResolvedConfig | null;
  if (!resolved) throw new Error(`peers: the suite with the methods given does not validate (see above)`);

  // Chance per task from the labels the trainer scores among (the task files' or the config's label set).
  const tasks: PeerTask[] = loadTasks(resolved, 0).map((t) => {
    const chance = 100 / t.labels.length;
    return { name: t.name, labels: t.labels.length, chance, bar: chance + LEARNED_MARGIN };
  });

  const before = new Set(readdirSync(out));
  const started = performance.now();
  const code = await runCli(file, jobs);
  const wallSeconds = (performance.now() - started) / 1000;
  const created = readdirSync(out).filter((d) => !before.has(d) && existsSync(join(out, d, EXPERIMENT_FILE)));
  if (created.length !== 1) throw new Error(`peers: sculpt run exited ${code} without one new experiment folder`);
  const experiment = join(out, created[0]);

  const results: PeerResult[] = readExperiment(experiment).cells.map((cell) => {
    const dir = join(experiment, cell.dir);
    const options = resolved.methods[cell.methodIndex];
    if (!existsSync(dir)) {
      const none = tasks.map(() => null);
      return {
        method: cell.method,
        options,
        status: 'missing',
        diagonal: none,
        validationDiagonal: null,
        learned: tasks.map(() => false),
        allLearned: false,
        AA: null,
        BWT: null,
        seconds: null,
        error: 'no run folder',
      };
    }
    const { log, config: c, job } = readRunDir(dir);
    return { ...judge(withFolderJob(foldRun(cell.dir, log.events), c, job), tasks), options };
  });

  const f = (v: number | null | undefined) => (v == null ? '–' : v.toFixed(1));
  const cell = (v: number | null, t: PeerTask) => (v == null ? '–' : `${f(v)}${v >= t.bar ? '' : ' ✗'}`);
  const heads = ['method', ...tasks.map((t) => `${t.name} (bar ${f(t.bar)})`), 'all learned', 'AA', 'BWT', 'run (s)'];
  const rows = results.map((r) => [
    r.method,
    ...r.diagonal.map((v, j) => cell(v, tasks[j])),
    r.status === 'finished' ? (r.allLearned ? 'yes' : 'no') : r.status,
    f(r.AA),
    f(r.BWT),
    r.seconds == null ? '–' : r.seconds.toFixed(0),
  ]);
  let table = markdownTable(heads, rows);
  if (results.some((r) => r.validationDiagonal)) {
    table +=
      '\n\nOn the validation splits (where settings are chosen):\n\n' +
      markdownTable(
        ['method', ...tasks.map((t) => `${t.name} (bar ${f(t.bar)})`)],
        results.map((r) => [
          r.method,
          ...(r.validationDiagonal ?? tasks.map(() => null)).map((v, j) => cell(v, tasks[j])),
        ]),
      );
  }
  const failing = results.filter((r) => !r.allLearned).map((r) => r.method);
  const notes = [
    `accuracy right after training each task (R[j][j], test sets), seed ${seed}, order 1 of ${configFile}; bar = chance (100 / labels) + ${LEARNED_MARGIN}; ✗ below it`,
    failing.length ? `below the bar or not finished: ${failing.join(', ')}` : 'every method learned every task',
    `wall time ${wallSeconds.toFixed(0)} s for ${results.length} runs, ${jobs} at a time; runs in ${experiment}`,
  ];
  const summary = {
    suite: 'peers',
    config: configFile,
    model: resolved.model,
    seed,
    margin: LEARNED_MARGIN,
    time: new Date().toISOString(),
    wallSeconds,
    experiment,
    tasks,
    methods: results,
  };
  const jsonFile = join(out, 'peers.json');
  writeFileSync(jsonFile, JSON.stringify(summary, null, 2) + '\n');
  notes.push(`figures in ${jsonFile}`);
  const benchRows: BenchRow[] = results.flatMap((r) =>
    tasks.map((t, j) => ({
      name: `${r.method} ${t.name}`,
      ours: r.diagonal[j] ?? NaN,
      peer: t.bar,
      unit: '%',
      speedup: null,
    })),
  );
  printReport('peers', table, notes, benchRows, json);
  return code === 0 && failing.length === 0 ? 0 : 1;
}
