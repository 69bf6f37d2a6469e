/**
 * `sculpt validate <config...>`: schema and semantic checks, files included (the model folder's config.json and
 * weight file headers among them, without loading weights); exit 2 on any issue.
 */
import { UsageError } from '../protocol/errors';
import { describeGrid, loadConfig } from './run';
import { gridCells } from '../runs/experiment-dir';
import { checkModel, describeModel } from './model-check';
import { checkTaskData } from './data-check';

export function validateCommand(files: string[]): number {
  if (files.length === 0) throw new UsageError('give one or more *.sculpt.json files');
  let ok = true;
  for (const f of files) {
    const config = loadConfig(f);
    const model = config && checkModel(config, f);
    const data = config && checkTaskData(config, f);
    if (config && model && data) {
      const grid = describeGrid(config, gridCells(config).length);
      console.log(`${f}: valid (${config.tasks.length} tasks; ${grid}; model ${describeModel(model)})`);
    } else ok = false;
  }
  return ok ? 0 : 2;
}
