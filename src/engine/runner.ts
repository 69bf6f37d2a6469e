/**
 * The experiment runner: one method on one task order, start to finish (or to a stop), with events.
 *
 * For each task: method.beforeTask -> training (task-trainer.ts: epochs x batches, method hooks inside trainStep) ->
 * method.afterTask -> evaluation on every task (seen and unseen; run-evaluation.ts) = one row of the accuracy matrix,
 * and the same on every task's validation split (`eval.validation`) = one row of the validation matrix, with the
 * per-example predictions `eval.predictions` asks for -> metrics -> checkpoint.
 * Data order is a function of (seed, task, epoch) and everything stateful (weights, optimizer, method, both
 * matrices so far) is in the checkpoint, so a resumed run ends with the same numbers as an uninterrupted one.
 */
import { join } from 'node:path';
import { tf } from './tf';
import type { ResolvedConfig } from '../protocol/config-validate';
import { methodLabel } from '../protocol/config-validate';
import type { EventBody } from '../protocol/events';
import { selectBackend } from './backend';
import { checkModelFolder, loadPretrained, writeModelWeights } from './io/checkpoint';
import { completeFinalModel, startFinalModel } from './io/final-model';
import { WriteFailedError } from './io/write-failure';
import { checkRunInputs } from './run-inputs';
import { paramCounts } from './models/inventory';
import type { CausalLM } from './models/types';
import { createMethod } from './methods';
import type { Method, MethodContext } from './methods/method';
import { Optimizer } from './optim';
import { clearPredictionsFrom } from '../runs/predictions';
import { evaluateAll, hasValidation } from './run-evaluation';
import { metricsAfter, runFinishedBody } from '../runs/metrics';
import { loadTasks, modelDir } from './experiment';
import { RunContext } from './method-context';
import {
  chooseCheckpoint,
  saveCheckpoint,
  toTensors,
  type CheckpointContents,
  type CheckpointMeta,
  type ResumeSource,
  type RunPosition,
} from './run-checkpoint';
import { TaskTrainer } from './task-trainer';
import { assertFiniteWeights } from './finite-tensors';

// Where a diverged loss is detected; the trainer process tells it apart from other failures.
export { DivergenceError } from './step-reporter';

export interface RunSpec {
  config: ResolvedConfig;
  methodIndex: number;
  /** 0 = the tasks as listed; i >= 1 = config.orders[i-1]. */
  order: number;
  runDir: string;
}

export interface RunHooks {
  emit(body: EventBody): void;
  /** Polled between steps; true asks the run to checkpoint and stop. */
  shouldStop(): boolean;
  /** Sequence number of the last event written (stored in checkpoints). */
  lastSeq(): number;
  /**
   * What the run is doing before its first event: the trainer sends it to the host as `alive` notices, so that
   * a host's start-up timeout does not end a run that is loading a large model or tokenizing a large dataset.
   */
  phase?(what: string): void;
}

export type RunOutcome = 'finished' | 'stopped' | 'failed';

