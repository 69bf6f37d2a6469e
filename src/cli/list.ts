/** `sculpt list`: builtin models, builtin tasks and the methods this build implements. */
import { builtinModels, builtinTasks } from '../runs/builtin';
import { availableMethods } from '../engine/methods';

export function listCommand(): number {
  console.log(
    `models:  ${
      builtinModels()
        .map((m) => `builtin:${m}`)
        .join(', ') || '(none)'
    }`,
  );
  console.log(`tasks:   ${builtinTasks().join(', ')}`);
  console.log(`methods: ${availableMethods().join(', ')}`);
  return 0;
}
