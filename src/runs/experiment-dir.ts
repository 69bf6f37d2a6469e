/**
 * Experiment folders: one launch of a config is the grid methods × orders × seeds, kept together as
 *   <output>/<experiment>-<time>/
 *     experiment.json           the grid: which cell is which method, order and seed, and the config it came from
 *     <method>-o<order>-s<seed>/ one run folder per cell (./run-dir.ts), order 1-based as in reports
 * so that the grid can be read from the folder names alone, reported on, and resumed as a whole. Each cell's
 * config.json is the experiment's resolved config with that cell's `seed` (and no `seeds`): a cell is an ordinary
 * run, and the trainer knows nothing of grids.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { ResolvedConfig } from '../protocol/config-validate';
import { methodLabel } from '../protocol/config-validate';
import { RunFolderError, describeFsError, outputDirProblem, writeFileAtomic } from './output-dir';
import { createRunFolder, removeEmptyUpTo, safeName, stamp } from './run-dir';

export const EXPERIMENT_FILE = 'experiment.json';

/** One cell of the grid. */
export interface GridCell {
  /** The run folder's name inside the experiment folder. */
  dir: string;
  methodIndex: number;
  /** The method's label (as in reports). */
  method: string;
  /** 0-based index into [config.tasks, ...config.orders]. */
  order: number;
  seed: number;
}

/** experiment.json. */
export interface ExperimentRecord {
  kind: 'sculpt-experiment';
  version: 1;
  name: string;
  /** The config file the experiment was launched from, when known. */
  configFile: string | null;
  /** ISO time of the launch. */
  created: string;
  methods: string[];
  /** Task names of each order (the config's `tasks` first). */
  orders: string[][];
  seeds: number[];
  /** `compare.baseline` of the config, when set. */
  baseline: string | null;
  /** In the order they are run. */
  cells: GridCell[];
}

/** The seeds of a config's grid: `seeds` (a list, or a count n meaning 0..n-1), else the one `seed`. */
export function gridSeeds(config: Pick<ResolvedConfig, 'seed' | 'seeds'>): number[] {
  const s = config.seeds;
  if (Array.isArray(s)) return [...s];
  if (typeof s === 'number') return Array.from({ length: s }, (_, i) => i);
  return [config.seed];
}

/** Task names of every order of a config, the config's `tasks` first. */
export function gridOrders(config: Pick<ResolvedConfig, 'tasks' | 'orders'>): string[][] {
  return [config.tasks.map((t) => t.name), ...(config.orders ?? [])];
}

/** A cell's folder name: `<method>-o<order, 1-based>-s<seed>`. */
export const cellName = (method: string, order: number, seed: number): string =>
  safeName(`${method}-o${order + 1}-s${seed}`);

/**
 * The cells of a config's grid in the order they run: seed by seed, order by order, every method of one
 * (order, seed) together, so that an interrupted grid leaves complete pairs for the paired comparison.
 */
export function gridCells(config: ResolvedConfig): GridCell[] {
  const cells: GridCell[] = [];
  const labels = config.methods.map(methodLabel);
  const orders = gridOrders(config).length;
  for (const seed of gridSeeds(config)) {
    for (let order = 0; order < orders; order++) {
      labels.forEach((method, methodIndex) =>
        cells.push({ dir: cellName(method, order, seed), methodIndex, method, order, seed }),
      );
    }
  }
  return cells;
}

/** The config a cell runs: the experiment's, with the cell's seed and no grid of seeds. */
export function cellConfig(config: ResolvedConfig, cell: GridCell): ResolvedConfig {
  const c: ResolvedConfig = { ...config, seed: cell.seed };
  delete c.seeds;
  return c;
}

/**
 * Creates the experiment folder and every cell's run folder; returns the folder and the cells' paths in run
 * order. All or nothing: when any folder cannot be made, what this call made is removed and the error names
 * the path and what to do.
 */
