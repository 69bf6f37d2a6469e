/**
 * The model of an experiment, checked before anything is created: config.json and the header of every weight
 * file (no weights are read), as `sculpt validate` and `sculpt run` both do. A bad model folder is an input
 * error naming the file, not a run that fails later.
 */
import * as path from 'node:path';
import { checkModelFolder, type ModelFolderSummary } from '../engine/io/checkpoint';
import { modelDir } from '../engine/experiment';
import { ConfigError, InputError, formatIssues } from '../protocol/errors';
import type { ResolvedConfig } from '../protocol/config-resolved';

/** The checked model's summary, or null after printing what is wrong with it (the caller exits 2). */
export function checkModel(config: ResolvedConfig, configFile: string): ModelFolderSummary | null {
  const abs = path.resolve(configFile);
  try {
    return checkModelFolder(modelDir(config));
  } catch (e) {
    if (e instanceof ConfigError) console.error(formatIssues(e.issues, abs));
    else if (e instanceof InputError) console.error(`${abs}: model: ${e.message}\n  hint: ${e.hint}`);
    else throw e;
    return null;
  }
}

/** "llama, 12 tensors in model.safetensors" */
export function describeModel(summary: ModelFolderSummary): string {
  const files = summary.files.map((f) => path.basename(f));
  const shown = files.length <= 2 ? files.join(' and ') : `${files.length} files`;
  return `${summary.modelType}, ${summary.parameters} tensors in ${shown}`;
}
