/** `sculpt validate <config...>`: schema and semantic checks, files included; exit 2 on any issue. */
import { UsageError } from '../protocol/errors';
import { loadConfig } from './run';

export function validateCommand(files: string[]): number {
  if (files.length === 0) throw new UsageError('give one or more *.sculpt.json files');
  let ok = true;
  for (const f of files) {
    const config = loadConfig(f);
    if (config)
      console.log(
        `${f}: valid (${config.tasks.length} tasks, ${config.methods.length} method${config.methods.length === 1 ? '' : 's'})`,
      );
    else ok = false;
  }
  return ok ? 0 : 2;
}
