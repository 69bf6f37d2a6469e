/**
 * The extension activated in plain Node against the stand-in `vscode` (vscode-stub.ts, imported first so that
 * the extension's `require('vscode')` finds it), and the ways the tests drive and watch it.
 */
import { ui, vscode, Uri } from './vscode-stub';
import { after } from 'node:test';
import * as path from 'node:path';
import { activate } from '../../src/extension/main';
import type { TreeNode } from '../../src/extension/trees/node';
import { repoRoot } from './paths';

/**
 * Activates the extension on workspace folder `ws`, with this Node as the trainer's runtime; its
 * subscriptions are disposed when the test file ends.
 */
export function activateExtension(ws: string): void {
  ui.workspace = ws;
  ui.settings['sculpt.nodePath'] = process.execPath;
  const state = new Map<string, unknown>();
  const context = {
    subscriptions: [] as { dispose(): unknown }[],
    extensionUri: Uri.file(repoRoot),
    extensionPath: repoRoot,
    asAbsolutePath: (p: string) => path.join(repoRoot, p),
    workspaceState: {
      get: (k: string, d?: unknown) => (state.has(k) ? state.get(k) : d),
      update: async (k: string, v: unknown) => void state.set(k, v),
    },
  };
  activate(context as never);
  after(() => context.subscriptions.forEach((d) => d.dispose()));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something truthy, and returns that; fails naming `what` after `ms`. */
export async function until<T>(what: string, fn: () => T | undefined | false, ms = 30_000): Promise<T> {
  for (let t = 0; t < ms; t += 50) {
    const v = fn();
    if (v) return v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The tree view `id` the extension registered. */
export const tree = (id: string) => ui.treeViews.get(id)!;
/** The top-level nodes of tree view `id`. */
export const rows = (id: string): TreeNode[] => tree(id).provider.getChildren();
/** Runs command `id` as the command palette or a menu would. */
export const command = (id: string, ...args: unknown[]) => vscode.commands.executeCommand(id, ...args);
