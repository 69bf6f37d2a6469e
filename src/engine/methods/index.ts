/**
 * The method registry: config entry -> Method. The runner asks this module for a method and never names one.
 */
import type { MethodConfig } from '../../protocol/config';
import { ConfigError } from '../../protocol/config-validate';
import type { Method } from './method';
import { SeqFt } from './seqft';
import { AdaptiveSvd } from './adaptive-svd';
import { OLora } from './olora';
import { Ewc } from './ewc';
import { Replay } from './replay';
import { Lwf } from './lwf';
import { Mtl } from './mtl';
import { PerTask } from './per-task';

type Factory = (cfg: MethodConfig, path: string) => Method;

const FACTORIES: Partial<Record<MethodConfig['method'], Factory>> = {
  seqft: () => new SeqFt(),
  'adaptive-svd': (cfg, path) => new AdaptiveSvd(cfg as Extract<MethodConfig, { method: 'adaptive-svd' }>, path),
  'o-lora': (cfg, path) => new OLora(cfg as Extract<MethodConfig, { method: 'o-lora' }>, path),
  ewc: (cfg) => new Ewc(cfg as Extract<MethodConfig, { method: 'ewc' }>),
  replay: (cfg) => new Replay(cfg as Extract<MethodConfig, { method: 'replay' }>),
  lwf: (cfg) => new Lwf(cfg as Extract<MethodConfig, { method: 'lwf' }>),
  mtl: () => new Mtl(),
  'per-task': () => new PerTask(),
};

export function createMethod(cfg: MethodConfig, path: string): Method {
  const factory = FACTORIES[cfg.method];
  if (!factory) {
    throw new ConfigError([{ path: `${path}.method`, message: `method '${cfg.method}' is not available in this build`, expected: Object.keys(FACTORIES).join(' | '), actual: cfg.method }]);
  }
  return factory(cfg, path);
}

export function availableMethods(): string[] {
  return Object.keys(FACTORIES);
}
