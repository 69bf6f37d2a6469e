/**
 * What a command acts on: the runs or config passed by a view, the status bar or another command, else a
 * sensible default, else the user's pick.
 */
import * as vscode from 'vscode';
import { experimentCells } from '../runs/experiment-dir';
import type { RunStatus } from '../runs/status';
import type { TreeNode } from './trees/node';
import { runNodes, runStatus, type RunEntry } from './trees/run-items';

/**
 * Run folders in command arguments: a view row (and the view's multi-selection, passed second), a folder
 * path or a Uri.
 */
export function runDirsFromArgs(args: unknown[]): string[] {
  const out: string[] = [];
  const add = (a: unknown) => {
    if (typeof a === 'string') out.push(a);
    else if (a instanceof vscode.Uri) out.push(a.fsPath);
    else if (Array.isArray(a)) a.forEach(add);
    else if (a && typeof a === 'object' && typeof (a as TreeNode).runDir === 'string')
      out.push((a as TreeNode).runDir!);
  };
  args.forEach(add);
  return [...new Set(out)];
}

/**
 * Run folders in command arguments as `runDirsFromArgs` reads them, with an experiment row standing for every
 * run of its grid (for commands that read runs, such as Export Report; never for ones that act on them).
 */
export function runDirsWithExperiments(args: unknown[]): string[] {
  const out = new Set(runDirsFromArgs(args));
  const add = (a: unknown) => {
    if (Array.isArray(a)) a.forEach(add);
    else if (a && typeof a === 'object' && typeof (a as TreeNode).experimentDir === 'string') {
      try {
        for (const d of experimentCells((a as TreeNode).experimentDir!)) out.add(d);
      } catch {
        // An experiment folder deleted or broken since the view was drawn: nothing of it to read.
      }
    }
  };
  args.forEach(add);
  return [...out];
}

interface RunPick extends vscode.QuickPickItem {
  dir: string;
}

/** Lets the user pick runs among `entries` (those with a status in `only`, when given). */
export async function pickRuns(
  entries: RunEntry[],
  opts: { title: string; many: boolean; only?: ReadonlySet<RunStatus>; preselect?: string[] },
): Promise<string[]> {
  const eligible = opts.only ? entries.filter((e) => opts.only!.has(runStatus(e))) : entries;
  if (eligible.length === 0) return [];
  const items: RunPick[] = runNodes(eligible).map((n) => ({
    label: n.label,
    description: n.description,
    detail: n.runDir,
    dir: n.runDir!,
    picked: opts.preselect?.includes(n.runDir!),
  }));
  if (opts.many) {
    const picked = await vscode.window.showQuickPick(items, {
      title: opts.title,
      canPickMany: true,
      matchOnDescription: true,
      matchOnDetail: true,
    });
    return picked?.map((p) => p.dir) ?? [];
  }
  const picked = await vscode.window.showQuickPick(items, {
    title: opts.title,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  return picked ? [picked.dir] : [];
}

/** Where a config command applies: the passed Uri or row, the active editor's config, else a pick. */
export async function configFromArgs(arg: unknown, known: string[]): Promise<string | undefined> {
  if (arg instanceof vscode.Uri) return arg.fsPath;
  if (arg && typeof arg === 'object' && typeof (arg as TreeNode).file === 'string') return (arg as TreeNode).file;
  if (typeof arg === 'string') return arg;
  const active = vscode.window.activeTextEditor?.document;
  if (active?.uri.scheme === 'file' && active.uri.fsPath.endsWith('.sculpt.json')) return active.uri.fsPath;
  if (known.length === 1) return known[0];
  if (known.length === 0) return undefined;
  const pick = await vscode.window.showQuickPick(
    known.map((f) => ({ label: vscode.workspace.asRelativePath(f), file: f })),
    { title: 'Run which experiment?' },
  );
  return pick?.file;
}
