/**
 * Which workspace files a config can use, for completion: data files for `train`/`test` and Hugging Face
 * checkpoint folders for `model`, as paths relative to the config's folder. The engine's own files (run
 * folders, configs, tokenizers, package manifests) are not data.
 */
import * as path from 'node:path';

const NOT_DATA =
  /(^|\/)(events\.jsonl|job\.json|config\.json|package(-lock)?\.json|tsconfig[^/]*\.json|tokenizer[^/]*\.json|[^/]*\.sculpt\.json|state\.json)$/;

/** `abs` relative to `dir`, with `/` separators (what configs hold on every platform). */
export function relativeTo(dir: string, abs: string): string {
  return path.relative(dir, abs).split(path.sep).join('/');
}

export function dataFileCandidates(absPaths: string[], configDir: string): string[] {
  return absPaths
    .filter((p) => /\.(jsonl|json)$/i.test(p) && !NOT_DATA.test(p.split(path.sep).join('/')))
    .map((p) => relativeTo(configDir, p))
    .sort((a, b) => Number(!a.endsWith('.jsonl')) - Number(!b.endsWith('.jsonl')) || a.localeCompare(b));
}

/** Folders of the given config.json files that are checkpoints, not run folders (which hold a config.json too). */
export function checkpointFolderCandidates(
  configJsons: string[],
  configDir: string,
  isRunFolder: (dir: string) => boolean,
): string[] {
  return configJsons
    .map((f) => path.dirname(f))
    .filter((d) => !isRunFolder(d))
    .map((d) => relativeTo(configDir, d) || '.')
    .sort();
}
