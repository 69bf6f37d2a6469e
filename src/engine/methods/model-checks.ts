/**
 * The methods' options that depend on the model's shapes, checked from the model folder's inventory (its
 * config.json, checked against the weight files' headers) without reading a weight: adaptive-svd's targets,
 * rank patterns and fixed k (rank-pattern.ts), O-LoRA's modules and rank r (olora-slots.ts). `sculpt validate`,
 * `sculpt run` before it creates anything and every trainer at its start reach them through checkRunInputs
 * (../run-inputs.ts); each method's setup makes its own through the same functions, so the checks cannot drift.
 */
import type { ResolvedMethodConfig } from '../../protocol/config-resolved';
import type { ConfigIssue } from '../../protocol/config-validate';
import { adaptiveSvdModelIssues } from './rank-pattern';
import { oLoraModelIssues, type ModelShapes } from './olora-slots';

/** Every issue of `methods` (a config's list, paths `methods[i]`) against the model. */
export function methodModelIssues(methods: readonly ResolvedMethodConfig[], model: ModelShapes): ConfigIssue[] {
  return methods.flatMap((m, i) => {
    const path = `methods[${i}]`;
    if (m.method === 'adaptive-svd') return adaptiveSvdModelIssues(m, model.inventory, path);
    if (m.method === 'o-lora') return oLoraModelIssues(m, model, path);
    return [];
  });
}