export async function runExperiment(spec: RunSpec, hooks: RunHooks, from?: ResumeSource): Promise<RunOutcome> {
  const { config } = spec;
  const phase = (what: string) => hooks.phase?.(what);
  phase(config.backend === 'auto' ? 'choosing the backend' : `starting the ${config.backend} backend`);
  const backend = await selectBackend(config.backend);
  const dataWarnings: { message: string; code: string }[] = [];
  const warnData = (message: string, code: string) => dataWarnings.push({ message, code });
  phase('reading the tasks');
  const tasks = loadTasks(config, spec.order, warnData);
  const dir = modelDir(config);
  // The tokenizer and the data measured against it, as `sculpt validate` checks them: before a weight is read.
  phase('tokenizing the tasks and checking them against the model');
  const tok = checkRunInputs(config, tasks, checkModelFolder(dir).inventory, warnData);
  phase('loading the model');
  const model = loadPretrained(dir);
  const training = config.training;
  // The newest checkpoint that passes every check against this run and this model; nothing is written before.
  let chosen: ReturnType<typeof chooseCheckpoint> | undefined;
  try {
    if (from?.candidates.length) {
      phase('choosing the checkpoint to resume from');
      const expect = {
        tasks: tasks.length,
        epochs: training.epochs,
        optimizer: training.optimizer,
        validation: hasValidation(tasks),
      };
      chosen = chooseCheckpoint(from.candidates, expect, new Map([...model.params].map(([n, v]) => [n, v.shape])));
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  const resume = chosen?.contents;
  const started = Date.now() - (resume?.meta.elapsedMs ?? 0);
  const methodCfg = config.methods[spec.methodIndex];
  const method = createMethod(methodCfg, `methods[${spec.methodIndex}]`);
  const lrPeak = methodCfg.lr ?? training.lr;
  const optimizer = new Optimizer({ name: training.optimizer, weightDecay: training.weightDecay });
  const ctx = new RunContext(model, tok, tasks, config, hooks, spec.runDir);

  try {
    // A NaN in the pretrained weights is a corrupt file, not a learning-rate problem (a resumed run's
    // checkpoint is checked when it is chosen).
    if (!resume) {
      phase('checking that the weights are finite');
      await assertFiniteWeights(dir, model.params);
    }
    const counts = paramCounts(model.inventory);
    hooks.emit({
      type: 'run-started',
      config,
      method: methodLabel(methodCfg),
      tasks: tasks.map((t) => t.name),
      order: spec.order,
      backend: {
        name: backend.name,
        device: backend.device,
        isGpu: backend.isGpu,
        fallbacks: backend.fallbacks,
        ...(backend.matmul ? { matmul: backend.matmul } : {}),
      },
      model: {
        arch: model.arch,
        source: config.model,
        parameters: counts.total,
        trainable: counts.total,
        layers: model.config.numLayers,
        targets: model.inventory.targets.length,
      },
      engine: { name: 'tfjs' },
      ...(resume
        ? {
            resumedFrom: {
              task: resume.meta.position.task,
              step: resume.meta.position.taskStep,
              supersededFrom: resume.meta.seq + 1,
            },
          }
        : from?.restartOf !== undefined
          ? { resumedFrom: { task: 0, step: 0, supersededFrom: from.restartOf } }
          : {}),
    });
    for (const r of chosen?.rejected ?? []) {
      hooks.emit({
        type: 'warning',
        code: 'checkpoint-skipped',
        message: `checkpoint ${r.path} was skipped, resuming from an older one: ${r.reason}`,
      });
    }
    if (resume && !resume.verified) {
      hooks.emit({
        type: 'warning',
        code: 'checkpoint-unverified',
        message: `checkpoint ${resume.path} has no manifest (written by an earlier version): its files were checked for shapes and finite values but not against checksums`,
      });
    }
    for (const w of dataWarnings) hooks.emit({ type: 'warning', message: w.message, code: w.code });
    await method.setup(ctx);

    let pos = startOfTask(0, 0);
    let matrix: number[][] = [];
    let zeroShot: (number | null)[] | null = null;
    // The same on the validation splits; null when the run has none.
    const validating = hasValidation(tasks);
    let validationMatrix: number[][] | null = validating ? [] : null;
    let validationZeroShot: (number | null)[] | null = null;
    if (resume) {
      ({ matrix, zeroShot } = resume.meta);
      if (validating) {
        // checkState made sure a run with validation splits resumes from a checkpoint that has their rows.
        validationMatrix = resume.meta.validationMatrix ?? [];
        validationZeroShot = resume.meta.validationZeroShot ?? null;
      }
      pos = { ...resume.meta.position };
      restoreState(resume, model, optimizer, method, ctx);
    }
    // Predictions of the evaluations to come are the superseded session's (or another run's): gone until redone.
    try {
      clearPredictionsFrom(spec.runDir, resume ? pos.task : -1);
    } catch (e) {
      hooks.emit({
        type: 'warning',
        code: 'predictions-export',
        message: `could not remove the superseded predictions in ${spec.runDir}: ${(e as Error).message}`,
      });
    }
    if (!resume && config.eval.zeroShot) {
      ({ test: zeroShot, validation: validationZeroShot } = await evaluateAll(
        model,
        tok,
        tasks,
        config,
        -1,
        hooks,
        spec.runDir,
      ));
    }

    const checkpoint = async (
      reason: CheckpointMeta['reason'],
      name: string,
      at: RunPosition = pos,
    ): Promise<string> => {
      const meta: CheckpointMeta = {
        format: 1,
        position: { ...at },
        matrix,
        zeroShot,
        ...(validationMatrix ? { validationMatrix, validationZeroShot } : {}),
        seq: hooks.lastSeq(),
        elapsedMs: Date.now() - started,
        optimizer: { name: optimizer.name, step: optimizer.step },
        method: null,
        reason,
        time: Date.now(),
      };
      const ms = method.state();
      meta.method = ms.json;
      const path = await saveCheckpoint(
        spec.runDir,
        name,
        { model: model.params, optimizer: optimizer.state().slots, method: ms.tensors, meta },
        config.checkpoint.keep,
      );
      hooks.emit({ type: 'checkpoint', path, task: at.task, step: at.taskStep, reason });
      return path;
    };
    const lrField = methodCfg.lr === undefined ? 'training.lr' : `methods[${spec.methodIndex}].lr`;
    const trainer = new TaskTrainer({ ctx, method, optimizer, config, lrPeak, lrField, hooks, checkpoint });

    for (; pos.task < tasks.length; pos = startOfTask(pos.task + 1, pos.globalStep)) {
      const task = tasks[pos.task];
      ctx.task = pos.task;
      const taskStart = Date.now();
      if (!pos.trained) {
        const fresh = pos.epoch === 0 && pos.batch === 0;
        if (fresh) {
          optimizer.reset();
          await method.beforeTask?.(ctx);
        }
        const plan = trainer.plan(pos.task);
        if (fresh) {
          const trainableParameters = [...plan.trainable.values()].reduce((n, v) => n + v.size, 0);
          hooks.emit({
            type: 'task-started',
            task: pos.task,
            name: task.name,
            trainExamples: plan.encoded.length,
            steps: plan.totalSteps,
            trainableParameters,
          });
        }
        if ((await trainer.train(pos, plan)) === 'stopped') {
          const path = await checkpoint('stop', `step-${pos.globalStep}`);
          hooks.emit({ type: 'stopped', task: pos.task, step: pos.taskStep, checkpoint: path });
          return 'stopped';
        }
        await method.afterTask?.(ctx);
        pos.trained = true;
      }
      // Methods that keep part of the model outside its variables (O-LoRA's adapters) evaluate through them.
      const overrides = method.weightOverrides?.() ?? null;
      const evalAll = () => evaluateAll(model, tok, tasks, config, pos.task, hooks, spec.runDir);
      const rows = await (overrides?.size ? model.withWeights(overrides, evalAll) : evalAll());
      if (overrides) tf.dispose([...overrides.values()]);
      const row = rows.test;
      matrix = [...matrix.slice(0, pos.task), row];
      const metrics = metricsAfter(matrix, zeroShot);
      if (validationMatrix && rows.validation)
        validationMatrix = [...validationMatrix.slice(0, pos.task), rows.validation];
      hooks.emit({
        type: 'task-finished',
        task: pos.task,
        name: task.name,
        row,
        metrics,
        ...(validationMatrix && rows.validation
          ? { validationRow: rows.validation, validationMetrics: metricsAfter(validationMatrix, validationZeroShot) }
          : {}),
        seconds: (Date.now() - taskStart) / 1000,
      });
      const next = startOfTask(pos.task + 1, pos.globalStep);
      const last = pos.task === tasks.length - 1;
      const stop = !last && hooks.shouldStop();
      let path: string | undefined;
      if (stop || (config.checkpoint.every !== 'never' && !last))
        path = await checkpoint(stop ? 'stop' : 'task', `task-${next.task}`, next);
      if (stop) {
        hooks.emit({ type: 'stopped', task: next.task, step: 0, checkpoint: path });
        return 'stopped';
      }
    }
    if (config.checkpoint.final) await writeFinalModel(model, method, config, spec.runDir);
    hooks.emit(
      runFinishedBody({ matrix, zeroShot, validationMatrix, validationZeroShot }, (Date.now() - started) / 1000),
    );
    return 'finished';
  } finally {
    method.dispose();
    optimizer.dispose();
    model.dispose();
  }
}

/** `<runDir>/model/`: the trained model with the method's changes merged (O-LoRA's pairs), as a HF folder. */
async function writeFinalModel(model: CausalLM, method: Method, config: ResolvedConfig, runDir: string): Promise<void> {
  const staging = startFinalModel(runDir);
  const overrides = method.weightOverrides?.() ?? null;
  const file = join(staging, 'model.safetensors');
  try {
    await writeModelWeights(model, file, overrides);
  } catch (e) {
    throw e instanceof WriteFailedError ? e : new WriteFailedError(file, 'write the final model', e);
  } finally {
    if (overrides) tf.dispose([...overrides.values()]);
  }
  completeFinalModel(config, runDir);
}

/** The position before the first step of `task`. */
function startOfTask(task: number, globalStep: number): RunPosition {
  return { task, epoch: 0, batch: 0, taskStep: 0, globalStep, trained: false };
}

function restoreState(
  cp: CheckpointContents,
  model: CausalLM,
  optimizer: Optimizer,
  method: Method,
  ctx: MethodContext,
): void {
  const weights = toTensors(cp.model);
  for (const [name, v] of model.params) {
    const t = weights.get(name);
    if (!t) throw new Error(`checkpoint ${cp.path}: model.safetensors lacks parameter '${name}'`);
    v.assign(t);
  }
  tf.dispose([...weights.values()]);
  optimizer.load({
    name: cp.meta.optimizer.name as Optimizer['name'],
    step: cp.meta.optimizer.step,
    slots: toTensors(cp.optimizer),
  });
  const methodTensors = toTensors(cp.method);
  method.restore({ tensors: methodTensors, json: cp.meta.method }, ctx);
}
