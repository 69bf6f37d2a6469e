/**
 * New Experiment: a `*.sculpt.json` on the builtin benchmark or on the user's JSON Lines files, written where
 * the user says and opened for editing (completion and diagnostics take over from there).
 */
import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { builtinModels, builtinTasks } from '../runs/builtin';
import type { TaskConfig } from '../protocol/config';
import {
  builtinBenchmark,
  builtinTaskConfigs,
  configFileName,
  experimentText,
  fileTaskConfigs,
} from './experiment-template';
import { relativeTo } from './workspace-files';

function safe(list: () => string[]): string[] {
  try {
    return list();
  } catch {
    return [];
  }
}

async function pickModel(models: string[], configDir?: string): Promise<string | undefined> {
  const items: (vscode.QuickPickItem & { value?: string })[] = [
    ...models.map((m) => ({ label: `builtin:${m}`, description: 'shipped with Sculpt', value: `builtin:${m}` })),
    { label: 'Hugging Face checkpoint folder…', description: 'a folder with config.json and model.safetensors' },
  ];
  const pick = await vscode.window.showQuickPick(items, { title: 'Base model' });
  if (!pick) return undefined;
  if (pick.value) return pick.value;
  const folder = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    openLabel: 'Use Checkpoint',
  });
  if (!folder?.[0]) return undefined;
  if (!existsSync(path.join(folder[0].fsPath, 'config.json'))) {
    void vscode.window.showWarningMessage(
      `Sculpt: ${folder[0].fsPath} has no config.json; the config will show the problem until it does.`,
    );
  }
  return configDir ? `./${relativeTo(configDir, folder[0].fsPath)}` : folder[0].fsPath;
}

async function targetFile(name: string): Promise<vscode.Uri | undefined> {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const target = await vscode.window.showSaveDialog({
    defaultUri: folder ? vscode.Uri.joinPath(folder, configFileName(name)) : undefined,
    filters: { 'Sculpt experiment': ['json'] },
    title: 'Save the experiment config (*.sculpt.json)',
  });
  if (!target) return undefined;
  // The schema, completion and diagnostics apply to *.sculpt.json only.
  return target.fsPath.endsWith('.sculpt.json')
    ? target
    : vscode.Uri.file(target.fsPath.replace(/(\.json)?$/, '.sculpt.json'));
}

export async function newExperiment(): Promise<vscode.Uri | undefined> {
  const models = safe(builtinModels);
  const tasks = safe(builtinTasks);
  const source = await vscode.window.showQuickPick(
    [
      {
        label: 'Builtin benchmark',
        description: builtinBenchmark(tasks).join(', ') || 'no builtin tasks installed',
        id: 'builtin' as const,
      },
      { label: 'My data', description: 'JSON Lines files with {"input", "output"} per line', id: 'files' as const },
    ],
    { title: 'New Sculpt experiment: tasks from' },
  );
  if (!source) return undefined;
  const name = await vscode.window.showInputBox({
    title: 'Experiment name',
    value: source.id === 'builtin' ? 'benchmark' : 'my-tasks',
    validateInput: (v) => (v.trim() ? undefined : 'Give the experiment a name.'),
  });
  if (!name) return undefined;
  const target = await targetFile(name.trim());
  if (!target) return undefined;
  const dir = path.dirname(target.fsPath);

  let taskConfigs: TaskConfig[];
  let model: string | undefined;
  if (source.id === 'builtin') {
    const bench = new Set(builtinBenchmark(tasks));
    const picked = await vscode.window.showQuickPick(
      tasks.map((t) => ({ label: t, picked: bench.has(t) })),
      { title: 'Tasks, in training order (reorder them in the file afterwards)', canPickMany: true },
    );
    if (!picked?.length) return undefined;
    taskConfigs = builtinTaskConfigs(picked.map((p) => p.label));
    model = models.length === 1 ? `builtin:${models[0]}` : await pickModel(models);
  } else {
    const files = await vscode.window.showOpenDialog({
      canSelectMany: true,
      openLabel: 'Use as Tasks',
      filters: { 'JSON Lines': ['jsonl', 'json'] },
      title: 'Training files (a matching *test* file beside each is used for testing)',
    });
    if (!files?.length) return undefined;
    const siblings = files.map((f) => f.fsPath);
    for (const f of files) {
      const test = path.join(path.dirname(f.fsPath), path.basename(f.fsPath).replace('train', 'test'));
      if (test !== f.fsPath && existsSync(test)) siblings.push(test);
    }
    taskConfigs = fileTaskConfigs([...new Set(siblings)].map((f) => relativeTo(dir, f)));
    model = await pickModel(models, dir);
  }
  if (!model) return undefined;
  const tiny = model.startsWith('builtin:tiny');
  writeFileSync(target.fsPath, experimentText({ name: name.trim(), model, tasks: taskConfigs, tiny }));
  await vscode.window.showTextDocument(target);
  return target;
}
