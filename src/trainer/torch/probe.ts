/**
 * What the torch engine's Python can do, found before any work starts: the interpreter a config names (or the
 * project's .venv, or python3), run once with a short script that reports the torch, transformers and
 * safetensors it imports, CUDA and its devices, torch.distributed's process-group backends and FSDP2's
 * fully_shard. `sculpt validate` prints it; the bridge that launches the worker calls it first, so that a missing
 * Python, torch or GPU is an input error naming the config field and the command that fixes it, not a
 * traceback in trainer.log.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { ResolvedConfig, ResolvedTorch } from '../../protocol/config-resolved';
import type { ConfigIssue } from '../../protocol/config-validate';
import { ConfigError } from '../../protocol/errors';

/** What one interpreter has, whatever the config asks of it. */
export interface TorchEnvironment {
  /** The interpreter that was run, as given to spawn. */
  python: string;
  /** sys.executable: the interpreter's own path. */
  executable: string;
  pythonVersion: string;
  torch: string;
  transformers: string;
  safetensors: string;
  cuda: {
    available: boolean;
    /** The CUDA version torch was built with; null for a CPU-only build. */
    version: string | null;
    /** GPUs torch sees (after CUDA_VISIBLE_DEVICES). */
    devices: number;
    names: string[];
  };
  /** torch.distributed is built in (it is not on some platforms' wheels). */
  distributed: boolean;
  gloo: boolean;
  nccl: boolean;
  /** torch.distributed.fsdp.fully_shard (FSDP2) exists. */
  fullyShard: boolean;
}

/** The environment and what a config will get from it. */
export interface TorchProbe extends TorchEnvironment {
  /** `torch.device` with `auto` decided. */
  device: 'cuda' | 'cpu';
  /** Processes in all: nprocPerNode × nnodes. */
  world: number;
  /** `torch.shard` with `auto` decided. */
  shard: 'none' | 'ddp' | 'fsdp2';
  precision: ResolvedTorch['precision'];
  /** "torch 2.13.0+cpu (CPU only): DDP over gloo; FSDP2 available" */
  summary: string;
  /** "1 process on cpu, fp32" */
  plan: string;
}

/** Where the interpreter came from, for what to say when it fails. */
type PythonOrigin = 'config' | 'venv' | 'path';

/** How long the probe may take: importing torch from a cold disk or a network file system can take many seconds. */
const PROBE_TIMEOUT_MS = 90_000;
/** The probe's answer is the last stdout line with this prefix; anything else (a sitecustomize's print) is noise. */
const PREFIX = '@sculpt-probe ';

/**
 * Every import guarded, so that the script always answers with what it found; a missing torch is reported, not
 * raised. transformers is imported (lazily, as its package does), which catches an install broken against torch.
 */
const PROBE_SCRIPT = `
import json, sys
out = {"executable": sys.executable, "python": sys.version.split()[0]}
def err(e):
    return "%s: %s" % (type(e).__name__, e)
try:
    import torch
    out["torch"] = torch.__version__
    cuda = bool(torch.cuda.is_available())
    n = torch.cuda.device_count() if cuda else 0
    out["cuda"] = {"available": cuda, "version": torch.version.cuda, "devices": n,
                   "names": [torch.cuda.get_device_name(i) for i in range(n)]}
    import torch.distributed as dist
    out["distributed"] = bool(dist.is_available())
    out["gloo"] = out["distributed"] and bool(dist.is_gloo_available())
    out["nccl"] = out["distributed"] and bool(dist.is_nccl_available())
    try:
        from torch.distributed.fsdp import fully_shard
        out["fullyShard"] = True
    except Exception:
        out["fullyShard"] = False
except Exception as e:
    out["torchError"] = err(e)
for name in ("transformers", "safetensors"):
    try:
        module = __import__(name)
        out[name] = getattr(module, "__version__", "?")
    except Exception as e:
        out[name + "Error"] = err(e)
print(${JSON.stringify(PREFIX)} + json.dumps(out), flush=True)
`;

/**
 * The repository (or installed package) folder that holds python/sculpt_torch: the folder above
 * SCULPT_PYTHON_DIR, else the nearest above this bundle (as the worker's launcher finds it); undefined when there
 * is none.
 */
