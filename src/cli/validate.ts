/**
 * `sculpt validate <config...>`: schema and semantic checks, files included (the model folder's config.json and
 * weight file headers among them, without loading weights), and the checks a run makes with its tokenizer
 * (the data's coverage and labels); exit 2 on any issue. Warnings are printed and leave the exit code 0.
 */
import * as path from 'node:path';
import { UsageError } from '../protocol/errors';
import { describeGrid, loadConfig } from './run';
import { gridCells } from '../runs/experiment-dir';
import { checkModel, describeModel } from './model-check';
import { checkInputs, checkTaskData } from './data-check';

export function validateCommand(files: string[]): number {
  if (files.length === 0) throw new UsageError('give one or more *.sculpt.json files');
  let ok = true;
  for (const f of files) {
    const config = loadConfig(f);
    const model = config && checkModel(config, f);
    const tasks = config && checkTaskData(config, f);
    const warn = (message: string) => console.error(`${path.resolve(f)}: warning: ${message}`);
    const inputs = config && model && tasks && checkInputs(config, f, tasks, model.inventory, warn);
    if (config && model && inputs) {
      const grid = describeGrid(config, gridCells(config).length);
      console.log(`${f}: valid (${config.tasks.length} tasks; ${grid}; model ${describeModel(model)})`);
    } else ok = false;
  }
  return ok ? 0 : 2;
}
