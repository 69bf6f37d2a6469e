/**
 * Process liveness and tree kill for trainer processes. A trainer started detached leads its own process group:
 * signalling the group reaches anything the trainer started, even after a window reload when only the pid
 * (from the run folder's pid file) is known.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * True when a process with this pid runs (it may belong to another user: EPERM still means alive). A zombie,
 * dead but not yet reaped by its parent, does not count.
 */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  if (process.platform !== 'linux') return false;
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may contain spaces and parentheses, state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

/**
 * The command line of a live process, where the platform exposes it without spawning anything (Linux /proc);
 * undefined elsewhere. Used to tell a trainer from an unrelated process that reused its pid.
 */
export function commandLine(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/** Sends a signal to one process; false when it is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Signals a trainer and everything it started. POSIX: the process group led by `pid` (when it was spawned
 * detached), then the pid itself in case it was not a group leader. Windows: taskkill /T.
 */
export function killTree(pid: number, sig: NodeJS.Signals = 'SIGKILL'): void {
  if (!Number.isInteger(pid) || pid <= 0) return;
  if (process.platform === 'win32') {
    spawnSync('taskkill', ['/pid', String(pid), '/T', ...(sig === 'SIGKILL' ? ['/F'] : [])], { windowsHide: true });
    return;
  }
  signal(-pid, sig);
  signal(pid, sig);
}