export function projectRoot(): string | undefined {
  if (process.env.SCULPT_PYTHON_DIR) return path.dirname(path.resolve(process.env.SCULPT_PYTHON_DIR));
  let dir = __dirname;
  for (;;) {
    if (existsSync(path.join(dir, 'python', 'sculpt_torch'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** The project's venv interpreter (<root>/.venv, as scripts/provision/python.sh makes it), when there is one. */
function venvPython(): string | undefined {
  const root = projectRoot();
  if (!root) return undefined;
  // Both layouts, as the worker's launcher looks for them (worker-command.ts): validate probes what a run starts.
  return [path.join(root, '.venv', 'bin', 'python'), path.join(root, '.venv', 'Scripts', 'python.exe')].find((p) =>
    existsSync(p),
  );
}

function choosePython(torch: Pick<ResolvedTorch, 'python'>, configFile?: string): [string, PythonOrigin] {
  const given = torch.python;
  if (given !== undefined) {
    // As config-validate resolves it: a path is the config file's; a bare name is a command the PATH finds.
    if (!/[\\/]/.test(given) || path.isAbsolute(given)) return [given, 'config'];
    return [path.resolve(configFile ? path.dirname(configFile) : '.', given), 'config'];
  }
  const venv = venvPython();
  return venv ? [venv, 'venv'] : ['python3', 'path'];
}

/**
 * The interpreter the torch engine runs: `torch.python` (a path relative to the config file's folder, when
 * given one, else to the working folder), else the project's .venv made by `npm run provision`, else `python3`
 * on the PATH.
 */
export function resolvePython(config: Pick<ResolvedConfig, 'torch'>, configFile?: string): string {
  return choosePython(config.torch, configFile)[0];
}

/** `torch==2.13.0 transformers==... safetensors==...` as python/requirements.txt pins them (names alone without it). */
function pins(): string {
  const names = ['torch', 'transformers', 'safetensors'];
  const root = projectRoot();
  let text = '';
  try {
    if (root) text = readFileSync(path.join(root, 'python', 'requirements.txt'), 'utf8');
  } catch {
    // Names alone below.
  }
  return names.map((n) => text.match(new RegExp(`^${n}==\\S+`, 'm'))?.[0] ?? n).join(' ');
}

/** The one command that gives `python` the packages: provisioning for the project's venv, pip for another. */
function installCommand(python: string, origin: PythonOrigin): string {
  return origin === 'config' ? `run \`${python} -m pip install ${pins()}\`` : 'run `npm run provision`';
}

const cache = new Map<string, TorchEnvironment>();

/** Drops what earlier probes found (an interpreter changed under a long-lived process, and tests). */
export function clearTorchProbeCache(): void {
  cache.clear();
}

export interface ProbeOptions {
  /**
   * Reuse what a probe of the same interpreter found within this many milliseconds, in any process, instead of
   * starting Python again (importing torch takes seconds): for the editor's checks, which run `sculpt validate`
   * after every pause in typing. Only a probe that found torch is reused, so a fixed environment shows at once.
   */
  reuseMs?: number;
}

/**
 * Probes the config's Python (once per interpreter in this process) and checks what the config asks of it.
 * Throws a ConfigError naming the torch field at fault, what was found and the command that fixes it.
 */
export function probeTorch(
  config: Pick<ResolvedConfig, 'torch'>,
  configFile?: string,
  options: ProbeOptions = {},
): TorchProbe {
  const [python, origin] = choosePython(config.torch, configFile);
  let env = cache.get(python) ?? (options.reuseMs ? remembered(python, options.reuseMs) : undefined);
  if (!env) {
    env = runProbe(python, origin, configFile);
    remember(python, env);
  }
  cache.set(python, env);
  const probe = withPlan(env, config.torch);
  const issues = planIssues(probe, config.torch);
  if (issues.length) throw new ConfigError(issues, configFile, { hint: issues[0].expected });
  return probe;
}

/** Where a probe of `python` is remembered across processes: the interpreter and the GPUs it may see. */
function rememberedFile(python: string): string {
  const key = createHash('sha256')
    .update(`${python}\0${process.env.CUDA_VISIBLE_DEVICES ?? ''}`)
    .digest('hex')
    .slice(0, 16);
  return path.join(tmpdir(), `sculpt-torch-probe-${key}.json`);
}

/** The interpreter's modification time: a replaced interpreter is probed again. */
function interpreterStamp(python: string): number | null {
  try {
    return statSync(python).mtimeMs;
  } catch {
    return null; // a bare name on the PATH: its age is unknown, the time limit alone decides
  }
}

function remembered(python: string, withinMs: number): TorchEnvironment | undefined {
  try {
    const saved = JSON.parse(readFileSync(rememberedFile(python), 'utf8')) as {
      savedAt: number;
      stamp: number | null;
      env: TorchEnvironment;
    };
    const fresh = Date.now() - saved.savedAt <= withinMs && saved.stamp === interpreterStamp(python);
    return fresh && saved.env.python === python ? saved.env : undefined;
  } catch {
    return undefined; // none yet, or unreadable: probe
  }
}

function remember(python: string, env: TorchEnvironment): void {
  const file = rememberedFile(python);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify({ savedAt: Date.now(), stamp: interpreterStamp(python), env }));
    renameSync(tmp, file);
  } catch {
    // Only a saving of time: a later check probes again.
  }
}

function fail(configFile: string | undefined, message: string, fix: string): never {
  throw new ConfigError([{ path: 'torch.python', message: `${message}; ${fix}`, expected: fix }], configFile, {
    hint: fix,
  });
}

function runProbe(python: string, origin: PythonOrigin, configFile: string | undefined): TorchEnvironment {
  const r = spawnSync(python, ['-c', PROBE_SCRIPT], {
    encoding: 'utf8',
    timeout: PROBE_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    // The probe's own output must not be a warning about the probe.
    env: { ...process.env, PYTHONWARNINGS: 'ignore' },
    maxBuffer: 4 << 20,
  });
  const from =
    origin === 'config'
      ? /[\\/]/.test(python)
        ? python
        : `${python} (on the PATH)`
      : origin === 'venv'
        ? `the project's Python (${python})`
        : 'python3 on the PATH (torch.python is not set and there is no .venv)';
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      fail(
        configFile,
        `${from} was not found`,
        origin === 'config'
          ? "point torch.python at a Python with torch, or remove it and run `npm run provision` to make the project's .venv"
          : "run `npm run provision` to make the project's .venv",
      );
    if (code === 'ETIMEDOUT')
      fail(
        configFile,
        `${from} did not answer within ${PROBE_TIMEOUT_MS / 1000} s (importing torch)`,
        'check that `' + python + ' -c "import torch"` finishes',
      );
    fail(
      configFile,
      `${from} could not be started: ${r.error.message}`,
      'point torch.python at an executable Python 3',
    );
  }
  const line = r.stdout
    .split('\n')
    .filter((l) => l.startsWith(PREFIX))
    .pop();
  let found: Record<string, unknown> | undefined;
  try {
    found = line ? (JSON.parse(line.slice(PREFIX.length)) as Record<string, unknown>) : undefined;
  } catch {
    found = undefined;
  }
  if (!found) {
    const tail = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ');
    fail(
      configFile,
      `${from} is not a Python 3 that can run Sculpt's probe (exit ${r.status ?? r.signal}${tail ? `: ${tail}` : ''})`,
      'point torch.python at a Python 3 with torch',
    );
  }
  const version = typeof found.python === 'string' ? found.python : '?';
  const fix = installCommand(python, origin);
  const str = (k: string) => (typeof found[k] === 'string' ? (found[k] as string) : undefined);
  for (const pkg of ['torch', 'transformers', 'safetensors']) {
    if (str(pkg) === undefined)
      fail(configFile, `${from}, Python ${version}, cannot import ${pkg} (${str(`${pkg}Error`) ?? 'not found'})`, fix);
  }
  const cuda = (found.cuda ?? {}) as Partial<TorchEnvironment['cuda']>;
  return {
    python,
    executable: str('executable') ?? python,
    pythonVersion: version,
    torch: str('torch')!,
    transformers: str('transformers')!,
    safetensors: str('safetensors')!,
    cuda: {
      available: cuda.available === true,
      version: typeof cuda.version === 'string' ? cuda.version : null,
      devices: typeof cuda.devices === 'number' ? cuda.devices : 0,
      names: Array.isArray(cuda.names) ? cuda.names.map(String) : [],
    },
    distributed: found.distributed === true,
    gloo: found.gloo === true,
    nccl: found.nccl === true,
    fullyShard: found.fullyShard === true,
  };
}

/** What the config gets from `env`: `auto` device and shard decided as docs/torch-engine.md says the worker does. */
function withPlan(env: TorchEnvironment, t: ResolvedTorch): TorchProbe {
  const device = t.device === 'auto' ? (env.cuda.available ? 'cuda' : 'cpu') : t.device;
  const world = t.nprocPerNode * t.nnodes;
  // One process shards nothing, whatever torch.shard says (the worker's resolve_shard, which warns of it).
  const shard = world === 1 ? 'none' : t.shard !== 'auto' ? t.shard : device === 'cuda' ? 'fsdp2' : 'ddp';
  const processes =
    world === 1
      ? '1 process'
      : t.nnodes > 1
        ? `${world} processes (${t.nnodes} nodes × ${t.nprocPerNode})`
        : `${world} processes`;
  const plan = `${processes} on ${device}${shard === 'none' ? '' : `, ${shard}`}, ${t.precision}`;
  return { ...env, device, world, shard, precision: t.precision, summary: describeEnvironment(env), plan };
}

/** "torch 2.13.0+cpu (CPU only): DDP over gloo; FSDP2 available" */
export function describeEnvironment(env: TorchEnvironment): string {
  const c = env.cuda;
  const gpus = c.devices === 1 ? '1 GPU' : `${c.devices} GPUs`;
  const names = [...new Set(c.names)];
  const hardware = c.available
    ? `CUDA ${c.version ?? '?'}, ${gpus}${names.length ? `: ${names.join(', ')}` : ''}`
    : c.version
      ? `CUDA ${c.version} build, no GPU visible`
      : 'CPU only';
  const over = [c.available && env.nccl ? 'NCCL' : '', env.gloo ? 'gloo' : ''].filter(Boolean).join(' or ');
  const ddp = env.distributed && over ? `DDP over ${over}` : 'no torch.distributed: one process only';
  const fsdp = env.fullyShard ? 'FSDP2 available' : 'no FSDP2 (fully_shard)';
  return `torch ${env.torch} (${hardware}): ${ddp}; ${fsdp}`;
}

/** What the config asks that this environment cannot give, each at the field that asks it. */
function planIssues(p: TorchProbe, t: ResolvedTorch): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const torch = `torch ${p.torch} at ${p.python}`;
  const issue = (at: string, message: string, fix: string, actual?: unknown) =>
    issues.push({ path: `torch.${at}`, message: `${message}; ${fix}`, expected: fix, actual });
  if (t.device === 'cuda' && !p.cuda.available)
    issue(
      'device',
      `is "cuda", but ${torch} sees no CUDA GPU (${p.cuda.version ? `a CUDA ${p.cuda.version} build with no device visible` : 'a CPU-only build'})`,
      'set torch.device to "auto" or "cpu", or point torch.python at a Python whose torch is a CUDA build on a machine with a GPU',
      t.device,
    );
  if (p.device === 'cuda' && p.cuda.available && t.nprocPerNode > p.cuda.devices)
    issue(
      'nprocPerNode',
      `is ${t.nprocPerNode}, but ${torch} sees ${p.cuda.devices} GPU${p.cuda.devices === 1 ? '' : 's'} (one process per GPU)`,
      `set torch.nprocPerNode to at most ${p.cuda.devices} (or make more GPUs visible: CUDA_VISIBLE_DEVICES)`,
      t.nprocPerNode,
    );
  if (p.world > 1) {
    const at = t.nnodes > 1 ? 'nnodes' : 'nprocPerNode';
    const needs = p.device === 'cuda' ? 'nccl' : 'gloo';
    if (!p.distributed)
      issue(
        at,
        `asks for ${p.world} processes, but ${torch} has no torch.distributed`,
        'use a torch build with torch.distributed, or one process',
        t[at],
      );
    else if (!p[needs])
      issue(
        at,
        `asks for ${p.world} processes on ${p.device}, but ${torch} has no ${needs === 'nccl' ? 'NCCL' : 'gloo'} process group`,
        `use a torch build with ${needs === 'nccl' ? 'NCCL' : 'gloo'}, or one process`,
        t[at],
      );
  }
  if (p.shard === 'fsdp2' && !p.fullyShard)
    issue(
      'shard',
      `${t.shard === 'auto' ? 'is "auto", which is FSDP2 for several processes on CUDA' : 'is "fsdp2"'}, but ${torch} has no torch.distributed.fsdp.fully_shard (public from torch 2.6)`,
      `set torch.shard to "ddp", or install a newer torch into that Python: \`${p.python} -m pip install ${pins().split(' ')[0]}\``,
      t.shard,
    );
  return issues;
}
