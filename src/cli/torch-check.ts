/**
 * The torch engine's Python, as `sculpt validate` checks it (text and `--json` alike): for a config with
 * `"engine": "torch"` the probe (src/trainer/torch/probe.ts) runs its Python once and says what it found; its
 * problems are config issues at the torch field they concern. A tfjs config starts no Python.
 */
import type { ResolvedConfig } from '../protocol/config-resolved';
import { ConfigError, type ConfigIssue } from '../protocol/config-validate';
import { probeTorch, type ProbeOptions, type TorchProbe } from '../trainer/torch/probe';

export type TorchCheck = { ok: true; probe?: TorchProbe; text?: string } | { ok: false; issues: ConfigIssue[] };

/** The probe's verdict on `config` (whose file is `file`); nothing to say for the tfjs engine. */
export function torchCheck(config: ResolvedConfig, file: string, options: ProbeOptions = {}): TorchCheck {
  if (config.engine !== 'torch') return { ok: true };
  try {
    const probe = probeTorch(config, file, options);
    return { ok: true, probe, text: torchText(probe) };
  } catch (e) {
    if (e instanceof ConfigError) return { ok: false, issues: e.issues };
    throw e;
  }
}

/** "torch 2.13.0+cpu (CPU only): DDP over gloo; FSDP2 available; 1 process on cpu, fp32 (python /x/.venv/bin/python)" */
export function torchText(p: TorchProbe): string {
  return `${p.summary}; ${p.plan} (python ${p.executable})`;
}
