/**
 * `npm run bench -- peers [--json] [--config file] [--seed n | --seeds a,b,..] [--methods a,b] [--variants file]
 *                          [--validation v] [--jobs n] [--out dir] [--from dir,dir]`:
 * whether every method learns every task of a suite at its documented defaults. Runs the suite (default
 * examples/demo.sculpt.json, CL-5 on the shipped sculpt-base) once per method and seed (default seed 0), each
 * method as `{ "method": name }` and nothing else, through the built CLI (`sculpt run`, `--jobs` 1 by default, so
 * runs do not share the cores); then reads each run's accuracy matrix and prints, per method and task, the accuracy
 * right after training that task (the diagonal R[j][j]) against the bar chance + 25 points (chance = 100 / the
 * task's labels), the one README's demo and docs/peers.md hold every method to. The suite's own training
 * settings apply (its `methods`, `seeds` and `orders` are replaced; order 1 only).
 *   --seeds       several seeds in one experiment; with more than one seed a second table gives, per method and
 *                 task, the mean over the seeds with its 95% t interval, and the method is judged on the mean: a
 *                 test set of 100 examples alone moves one run's accuracy by about 4 points (binomial sd at 78%),
 *                 so a single run below the bar says less than the mean does
 *   --from        read these experiment folders (earlier `peers` runs, e.g. one per seed) instead of running
 *   --methods     the methods to run (default: every method Sculpt has)
 *   --variants    a JSON file holding a list of method entries to run instead (each with a distinct `label`), for
 *                 sweeps of a method's options
 *   --validation  sets the suite's `eval.validation`: the validation diagonal is then printed too, which is
 *                 where a setting is chosen; the test diagonal only checks it
 * Writes `<out>/peers.json` (default runs/bench-peers): per run the method, seed, options (defaults filled in),
 * the diagonal, the bar, whether each task was learned, and the run's seconds; with several seeds the per-method
 * summary too. Exit code 1 when a run failed or a method left a task below its bar (with several seeds: its mean
 * below the bar). With --json, a last line {"suite": "peers", "rows": [...]}: one row per method and task, `ours`
 * the diagonal accuracy (the mean over seeds when there are several) and `peer` the bar (unit %, no speedup).
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
import { estimate } from '../../src/runs/stats';
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
  seed: number;
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
export function judge(summary: RunSummary, tasks: readonly PeerTask[], seed: number): Omit<PeerResult, 'options'> {
  const diagonalOf = (m: number[][] | null) =>
    m ? tasks.map((t) => summary.tasks.indexOf(t.name)).map((i) => (i >= 0 ? (m[i]?.[i] ?? null) : null)) : null;
  const diagonal = diagonalOf(summary.matrix)!;
  const learned = diagonal.map((v, j) => v != null && v >= tasks[j].bar);
  return {
    method: summary.method,
    seed: summary.seed ?? seed,
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

/** One method over the seeds it ran with: per task the diagonal's values, their mean and 95% t interval. */
export interface PeerSummary {
  method: string;
  seeds: number[];
  tasks: {
    values: number[];
    mean: number | null;
    ci95: [number, number] | null;
    /** Runs whose diagonal is below the bar (or missing). */
    runsBelow: number;
    /** The mean clears the bar and every run got there. */
    learned: boolean;
  }[];
  allLearned: boolean;
  AA: { mean: number | null; ci95: [number, number] | null };
  BWT: { mean: number | null; ci95: [number, number] | null };
}

/**
 * Each method's runs taken together (methods in the order they first appear). A method learns a task when the
 * mean of its accuracies right after training that task clears the bar and no run stopped short of the task;
 * a method with a run that did not finish learns nothing here.
 */
export function summarizeSeeds(results: readonly PeerResult[], tasks: readonly PeerTask[]): PeerSummary[] {
  const methods = [...new Set(results.map((r) => r.method))];
  return methods.map((method) => {
    const runs = results.filter((r) => r.method === method);
    const finished = runs.every((r) => r.status === 'finished');
    const perTask = tasks.map((t, j) => {
      const values = runs.map((r) => r.diagonal[j]).filter((v): v is number => v != null);
      const e = estimate(values);
      const complete = values.length === runs.length;
      return {
        values,
        mean: e.mean,
        ci95: e.ci95,
        runsBelow: runs.length - values.filter((v) => v >= t.bar).length,
        learned: complete && e.mean != null && e.mean >= t.bar,
      };
    });
    const metric = (pick: (r: PeerResult) => number | null) => {
      const e = estimate(runs.map(pick).filter((v): v is number => v != null));
      return { mean: e.mean, ci95: e.ci95 };
    };
    return {
      method,
      seeds: runs.map((r) => r.seed),
      tasks: perTask,
      allLearned: finished && perTask.every((t) => t.learned),
      AA: metric((r) => r.AA),
      BWT: metric((r) => r.BWT),
    };
  });
}

