/**
 * The method registry: config entry -> Method. The runner asks this module for a method and never names one.
 */
import type { MethodName } from '../../protocol/config';
import type { ResolvedMethodConfig } from '../../protocol/config-resolved';
import { ConfigError } from '../../protocol/errors';
import type { Method } from './method';
import { SeqFt } from './seqft';
import { AdaptiveSvd } from './adaptive-svd';
import { OLora } from './olora';
import { Ewc } from './ewc';
import { Replay } from './replay';
import { Lwf } from './lwf';
import { Mtl } from './mtl';
import { PerTask } from './per-task';

/** Every method takes its resolved config entry (options complete) and the entry's JSON path for errors. */
type Factories = { [N in MethodName]?: (cfg: Extract<ResolvedMethodConfig, { method: N }>, path: string) => Method };

const FACTORIES: Factories = {
  seqft: () => new SeqFt(),
  'adaptive-svd': (cfg, path) => new AdaptiveSvd(cfg, path),
  'o-lora': (cfg, path) => new OLora(cfg, path),
  ewc: (cfg) => new Ewc(cfg),
  replay: (cfg) => new Replay(cfg),
  lwf: (cfg) => new Lwf(cfg),
  mtl: () => new Mtl(),
  'per-task': () => new PerTask(),
};

export function createMethod(cfg: ResolvedMethodConfig, path: string): Method {
  const factory = FACTORIES[cfg.method];
  if (!factory) {
    throw new ConfigError([
      {
        path: `${path}.method`,
        message: `method '${cfg.method}' is not available in this build`,
        expected: Object.keys(FACTORIES).join(' | '),
        actual: cfg.method,
      },
    ]);
  }
  // The map is keyed by the method name, so the entry's type matches its factory's.
  return (factory as (cfg: ResolvedMethodConfig, path: string) => Method)(cfg, path);
}

export function availableMethods(): string[] {
  return Object.keys(FACTORIES);
}
