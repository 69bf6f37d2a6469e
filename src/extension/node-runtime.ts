/**
 * Which executable runs the trainer. A real Node.js is needed: native addons (Dawn's dawn.node for WebGPU,
 * tfjs-node) do not load in VS Code's Electron runtime. Electron run as Node (ELECTRON_RUN_AS_NODE=1) is only a
 * fallback for the pure JavaScript/WebAssembly backends, where it works and spares the user an install.
 */
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { BackendName } from '../protocol/config';

export interface TrainerRuntime {
  command: string;
  env: NodeJS.ProcessEnv;
  /** True when VS Code's own runtime is used because no Node.js was found. */
  embedded: boolean;
}

export interface RuntimeRequest {
  /** The `sculpt.nodePath` setting: a command name looked up on PATH, or a path. */
  nodePath: string;
  /** The backend the run will ask for (its config after the settings are applied). */
  backend: BackendName;
  /** VS Code's executable (process.execPath in the extension host). */
  execPath: string;
  env: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Looks a command up on PATH the way a shell would (with PATHEXT on Windows). */
export function findOnPath(
  name: string,
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform = process.platform,
): string | undefined {
  const pathVar = env.PATH ?? env.Path ?? '';
  const sep = platform === 'win32' ? ';' : ':';
  const exts =
    platform === 'win32' ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';').map((e) => e.toLowerCase())] : [''];
  for (const dir of pathVar.split(sep)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      if (isFile(candidate)) return candidate;
    }
  }
  return undefined;
}

/** A copy of the environment without the flag that turns VS Code's executable into Node. */
function plainEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  delete out.ELECTRON_RUN_AS_NODE;
  return out;
}

export class RuntimeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuntimeError';
  }
}

/** Finds the runtime for a trainer, or throws a RuntimeError that says how to provide one. */
export function resolveRuntime(req: RuntimeRequest): TrainerRuntime {
  const setting = req.nodePath.trim() || 'node';
  const explicit = setting.includes('/') || setting.includes('\\');
  const found = explicit
    ? existsSync(setting) && isFile(setting)
      ? setting
      : undefined
    : findOnPath(setting, req.env, req.platform);
  if (found) return { command: found, env: plainEnv(req.env), embedded: false };
  const where = explicit
    ? `"sculpt.nodePath" points to ${setting}, which does not exist`
    : `'${setting}' was not found on PATH`;
  if (req.backend === 'wasm' || req.backend === 'cpu') {
    return { command: req.execPath, env: { ...plainEnv(req.env), ELECTRON_RUN_AS_NODE: '1' }, embedded: true };
  }
  throw new RuntimeError(
    `Cannot start the trainer: ${where}. Install Node.js 20 or later, or set "sculpt.nodePath" to its full path. ` +
      `(With the backend set to "wasm" or "cpu", Sculpt can use VS Code's own runtime instead.)`,
  );
}
