/**
 * A small run in this process: a config on builtin:tiny-llama (cpu, one sentiment task, seqft, one epoch unless
 * `over` says otherwise) validated as `sculpt run` validates it, its run folder made, and the trainer's
 * runFolder run on it, every event collected. For tests of what a run leaves behind.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { join } from 'node:path';
import type { ExperimentConfig } from '../../src/protocol/config';
import { validateConfig } from '../../src/protocol/config-validate';
import type { SculptEvent } from '../../src/protocol/events';
import type { RunOutcome } from '../../src/engine/runner';
import { createRunDir } from '../../src/runs/run-dir';
import { runFolder, type RunFolderOptions } from '../../src/trainer/run';
import { tempDir } from '../unit/models-util';

export interface TinyRun {
  dir: string;
  events: SculptEvent[];
  outcome: RunOutcome;
}

export async function tinyRun(
  name: string,
  over: Partial<ExperimentConfig> = {},
  opts: Partial<RunFolderOptions> = {},
): Promise<TinyRun> {
  const work = tempDir(name); // removed when the test process exits
  const raw = {
    name,
    model: 'builtin:tiny-llama',
    backend: 'cpu',
    tasks: [{ name: 'sentiment', source: { builtin: 'tiny/sentiment' }, trainLimit: 16, testLimit: 4 }],
    methods: [{ method: 'seqft' }],
    training: { epochs: 1, batchSize: 4 },
    output: join(work, 'runs'),
    ...over,
  };
  const { config, issues } = validateConfig(raw, { file: join(work, `${name}.sculpt.json`), path, exists: existsSync });
  assert.ok(config, JSON.stringify(issues));
  const dir = createRunDir(config, { methodIndex: 0, order: 0 });
  const events: SculptEvent[] = [];
  const outcome = await runFolder(dir, {
    shouldStop: () => false,
    ...opts,
    echo: (e) => {
      events.push(e);
      opts.echo?.(e);
    },
  });
  return { dir, events, outcome };
}
