/** `sculpt validate <config...>`: schema and semantic checks, files included; exit 2 on any issue. */
import { loadConfig } from './run';

export function validateCommand(files: string[]): number {
  if (files.length === 0) {
    console.error('sculpt validate: give one or more *.sculpt.json files');
    return 2;
  }
  let ok = true;
  for (const f of files) {
    const config = loadConfig(f);
    if (config) console.log(`${f}: valid (${config.tasks.length} tasks, ${config.methods.length} method${config.methods.length === 1 ? '' : 's'})`);
    else ok = false;
  }
  return ok ? 0 : 2;
}
