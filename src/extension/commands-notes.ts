/**
 * Rename Run..., Edit Notes..., Edit Tags...: the user's text about a run, kept in the run folder's notes.json
 * (src/runs/run-notes.ts) and shown in the Runs view, the dashboard and reports. A rename or notes edit acts on
 * one run (the row clicked); tags on every run selected.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { NOTES_FILE, NOTES_LIMITS, parseTags, readRunNotes, updateRunNotes, type RunNotes } from '../runs/run-notes';
import { pickRuns, runDirsFromArgs } from './pickers';
import type { Sculpt } from './sculpt';
import { gridRunLabel } from './trees/run-items';

export function registerRunNotesCommands(s: Sculpt): vscode.Disposable[] {
  const reg = (id: string, fn: (...args: unknown[]) => unknown) => vscode.commands.registerCommand(id, fn);
  return [
    reg('sculpt.renameRun', (...args) => renameRun(s, args)),
    reg('sculpt.editRunNotes', (...args) => editNotes(s, args)),
    reg('sculpt.editRunTags', (...args) => editTags(s, args)),
  ];
}

/** The runs a command acts on: its arguments (the row, and the view's selection), else the selection, else a pick. */
async function targets(s: Sculpt, args: unknown[], title: string, many: boolean): Promise<string[]> {
  let dirs = runDirsFromArgs(args);
  if (!dirs.length) dirs = s.runsView.selection.map((n) => n.runDir).filter((d): d is string => !!d);
  if (!dirs.length) dirs = await pickRuns(s.runsTree.entries(), { title, many });
  // A rename or a note is about one run: the row clicked comes first in the arguments.
  return many ? dirs : dirs.slice(0, 1);
}

/** Writes the change and shows it everywhere; says what went wrong when the folder cannot be written. */
function save(s: Sculpt, dir: string, patch: Partial<RunNotes>): boolean {
  try {
    updateRunNotes(dir, patch);
  } catch (e) {
    void vscode.window.showErrorMessage(`Sculpt: ${(e as Error).message}`);
    return false;
  }
  s.catalog.forget(dir);
  s.runsTree.refresh(0);
  s.dashboard.updateMeta(dir);
  return true;
}

/** The name a run has without the user's: `<experiment> · <method> · o<order> · s<seed>`. */
function defaultName(s: Sculpt, dir: string): string {
  const info = s.catalog.info(dir);
  return info ? gridRunLabel(info) : path.basename(dir);
}

async function renameRun(s: Sculpt, args: unknown[]): Promise<void> {
  const [dir] = await targets(s, args, 'Rename which run?', false);
  if (!dir) return;
  const current = readRunNotes(dir).title;
  const fallback = defaultName(s, dir);
  const title = await vscode.window.showInputBox({
    title: `Rename ${fallback}`,
    prompt: `The name shown for ${path.basename(dir)} in the Runs view, dashboards and reports. Leave empty for "${fallback}".`,
    value: current,
    placeHolder: fallback,
    validateInput: (v) =>
      v.trim().length > NOTES_LIMITS.title ? `At most ${NOTES_LIMITS.title} characters.` : undefined,
  });
  if (title === undefined || title.trim() === current) return;
  save(s, dir, { title });
}

async function editNotes(s: Sculpt, args: unknown[]): Promise<void> {
  const [dir] = await targets(s, args, 'Edit the notes of which run?', false);
  if (!dir) return;
  const current = readRunNotes(dir).notes;
  // An input box holds one line: notes of several lines (written by hand) are edited in the file itself.
  if (current.includes('\n')) {
    await vscode.window.showTextDocument(vscode.Uri.file(path.join(dir, NOTES_FILE)));
    return;
  }
  const notes = await vscode.window.showInputBox({
    title: `Notes on ${s.label(dir)}`,
    prompt: `Shown in the tooltips of the Runs view and the dashboard; kept in ${NOTES_FILE} in the run folder. Leave empty to remove them.`,
    value: current,
    placeHolder: 'e.g. lr 1e-3 retry after fixing the tokenizer',
    validateInput: (v) =>
      v.trim().length > NOTES_LIMITS.notes ? `At most ${NOTES_LIMITS.notes} characters.` : undefined,
  });
  if (notes === undefined || notes.trim() === current) return;
  save(s, dir, { notes });
}

async function editTags(s: Sculpt, args: unknown[]): Promise<void> {
  const dirs = await targets(s, args, 'Edit the tags of which runs?', true);
  if (!dirs.length) return;
  const each = dirs.map((d) => readRunNotes(d).tags);
  // Several runs: the tags they all have are offered, and the answer becomes every run's tags.
  const common = each[0].filter((t) => each.every((ts) => ts.some((x) => x.toLowerCase() === t.toLowerCase())));
  const input = await vscode.window.showInputBox({
    title: dirs.length === 1 ? `Tags of ${s.label(dirs[0])}` : `Tags of ${dirs.length} runs`,
    prompt: `Separated by commas or spaces (a leading # is dropped); at most ${NOTES_LIMITS.tags}. Leave empty to remove them.${dirs.length > 1 ? ' Replaces the tags of every selected run.' : ''}`,
    value: common.join(', '),
    placeHolder: 'e.g. baseline, ablation',
  });
  if (input === undefined) return;
  const tags = parseTags(input);
  for (const d of dirs) if (!save(s, d, { tags })) break;
}
