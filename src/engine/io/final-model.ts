/**
 * The fine-tuned model of a run (`checkpoint.final`): a Hugging Face checkpoint folder `<runDir>/model/` with
 * config.json, model.safetensors (the method's changes merged into the weights: O-LoRA's pairs, adaptive SVD's
 * factors) and the tokenizer's files, written once the last task is trained and before run-finished.
 *
 * Both engines fill it the same way: the engine writes model.safetensors into a staging folder
 * (`finalModelStaging`), then `completeFinalModel` copies the base checkpoint's config.json and the run's
 * tokenizer files beside it and renames the staging folder into place, so a `model/` folder that exists is whole.
 * A crash before the rename leaves only the staging folder, which the next attempt replaces.
 */
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ResolvedConfig } from '../../protocol/config-resolved';
import { modelDir } from '../experiment';
import { tokenizerSource } from '../run-inputs';
import { WriteFailedError } from './write-failure';
import { finalModelPath } from '../../runs/run-dir';

const STAGING_DIR = '.model.partial';

/** Files beside tokenizer.json that a Hugging Face tokenizer folder may have, copied when present. */
const TOKENIZER_COMPANIONS = ['tokenizer_config.json', 'special_tokens_map.json'];
/** Files of the base checkpoint that describe the model rather than its weights, copied when present. */
const MODEL_COMPANIONS = ['generation_config.json'];

/** Where an engine writes the final model.safetensors before `completeFinalModel`. */
export function finalModelStaging(runDir: string): string {
  return join(runDir, STAGING_DIR);
}

/** An empty staging folder (an earlier attempt's is removed); returns its path. */
export function startFinalModel(runDir: string): string {
  const dir = finalModelStaging(runDir);
  try {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new WriteFailedError(dir, 'write the final model', e);
  }
  return dir;
}

/**
 * Completes the staged folder (model.safetensors already written by the engine) with the base checkpoint's
 * config.json and the run's tokenizer files, and renames it to `<runDir>/model/`, replacing an older one.
 * Returns the folder's path.
 */
export function completeFinalModel(config: ResolvedConfig, runDir: string): string {
  const staging = finalModelStaging(runDir);
  const weights = join(staging, 'model.safetensors');
  if (!existsSync(weights)) throw new Error(`the final model's weights were not written (${weights} is missing)`);
  const base = modelDir(config);
  const tokenizer = tokenizerSource(config).file;
  const final = finalModelPath(runDir);
  try {
    copyFileSync(join(base, 'config.json'), join(staging, 'config.json'));
    for (const f of MODEL_COMPANIONS) if (isFile(join(base, f))) copyFileSync(join(base, f), join(staging, f));
    copyFileSync(tokenizer, join(staging, 'tokenizer.json'));
    for (const f of TOKENIZER_COMPANIONS) {
      const from = join(dirname(tokenizer), f);
      if (isFile(from)) copyFileSync(from, join(staging, f));
    }
    rmSync(final, { recursive: true, force: true });
    renameSync(staging, final);
  } catch (e) {
    throw new WriteFailedError(final, 'write the final model', e);
  }
  return final;
}

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}