/** `sculpt run` of the built CLI on `file`; its progress goes to this process's stderr. */
function runCli(file: string, jobs: number): Promise<number | null> {
  const child = spawn(process.execPath, [join(root, 'dist', 'cli.js'), 'run', file, '--jobs', String(jobs)], {
    stdio: ['ignore', process.stderr, process.stderr],
  });
  return new Promise((done) => child.on('close', (code) => done(code)));
}

/** Chance and bar per task from the labels the trainer scores among (the task files' or the config's label set). */
function peerTasks(resolved: ResolvedConfig): PeerTask[] {
  return loadTasks(resolved, 0).map((t) => {
    const chance = 100 / t.labels.length;
    return { name: t.name, labels: t.labels.length, chance, bar: chance + LEARNED_MARGIN };
  });
}

/** Every cell of an experiment folder, judged against the bars. */
function readPeers(experiment: string, tasks: readonly PeerTask[]): PeerResult[] {
  return readExperiment(experiment).cells.map((cell) => {
    const dir = join(experiment, cell.dir);
    if (!existsSync(dir)) {
      const none = tasks.map(() => null);
      return {
        method: cell.method,
        seed: cell.seed,
        options: null,
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
    return {
      ...judge(withFolderJob(foldRun(cell.dir, log.events), c, job), tasks, cell.seed),
      options: c?.methods?.[cell.methodIndex] ?? null,
    };
  });
}

function parseSeeds(argv: string[]): number[] {
  const list = arg(argv, 'seeds');
  const seeds = list !== undefined ? list.split(',').map((x) => Number(x.trim())) : [Number(arg(argv, 'seed') ?? 0)];
  if (!seeds.length || !seeds.every(Number.isInteger) || new Set(seeds).size !== seeds.length)
    throw new Error(`peers: --seed takes an integer and --seeds distinct integers (e.g. 0,1,2), got ${list}`);
  return seeds;
}

/** Runs the suite (or reads `--from`), prints the tables; resolves to the exit code. */
export async function runPeersBench(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const from = arg(argv, 'from');
  const { experiments, tasks, configFile, model, wallSeconds, jobs, code } = from
    ? readFrom(from)
    : await runSuite(argv);

  const results = experiments.flatMap((e) => readPeers(e, tasks));
  const seeds = [...new Set(results.map((r) => r.seed))].sort((a, b) => a - b);
  const several = seeds.length > 1;

  const f = (v: number | null | undefined) => (v == null ? '–' : v.toFixed(1));
  const cell = (v: number | null, t: PeerTask) => (v == null ? '–' : `${f(v)}${v >= t.bar ? '' : ' ✗'}`);
  const taskHeads = tasks.map((t) => `${t.name} (bar ${f(t.bar)})`);
  const heads = ['method', ...(several ? ['seed'] : []), ...taskHeads, 'all learned', 'AA', 'BWT', 'run (s)'];
  const rows = results.map((r) => [
    r.method,
    ...(several ? [String(r.seed)] : []),
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
        ['method', ...(several ? ['seed'] : []), ...taskHeads],
        results.map((r) => [
          r.method,
          ...(several ? [String(r.seed)] : []),
          ...(r.validationDiagonal ?? tasks.map(() => null)).map((v, j) => cell(v, tasks[j])),
        ]),
      );
  }
  const summaries = several ? summarizeSeeds(results, tasks) : null;
  if (summaries) {
    const ci = (e: { mean: number | null; ci95: [number, number] | null }) =>
      e.mean == null ? '–' : `${f(e.mean)}${e.ci95 ? ` [${f(e.ci95[0])}, ${f(e.ci95[1])}]` : ''}`;
    table +=
      `\n\nOver seeds ${seeds.join(', ')}: mean [95% t interval]; ✗ where the mean is below the bar; (k below) counts the runs that were:\n\n` +
      markdownTable(
        ['method', ...taskHeads, 'all learned', 'AA', 'BWT'],
        summaries.map((m) => [
          m.method,
          ...m.tasks.map((t) => `${ci(t)}${t.learned ? '' : ' ✗'}${t.runsBelow ? ` (${t.runsBelow} below)` : ''}`),
          m.allLearned ? 'yes' : 'no',
          ci(m.AA),
          ci(m.BWT),
        ]),
      );
  }
  const failing = summaries
    ? summaries.filter((m) => !m.allLearned).map((m) => m.method)
    : results.filter((r) => !r.allLearned).map((r) => r.method);
  const notes = [
    `accuracy right after training each task (R[j][j], test sets), seed${several ? 's' : ''} ${seeds.join(', ')}, order 1 of ${configFile}; bar = chance (100 / labels) + ${LEARNED_MARGIN}; ✗ below it${several ? '; a method is judged on its mean over the seeds' : ''}`,
    failing.length ? `below the bar or not finished: ${failing.join(', ')}` : 'every method learned every task',
    wallSeconds == null
      ? `read from ${experiments.join(', ')}`
      : `wall time ${wallSeconds.toFixed(0)} s for ${results.length} runs, ${jobs} at a time; runs in ${experiments[0]}`,
  ];
  const summary = {
    suite: 'peers',
    config: configFile,
    model,
    seeds,
    margin: LEARNED_MARGIN,
    time: new Date().toISOString(),
    wallSeconds,
    experiments,
    tasks,
    runs: results,
    methods: summaries,
  };
  const out = resolve(arg(argv, 'out') ?? (from ? experiments[0] : join(root, 'runs', 'bench-peers')));
  mkdirSync(out, { recursive: true });
  const jsonFile = join(out, 'peers.json');
  writeFileSync(jsonFile, JSON.stringify(summary, null, 2) + '\n');
  notes.push(`figures in ${jsonFile}`);
  const benchRows: BenchRow[] = (summaries ?? results).flatMap((r) =>
    tasks.map((t, j) => ({
      name: `${r.method} ${t.name}`,
      ours: ('seed' in r ? r.diagonal[j] : r.tasks[j].mean) ?? NaN,
      peer: t.bar,
      unit: '%',
      speedup: null,
    })),
  );
  printReport('peers', table, notes, benchRows, json);
  return (code ?? 0) === 0 && failing.length === 0 ? 0 : 1;
}

interface PeerSource {
  experiments: string[];
  tasks: PeerTask[];
  configFile: string;
  model: string;
  wallSeconds: number | null;
  jobs: number | null;
  code: number | null;
}

/** `--from`: experiment folders already run; the bars come from the first one's first run's config. */
function readFrom(list: string): PeerSource {
  const experiments = list.split(',').map((d) => resolve(d.trim()));
  const first = readExperiment(experiments[0]);
  const { config } = readRunDir(join(experiments[0], first.cells[0].dir));
  if (!config) throw new Error(`peers: ${experiments[0]}/${first.cells[0].dir} holds no config.json`);
  return {
    experiments,
    tasks: peerTasks(config),
    configFile: first.configFile ?? experiments[0],
    model: config.model,
    wallSeconds: null,
    jobs: null,
    code: null,
  };
}

/** The suite cut to the methods and seeds asked for, run through the CLI into one new experiment folder. */
async function runSuite(argv: string[]): Promise<PeerSource> {
  const configFile = resolve(arg(argv, 'config') ?? join(root, 'examples', 'demo.sculpt.json'));
  const seeds = parseSeeds(argv);
  const jobs = Number(arg(argv, 'jobs') ?? 1);
  const out = resolve(arg(argv, 'out') ?? join(root, 'runs', 'bench-peers'));
  const variantsFile = arg(argv, 'variants');
  const validation = arg(argv, 'validation');
  const methods: MethodConfig[] = variantsFile
    ? (JSON.parse(readFileSync(variantsFile, 'utf8')) as MethodConfig[])
    : ((arg(argv, 'methods')?.split(',') ?? PEER_METHODS) as MethodName[]).map(
        (method) => ({ method }) as MethodConfig,
      );
  if (!Number.isInteger(jobs) || jobs < 1 || methods.length === 0)
    throw new Error('peers: --jobs takes an integer >= 1, and there must be a method to run');

  mkdirSync(out, { recursive: true });
  // The suite as validation resolves it (paths absolute, so the copy runs from anywhere), cut to one cell per
  // method and seed.
  const suite = loadConfig(configFile, { out });
  if (!suite) throw new Error(`peers: ${configFile} does not validate (see above)`);
  const raw: Record<string, unknown> = JSON.parse(readFileSync(configFile, 'utf8'));
  const config: Record<string, unknown> = {
    ...suite,
    name: `peers-${String(raw.name ?? 'suite')}`,
    seed: seeds[0],
    methods,
    output: out,
    ...(validation !== undefined ? { eval: { ...suite.eval, validation: Number(validation) } } : {}),
  };
  if (seeds.length > 1) config.seeds = seeds;
  else delete config.seeds;
  delete config.orders;
  delete config.$schema;
  const file = join(out, 'peers.sculpt.json');
  writeFileSync(file, JSON.stringify(config, null, 2) + '\n');
  const resolved = loadConfig(file) as ResolvedConfig | null;
  if (!resolved) throw new Error(`peers: the suite with the methods given does not validate (see above)`);

  const before = new Set(readdirSync(out));
  const started = performance.now();
  const code = await runCli(file, jobs);
  const wallSeconds = (performance.now() - started) / 1000;
  const created = readdirSync(out).filter((d) => !before.has(d) && existsSync(join(out, d, EXPERIMENT_FILE)));
  if (created.length !== 1) throw new Error(`peers: sculpt run exited ${code} without one new experiment folder`);
  return {
    experiments: [join(out, created[0])],
    tasks: peerTasks(resolved),
    configFile,
    model: resolved.model,
    wallSeconds,
    jobs,
    code,
  };
}
