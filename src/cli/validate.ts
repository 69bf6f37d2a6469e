/**
 * `sculpt validate <config...>`: schema and semantic checks, files included (the model folder's config.json and
 * weight file headers among them, without loading weights), and the checks a run makes with its tokenizer
 * (the data's coverage and labels), and for the torch engine its Python (torch-check.ts); exit 2 on any issue.
 * Warnings are printed and leave the exit code 0.
 * With `--json` each config's findings are one line of JSON (validate-report.ts), which is how the editor shows
 * them; `--stdin` takes the text of the one config from standard input (an unsaved document), its path still
 * anchoring the relative paths inside it.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { UsageError, formatIssues } from '../protocol/errors';
import { configWarnings } from '../protocol/config-validate';
import { validateReport } from './validate-report';
import { describeGrid, loadConfig } from './run';
import { gridCells } from '../runs/experiment-dir';
import { checkModel, describeModel } from './model-check';
import { checkInputs, checkTaskData } from './data-check';
import { torchCheck } from './torch-check';

export function validateCommand(files: string[], opts: { json?: boolean; stdin?: boolean } = {}): number {
  // The text read from stdin is a file's (an unsaved document): its path anchors the relative paths inside it.
  if (files.length === 0 && opts.stdin)
    throw new UsageError(
      "--stdin needs the config's path too (relative paths in the text read resolve against it): sculpt validate --json --stdin <config.sculpt.json>",
    );
  if (files.length === 0) throw new UsageError('give one or more *.sculpt.json files');
  if (opts.stdin && !(opts.json && files.length === 1))
    throw new UsageError("--stdin takes one config file, with --json (the text read is that file's)");
  if (opts.json) {
    const text = opts.stdin ? readFileSync(0, 'utf8') : undefined;
    let ok = true;
    for (const f of files) {
      const report = validateReport(f, text);
      console.log(JSON.stringify(report));
      ok &&= report.valid;
    }
    return ok ? 0 : 2;
  }
  let ok = true;
  for (const f of files) {
    const config = loadConfig(f);
    const warn = (message: string) => console.error(`${path.resolve(f)}: warning: ${message}`);
    for (const w of config ? configWarnings(config) : []) warn(`${w.path}: ${w.message}`);
    const model = config && checkModel(config, f);
    const tasks = config && checkTaskData(config, f);
    const inputs = config && model && tasks && checkInputs(config, f, tasks, model.inventory, warn);
    // Checked beside the model and the data, so that one validate names every problem.
    const torch = config && torchCheck(config, f);
    if (torch && !torch.ok) console.error(formatIssues(torch.issues, path.resolve(f)));
    if (config && model && inputs && torch?.ok) {
      const grid = describeGrid(config, gridCells(config).length);
      console.log(`${f}: valid (${config.tasks.length} tasks; ${grid}; model ${describeModel(model)})`);
      if (torch.text) console.log(`${f}: engine ${torch.text}`);
    } else ok = false;
  }
  return ok ? 0 : 2;
}
