/**
 * The `sculpt.*` settings (declared in package.json's contributes.configuration), read in one place.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { BackendName } from '../protocol/config';
import type { RunSettings } from './launch';

export const SECTION = 'sculpt';

export interface Settings {
  backend: BackendName;
  nodePath: string;
  /** As written: empty, absolute, or relative to the workspace folder. */
  runsDirectory: string;
  maxConcurrentRuns: number;
  stepEventInterval: number;
}

const BACKENDS: readonly BackendName[] = ['auto', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

export function readSettings(scope?: vscode.Uri): Settings {
  const c = vscode.workspace.getConfiguration(SECTION, scope);
  const backend = c.get<string>('backend', 'auto');
  return {
    backend: (BACKENDS as readonly string[]).includes(backend) ? (backend as BackendName) : 'auto',
    nodePath: c.get<string>('nodePath', 'node') || 'node',
    runsDirectory: c.get<string>('runsDirectory', '').trim(),
    maxConcurrentRuns: Math.max(1, Math.floor(c.get<number>('maxConcurrentRuns', 1)) || 1),
    stepEventInterval: Math.max(1, Math.floor(c.get<number>('stepEventInterval', 10)) || 10),
  };
}

/** The runs folder setting as an absolute path for a workspace folder ('' when unset). */
export function runsDirectoryFor(s: Settings, folder: vscode.WorkspaceFolder | undefined): string {
  if (!s.runsDirectory) return '';
  if (path.isAbsolute(s.runsDirectory)) return s.runsDirectory;
  return folder ? path.join(folder.uri.fsPath, s.runsDirectory) : '';
}

/** The settings that shape a new run of the config `file`. */
export function runSettingsFor(file: string): RunSettings {
  const uri = vscode.Uri.file(file);
  const s = readSettings(uri);
  return {
    backend: s.backend,
    stepEventInterval: s.stepEventInterval,
    runsDirectory: runsDirectoryFor(s, vscode.workspace.getWorkspaceFolder(uri)),
  };
}
