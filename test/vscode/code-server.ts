/**
 * A real VS Code for the end-to-end tests: code-server (VS Code 1.100 serving its workbench to a browser, with
 * the extension host in Node on the server), installed by scripts/provision/code-server.sh. Everything here
 * stays on this machine: the server binds to 127.0.0.1 only, the extension gallery is switched off, and every
 * folder it writes (user data, extensions, its own logs and config) lives under one temporary root.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths';

export const CODE_SERVER_VERSION = '4.100.3';
export const CODE_SERVER_DIR = process.env.SCULPT_CODE_SERVER_DIR ?? join(repoRoot, '.cache', 'code-server');
const ENTRY = join(CODE_SERVER_DIR, 'node_modules', 'code-server', 'out', 'node', 'entry.js');

/** The provisioning script writes this file last, so its presence means a complete install. */
export function requireCodeServer(): string {
  if (!existsSync(join(CODE_SERVER_DIR, `.complete-${CODE_SERVER_VERSION}`)) || !existsSync(ENTRY)) {
    throw new Error(
      `code-server ${CODE_SERVER_VERSION} is not installed in ${CODE_SERVER_DIR}: run scripts/provision/code-server.sh (npm packages and Debian's apt only)`,
    );
  }
  return ENTRY;
}

/** Newest modification time (ms) of a file or of any file below a folder. */
function newest(path: string): number {
  if (!existsSync(path)) return 0;
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return readdirSync(path).reduce((m, name) => Math.max(m, newest(join(path, name))), s.mtimeMs);
}

/** What goes into the package: the sources of the bundles and the files .vscodeignore lets through. */
const PACKAGE_INPUTS = [
  'src',
  'webview',
  'media',
  'schemas',
  'assets',
  'package.json',
  '.vscodeignore',
  'esbuild.mjs',
  'scripts/build',
  'README.md',
  'LICENSE',
];

/**
 * dist/sculpt.vsix, made with `npm run package` (what a user installs) when it is missing or older than any of
 * its inputs.
 */
export function ensureVsix(log: (line: string) => void): string {
  const vsix = join(repoRoot, 'dist', 'sculpt.vsix');
  const built = existsSync(vsix) ? statSync(vsix).mtimeMs : 0;
  const stale = PACKAGE_INPUTS.find((p) => newest(join(repoRoot, p)) > built);
  if (stale === undefined) return vsix;
  log(`packaging dist/sculpt.vsix (${built ? `${stale} changed` : 'missing'})`);
  const r = spawnSync('npm', ['run', 'package', '--silent'], { cwd: repoRoot, encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0 || !existsSync(vsix))
    throw new Error(`npm run package failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return vsix;
}

/** One code-server's private folders, all under `root`. */
export interface ServerHome {
  root: string;
  userData: string;
  extensions: string;
}

export function serverHome(root: string, settings: Record<string, unknown>): ServerHome {
  const home = { root, userData: join(root, 'user-data'), extensions: join(root, 'extensions') };
  mkdirSync(join(home.userData, 'User'), { recursive: true });
  mkdirSync(home.extensions, { recursive: true });
  writeFileSync(join(home.userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2) + '\n');
  return home;
}

/**
 * The server's environment. code-server keeps a config file (with a generated password) and logs under the XDG
 * folders of the user's home unless told otherwise: both point into the test's root. `EXTENSIONS_GALLERY='{}'`
 * removes its one outbound call. Variables of an enclosing VS Code (its terminal sets VSCODE_*) would make the
 * server's CLI talk to that other instance instead.
 */
function serverEnv(home: ServerHome): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('VSCODE_') && k !== 'ELECTRON_RUN_AS_NODE') env[k] = v;
  return {
    ...env,
    EXTENSIONS_GALLERY: '{}',
    XDG_CONFIG_HOME: join(home.root, 'xdg-config'),
    XDG_DATA_HOME: join(home.root, 'xdg-data'),
  };
}

const commonArgs = (home: ServerHome) => [
  '--config',
  join(home.root, 'config.yaml'),
  '--user-data-dir',
  home.userData,
  '--extensions-dir',
  home.extensions,
];

/** `code-server --install-extension`: what a user does with a downloaded .vsix. */
export function installExtension(home: ServerHome, vsix: string): void {
  const r = spawnSync(process.execPath, [requireCodeServer(), ...commonArgs(home), '--install-extension', vsix], {
    env: serverEnv(home),
    encoding: 'utf8',
    timeout: 120_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  if (r.status !== 0 || !/successfully installed/.test(out))
    throw new Error(`installing ${vsix} failed (${r.status ?? r.signal}):\n${out}`);
}

export interface RunningServer {
  /** http://127.0.0.1:PORT: a secure context for the browser, which VS Code's webviews need. */
  url: string;
  pid: number;
  logFile: string;
  /** Ends the server and everything it started (extension host, file watcher, pty host). */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Signals a process group (the leader's pid), ignoring one that is already gone. */
export function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Starts code-server on 127.0.0.1 and a port the system picks (read back from its log, so no other process can
 * take the port in between). Detached, so that it leads a process group and stop() ends the whole tree.
 */
export async function startCodeServer(home: ServerHome, logFile: string, timeoutMs = 60_000): Promise<RunningServer> {
  const entry = requireCodeServer();
  const fd = openSync(logFile, 'w');
  let child: ChildProcess;
  try {
    child = spawn(
      process.execPath,
      // Without --disable-workspace-trust the folder opens in Restricted Mode and the extension cannot run trainers.
      [
        entry,
        ...commonArgs(home),
        '--auth',
        'none',
        '--bind-addr',
        '127.0.0.1:0',
        '--disable-telemetry',
        '--disable-update-check',
        '--disable-workspace-trust',
      ],
      { env: serverEnv(home), stdio: ['ignore', fd, fd], detached: true },
    );
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('code-server did not start');
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = async () => {
    signalGroup(pid, 'SIGTERM');
    for (let i = 0; i < 50 && !exited; i++) await sleep(100);
    // Whatever ignored the request (a busy extension host) goes now.
    signalGroup(pid, 'SIGKILL');
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /HTTP server listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(readFileSync(logFile, 'utf8'));
    if (m) return { url: m[1], pid, logFile, stop };
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(
        `code-server ${exited ? 'exited' : 'did not listen in time'}; its log:\n${readFileSync(logFile, 'utf8')}`,
      );
    }
    await sleep(100);
  }
}

/**
 * Ends the trainers of the run folders below `runsDir` that still run: they are detached from the extension
 * host on purpose (they outlive a window reload), so ending the server does not end them. Only processes whose
 * command line runs a trainer on that very folder are touched.
 */
function subfolders(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join(dir, d.name));
  } catch {
    return [];
  }
}

export function killTrainers(runsDir: string): void {
  if (!existsSync(runsDir)) return;
  const folders = readdirSync(runsDir).map((name) => join(runsDir, name));
  // Run folders sit in experiment folders (<runs>/<experiment>-<time>/<cell>/).
  for (const dir of folders.flatMap((d) => [d, ...subfolders(d)])) {
    let pid: number | undefined;
    try {
      pid = (JSON.parse(readFileSync(join(dir, 'trainer.pid'), 'utf8')) as { pid?: number }).pid;
    } catch {
      continue;
    }
    if (typeof pid !== 'number') continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    if (cmd.includes('trainer.js') && cmd.includes(dir)) signalGroup(pid, 'SIGKILL');
  }
}
