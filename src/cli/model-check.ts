/**
 * The model of an experiment, checked before anything is created: config.json and the header of every weight
 * file (no weights are read), as `sculpt validate` and `sculpt run` both do. A bad model folder is an input
 * error naming the file, not a run that fails later. The options that name the model's matrices (a fixed rank
 * policy's rankPattern) are checked against its names here too, as the run would at its start.
 */
import * as path from 'node:path';
import { checkModelFolder, type ModelFolderSummary } from '../engine/io/checkpoint';
import { modelDir } from '../engine/experiment';
import { ConfigError, InputError, formatIssues } from '../protocol/errors';
import type { ResolvedConfig } from '../protocol/config-resolved';
import type { ConfigIssue } from '../protocol/config-validate';
import { constrainedMatrices, rankPatternIssues } from '../engine/methods/rank-pattern';
import type { Inventory } from '../engine/models/inventory';

/** The checked model's summary, or null after printing what is wrong with it (the caller exits 2). */
export function checkModel(config: ResolvedConfig, configFile: string): ModelFolderSummary | null {
  const abs = path.resolve(configFile);
  try {
    const summary = checkModelFolder(modelDir(config));
    const issues = modelNameIssues(config, summary.inventory);
    if (issues.length) throw new ConfigError(issues);
    return summary;
  } catch (e) {
    if (e instanceof ConfigError) console.error(formatIssues(e.issues, abs));
    else if (e instanceof InputError) console.error(`${abs}: model: ${e.message}\n  hint: ${e.hint}`);
    else throw e;
    return null;
  }
}

/** Rank patterns of adaptive-svd methods that match none of the matrices the method constrains in this model. */
export function modelNameIssues(config: ResolvedConfig, inventory: Inventory): ConfigIssue[] {
  return config.methods.flatMap((m, i) =>
    m.method === 'adaptive-svd' && m.rank.policy === 'fixed' && m.rank.rankPattern
      ? rankPatternIssues(m.rank, constrainedMatrices(inventory, m.targets), `methods[${i}].rank`)
      : [],
  );
}

/** "llama, 12 tensors in model.safetensors" */
export function describeModel(summary: ModelFolderSummary): string {
  const files = summary.files.map((f) => path.basename(f));
  const shown = files.length <= 2 ? files.join(' and ') : `${files.length} files`;
  return `${summary.modelType}, ${summary.parameters} tensors in ${shown}`;
}