export function createExperiment(
  config: ResolvedConfig,
  opts: { configFile?: string; now?: Date } = {},
): { dir: string; cells: string[] } {
  const now = opts.now ?? new Date();
  const problem = outputDirProblem(config.output);
  if (problem) throw new RunFolderError(problem, config.output);
  const base = safeName(`${config.name}-${stamp(now)}`);
  let dir = join(config.output, base);
  let createdOutput: string | undefined;
  let createdDir = false;
  try {
    createdOutput = mkdirSync(config.output, { recursive: true });
    for (let i = 2; existsSync(dir); i++) dir = join(config.output, `${base}-${i}`);
    mkdirSync(dir);
    createdDir = true;
    const cells = gridCells(config);
    const paths = cells.map((cell) => {
      const path = createRunFolder(dir, cell.dir, cellConfig(config, cell), {
        methodIndex: cell.methodIndex,
        order: cell.order,
        seed: cell.seed,
      });
      // Two labels that differ only in characters a folder name cannot hold get a -2 suffix: record it.
      cell.dir = basename(path);
      return path;
    });
    const record: ExperimentRecord = {
      kind: 'sculpt-experiment',
      version: 1,
      name: config.name,
      configFile: opts.configFile ? resolve(opts.configFile) : null,
      created: now.toISOString(),
      methods: config.methods.map(methodLabel),
      orders: gridOrders(config),
      seeds: gridSeeds(config),
      baseline: config.compare?.baseline ?? null,
      cells,
    };
    writeFileAtomic(join(dir, EXPERIMENT_FILE), JSON.stringify(record, null, 2) + '\n');
    return { dir, cells: paths };
  } catch (e) {
    if (createdDir) rmSync(dir, { recursive: true, force: true });
    if (createdOutput) removeEmptyUpTo(config.output, createdOutput);
    throw e instanceof RunFolderError ? e : describeFsError(e, dir);
  }
}

export class ExperimentDirError extends Error {
  override readonly name = 'ExperimentDirError';
  constructor(dir: string, reason: string) {
    super(`${dir} is not a usable experiment folder: ${reason}`);
  }
}

/** Whether `dir` is an experiment folder (holds experiment.json). */
export function isExperimentFolder(dir: string): boolean {
  return existsSync(join(dir, EXPERIMENT_FILE));
}

/** Reads experiment.json; throws an ExperimentDirError naming the file and the problem. */
export function readExperiment(dir: string): ExperimentRecord {
  const file = join(dir, EXPERIMENT_FILE);
  let v: Partial<ExperimentRecord>;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ExperimentDirError(dir, `${EXPERIMENT_FILE} cannot be read (${(e as Error).message})`);
  }
  if (v?.kind !== 'sculpt-experiment' || !Array.isArray(v.cells))
    throw new ExperimentDirError(dir, `${EXPERIMENT_FILE} is not an experiment record (no kind or cells)`);
  for (const [i, c] of v.cells.entries()) {
    const ok =
      c &&
      typeof c.dir === 'string' &&
      c.dir === basename(c.dir) &&
      c.dir !== '..' &&
      Number.isInteger(c.methodIndex) &&
      Number.isInteger(c.order) &&
      Number.isInteger(c.seed);
    if (!ok) throw new ExperimentDirError(dir, `cells[${i}] of ${EXPERIMENT_FILE} is not a cell of this folder`);
  }
  return v as ExperimentRecord;
}

/**
 * The run folders of an experiment folder that exist, in run order; `onMissing` hears of each cell
 * experiment.json names whose folder is gone (deleted or moved), so that a caller can say it is left out.
 */
export function experimentCells(dir: string, onMissing?: (cell: string) => void): string[] {
  return readExperiment(dir)
    .cells.map((c) => join(dir, c.dir))
    .filter((d) => {
      const there = existsSync(d);
      if (!there) onMissing?.(d);
      return there;
    });
}

/** The experiment folder a run folder belongs to, or undefined for a run folder of its own. */
export function experimentOf(runDir: string): string | undefined {
  const parent = dirname(resolve(runDir));
  return isExperimentFolder(parent) ? parent : undefined;
}

/**
 * Run folders from paths that are run folders or experiment folders (expanded to their cells, in run order),
 * each once, in the order given.
 */
export function expandRunFolders(paths: string[], onMissing?: (cell: string) => void): string[] {
  const out = new Set<string>();
  for (const p of paths.map((x) => resolve(x))) {
    if (isDirectory(p) && isExperimentFolder(p)) for (const d of experimentCells(p, onMissing)) out.add(d);
    else out.add(p);
  }
  return [...out];
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
