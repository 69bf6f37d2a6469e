/**
 * New Experiment: a `*.sculpt.json` with a whole builtin suite in its published order (CL-5, the demo's, or
 * CL-15), a quick tiny experiment, chosen builtin tasks or the user's JSON Lines files, written where the user
 * says after a rough estimate of how long it runs, and opened for editing (completion and diagnostics take over
 * from there).
 */
import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { builtinModels, builtinTasks } from '../runs/builtin';
import { builtinModelInfo, builtinSuites, builtinTaskInfo, describeModel, describeTask } from '../runs/builtin/catalog';
import type { ExperimentConfig, TaskConfig } from '../protocol/config';
import {
  builtinBenchmark,
  builtinTaskConfigs,
  configFileName,
  configText,
  estimateConfig,
  experimentConfig,
  fileTaskConfigs,
  presetConfig,
  type Preset,
} from './experiment-template';
import { readSettings } from './settings';
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
    ...models.map((m) => {
      const info = builtinModelInfo(m);
      return {
        label: `builtin:${m}`,
        description: info ? describeModel(info) : 'shipped with Sculpt',
        value: `builtin:${m}`,
      };
    }),
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

type Source = Preset | 'builtin' | 'files';

/** "software → sentiment → spam" */
const sequence = (ids: string[]) => ids.map((id) => id.split('/').pop()).join(' → ');

/** The first step's choices: the presets the assets allow, then tasks of one's choosing. */
function sourceItems(tasks: string[], jobs: number): (vscode.QuickPickItem & { id: Source })[] {
  const suites = safeSuites();
  const dir = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd();
  const rough = (p: Preset) => {
    const c = presetConfig(p, p, suites);
    return c ? estimateConfig(c, dir, jobs).text : undefined;
  };
  const items: (vscode.QuickPickItem & { id: Source })[] = [];
  const cl5 = suites.find((s) => s.id === 'cl5');
  if (cl5)
    items.push({
      label: 'CL-5 (the demo)',
      description: sequence(cl5.tasks),
      detail: `The demo's suite in its published order, sizes and settings (sculpt-base, SeqFT vs adaptive SVD, 3 seeds); ${rough('cl5')}`,
      id: 'cl5',
    });
  const cl15 = suites.find((s) => s.id === 'cl15');
  if (cl15)
    items.push({
      label: 'CL-15',
      description: `${cl15.tasks.length} tasks in the published order`,
      detail: `${sequence(cl15.tasks)} (sculpt-base, SeqFT vs adaptive SVD, 1 seed); ${rough('cl15')}`,
      id: 'cl15',
    });
  if (tasks.includes('tiny/sentiment') && tasks.includes('tiny/topic'))
    items.push({
      label: 'A quick tiny experiment (seconds)',
      description: 'tiny-llama on two tiny tasks',
      detail: `To try Sculpt out: SeqFT vs adaptive SVD, 1 seed; ${rough('tiny')}`,
      id: 'tiny',
    });
  items.push(
    {
      label: 'Builtin tasks…',
      description: builtinBenchmark(tasks).join(', ') || 'no builtin tasks installed',
      id: 'builtin',
    },
    { label: 'My data…', description: 'JSON Lines files with {"input", "output"} per line', id: 'files' },
  );
  return items;
}

function safeSuites() {
  try {
    return builtinSuites();
  } catch {
    return [];
  }
}

/** Says how long the config would run and asks before writing it; false when the user declines. */
async function confirmEstimate(config: ExperimentConfig, target: vscode.Uri, jobs: number): Promise<boolean> {
  const e = estimateConfig(config, path.dirname(target.fsPath), jobs);
  const write = `Write ${path.basename(target.fsPath)}`;
  const pick = await vscode.window.showQuickPick(
    [
      { label: write, detail: `${e.text}. Runs are started from the file afterwards.` },
      { label: 'Cancel', detail: 'Nothing is written.' },
    ],
    { title: `Rough estimate: ${e.text.replace(/^rough estimate: /, '')}` },
  );
  return pick?.label === write;
}

export async function newExperiment(): Promise<vscode.Uri | undefined> {
  const models = safe(builtinModels);
  const tasks = safe(builtinTasks);
  const jobs = readSettings().maxConcurrentRuns;
  const source = await vscode.window.showQuickPick(sourceItems(tasks, jobs), {
    title: 'New Sculpt experiment',
    matchOnDescription: true,
  });
  if (!source) return undefined;
  const defaultName: Record<Source, string> = {
    cl5: 'cl5',
    cl15: 'cl15',
    tiny: 'tiny',
    builtin: 'benchmark',
    files: 'my-tasks',
  };
  const name = await vscode.window.showInputBox({
    title: 'Experiment name',
    value: defaultName[source.id],
    validateInput: (v) => (v.trim() ? undefined : 'Give the experiment a name.'),
  });
  if (!name) return undefined;
  const target = await targetFile(name.trim());
  if (!target) return undefined;
  const dir = path.dirname(target.fsPath);

  let config: ExperimentConfig | undefined;
  if (source.id === 'cl5' || source.id === 'cl15' || source.id === 'tiny') {
    config = presetConfig(source.id, name.trim(), safeSuites());
  } else {
    let taskConfigs: TaskConfig[];
    let model: string | undefined;
    if (source.id === 'builtin') {
      const bench = new Set(builtinBenchmark(tasks));
      const picked = await vscode.window.showQuickPick(
        tasks.map((t) => {
          const info = builtinTaskInfo(t);
          return { label: t, description: info ? describeTask(info) : undefined, picked: bench.has(t) };
        }),
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
    config = experimentConfig({ name: name.trim(), model, tasks: taskConfigs, tiny });
  }
  if (!config) {
    void vscode.window.showErrorMessage(`Sculpt: the builtin suite ${source.label} is not installed (assets/data).`);
    return undefined;
  }
  if (!(await confirmEstimate(config, target, jobs))) return undefined;
  writeFileSync(target.fsPath, configText(config));
  await vscode.window.showTextDocument(target);
  return target;
}
