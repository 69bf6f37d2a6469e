/**
 * A run on the PyTorch engine (docs/torch-engine.md), inside the trainer process: prepares `<runDir>/prepared/`,
 * launches the worker (worker-command.ts), and turns its messages into the events a tfjs run writes, in the
 * same order and through the same hooks, so that the supervisor, the CLI, the extension and the reports cannot
 * tell the engines apart by their logs. This side counts the accuracies, the metrics and the predictions, and
 * runs the divergence checks on the losses; the worker trains, scores and checkpoints. With `checkpoint.final` the
 * worker writes the fine-tuned weights before its `done`, and this side completes `<runDir>/model/` (final-model.ts)
 * before run-finished.
 *
 * Stop: a stop request (the trainer's `shouldStop`) becomes `<runDir>/stop-request`, which the worker reads
 * before each step. Resume: resume.ts picks the newest committed worker checkpoint; the worker gets it as
 * `--resume`, and the matrices so far come from the log. Returns the outcome as a tfjs run does; a failure is
 * thrown (an input error, a TorchWorkerError, a DivergenceError) and becomes the run's `error` event.
 *
 * Start-up: run-started waits for the worker's `hello`, which comes after it has loaded the model (and, under
 * torchrun, joined its process group): minutes for a 7B checkpoint. Until then the host hears `alive` notices
 * (../alive.ts) with the phase, so that its start-up timeout does not kill a trainer that is only loading.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { ConfigError } from '../../protocol/errors';
import { WriteFailedError } from '../../engine/io/write-failure';
import { completeFinalModel, finalModelStaging } from '../../engine/io/final-model';
import { methodLabel } from '../../protocol/config-validate';
import type { EventBody, SculptEvent } from '../../protocol/events';
import { stepEventOf, workerMessageIssue, type WorkerMessage } from '../../protocol/torch-worker';
import type { RunHooks, RunOutcome, RunSpec } from '../../engine/runner';
import { reportRanks } from '../../engine/method-context';
import { hasValidation } from '../../engine/run-evaluation';
import { childPath, checkpointsDir } from '../../engine/run-checkpoint';
import { clearPredictionsFrom } from '../../runs/predictions';
import { metricsAfter, runFinishedBody } from '../../runs/metrics';
import type { Heartbeat } from '../alive';
import { EvalRows } from './eval-rows';
import { LossChecks } from './loss-checks';
import { prepareRun } from './prepare';
import { probeTorch } from './probe';
import { torchResume } from './resume';
import { LAUNCH_FILE, nextLaunch, writeLaunch } from './launch';
import { findPythonDir, workerCommand } from './worker-command';
import { TorchWorkerError, describeExit, exitError } from './worker-error';
import { startWorker, type WorkerExit } from './worker-process';

/** The file a stop request becomes; the worker's ranks agree on it at their next step. */
export const STOP_REQUEST_FILE = 'stop-request';
const STOP_POLL_MS = 100;

/**
 * `alive`: the trainer's heartbeat (runFolder starts it), told each start-up phase here and stopped at the
 * worker's hello, and at the latest when this returns.
 */
export async function runTorch(
  given: RunSpec,
  hooks: RunHooks,
  log: readonly SculptEvent[],
  alive: Heartbeat,
): Promise<RunOutcome> {
  alive.phase('checking Python and torch');
  try {
    return await runSession(given, hooks, log, alive);
  } finally {
    alive.stop();
  }
}

async function runSession(
  given: RunSpec,
  hooks: RunHooks,
  log: readonly SculptEvent[],
  alive: Heartbeat,
): Promise<RunOutcome> {
  const sessionStart = Date.now();
  // Absolute: the worker runs in the run folder and the manifest names it.
  const spec = { ...given, runDir: resolvePath(given.runDir) };
  const { config, runDir } = spec;
  const torch = config.torch;
  // The trainer's machine hosts the rendezvous and global rank 0, whose messages it reads: with several machines
  // it is node 0, and the others start their workers with `sculpt join`.
  if (torch.nnodes > 1 && torch.nodeRank !== 0) {
    throw new ConfigError([
      {
        path: 'torch.nodeRank',
        message: `is ${torch.nodeRank}: the machine that runs the experiment (sculpt run, sculpt resume) is node 0; run \`sculpt join <experiment or run folder> --node-rank ${torch.nodeRank}\` on node ${torch.nodeRank} instead`,
        expected: '0',
        actual: torch.nodeRank,
      },
    ]);
  }
  // A missing Python, torch or GPU is an input error at the torch field to fix, before any work.
  probeTorch(config);
  alive.phase("preparing the run's data");
  const prepared = await prepareRun(spec);
  const { tasks, manifest } = prepared;
  const validating = hasValidation(tasks);
  const resume = torchResume(runDir, log, { tasks: tasks.length, validation: validating, mode: config.eval.modes[0] });
  const pythonDir = findPythonDir(__dirname);
  // Several machines: the other nodes start this same launch from launch.json (sculpt join).
  const launch = torch.nnodes > 1 ? nextLaunch(runDir, { torch, resume: resume.checkpoint?.path ?? null, log }) : null;
  const cmd = workerCommand({
    torch,
    runDir,
    resume: resume.checkpoint?.path,
    rdzvId: launch?.rdzvId,
    pythonDir,
    repo: dirname(pythonDir),
    env: process.env,
  });

  const methodCfg = config.methods[spec.methodIndex];
  let { matrix, zeroShot, validationMatrix, validationZeroShot } = resume;
  const zeroShotDue = !resume.checkpoint && config.eval.zeroShot;
  const rows = new EvalRows({ config, tasks, manifest, tok: prepared.tok, runDir, emit: hooks.emit });
  const losses = new LossChecks(config, spec.methodIndex, manifest, tasks);
  let started = false;
  const early: WorkerMessage[] = [];
  let taskStart = Date.now();
  let outcome: RunOutcome | null = null;
  // A tfjs run reports a task's boundary work (ranks, the method's warnings) before its task-started; the worker
  // may send them after it (docs/torch-engine.md's order): task-started waits for the first other message.
  let taskStarted: EventBody | null = null;

  const flushTaskStarted = () => {
    if (taskStarted) hooks.emit(taskStarted);
    taskStarted = null;
  };

  const handle = (m: WorkerMessage): void => {
    if (outcome) {
      // The run's last event is written; nothing may follow it in the log.
      console.error(`the PyTorch worker sent '${m.type}' after the run ended (${outcome}); ignored`);
      return;
    }
    if (m.type !== 'ranks' && m.type !== 'warning') flushTaskStarted();
    if (!started && m.type !== 'hello' && m.type !== 'error') {
      if (m.type !== 'warning') throw TorchWorkerError.protocol(`'${m.type}' arrived before 'hello'`);
      early.push(m);
      return;
    }
    switch (m.type) {
      case 'hello': {
        if (started) throw TorchWorkerError.protocol("a second 'hello'");
        started = true;
        alive.stop();
        hooks.emit({
          type: 'run-started',
          config,
          method: methodLabel(methodCfg),
          tasks: tasks.map((t) => t.name),
          order: spec.order,
          backend: {
            name: 'torch',
            device: m.deviceName ? `${m.device} (${m.deviceName})` : m.device,
            isGpu: m.isGpu,
            fallbacks: [],
          },
          model: {
            arch: manifest.model.arch,
            source: config.model,
            parameters: m.parameters,
            trainable: m.parameters,
            layers: m.layers,
            targets: m.targets,
          },
          engine: { name: 'torch', version: m.torch, world: m.world, shard: m.shard, precision: m.precision },
          ...(resume.resumedFrom ? { resumedFrom: resume.resumedFrom } : {}),
        });
        for (const why of resume.skipped)
          hooks.emit({ type: 'warning', code: 'checkpoint-skipped', message: `${why}; resuming from an older one` });
        for (const w of prepared.warnings) hooks.emit({ type: 'warning', message: w.message, code: w.code });
        for (const w of early.splice(0)) handle(w);
        try {
          clearPredictionsFrom(runDir, resume.checkpoint ? resume.checkpoint.event.task : -1);
        } catch (e) {
          hooks.emit({
            type: 'warning',
            code: 'predictions-export',
            message: `could not remove the superseded predictions in ${runDir}: ${(e as Error).message}`,
          });
        }
        taskStart = Date.now();
        return;
      }
      case 'task-started': {
        const t = taskOf(m.task);
        taskStart = Date.now();
        taskStarted = {
          type: 'task-started',
          task: t.index,
          name: t.name,
          trainExamples: manifest.tasks[t.index].train.examples,
          steps: manifest.tasks[t.index].steps,
          trainableParameters: m.trainableParameters,
        };
        return;
      }
      case 'step':
        losses.check(m);
        hooks.emit(stepEventOf(m));
        return;
      case 'ranks':
        reportRanks(hooks, runDir, { ...m, type: 'ranks' });
        return;
      case 'scores': {
        const row = rows.add(m, zeroShotDue && zeroShot === null ? -1 : matrix.length);
        if (!row) return;
        if (row.afterTask < 0) {
          zeroShot = row.test;
          validationZeroShot = row.validation;
        } else {
          const t = tasks[row.afterTask];
          matrix = [...matrix.slice(0, t.index), row.test];
          if (validationMatrix && row.validation)
            validationMatrix = [...validationMatrix.slice(0, t.index), row.validation];
          hooks.emit({
            type: 'task-finished',
            task: t.index,
            name: t.name,
            row: row.test,
            metrics: metricsAfter(matrix, zeroShot),
            ...(validationMatrix && row.validation
              ? { validationRow: row.validation, validationMetrics: metricsAfter(validationMatrix, validationZeroShot) }
              : {}),
            seconds: (Date.now() - taskStart) / 1000,
          });
          taskStart = Date.now();
        }
        return;
      }
      case 'checkpoint':
        hooks.emit({ type: 'checkpoint', path: checkpointPath(m.path), task: m.task, step: m.step, reason: m.reason });
        return;
      case 'warning':
        hooks.emit({ type: 'warning', message: m.message, ...(m.code ? { code: m.code } : {}) });
        return;
      case 'stopped':
        hooks.emit({
          type: 'stopped',
          task: m.task,
          step: m.step,
          ...(m.checkpoint ? { checkpoint: checkpointPath(m.checkpoint) } : {}),
        });
        outcome = 'stopped';
        return;
      case 'done':
        if (matrix.length !== tasks.length || rows.open)
          throw TorchWorkerError.protocol(`'done' after ${matrix.length} of ${tasks.length} evaluated tasks`);
        // The worker has written the fine-tuned model's weights (manifest.finalModel) before its `done`; the
        // folder is made whole before run-finished, so a finished run has its model. A failure is a failed write.
        if (manifest.finalModel) {
          const weights = join(finalModelStaging(runDir), 'model.safetensors');
          if (!existsSync(weights))
            throw TorchWorkerError.protocol(`'done' without the final model's weights (${weights} is missing)`);
          completeFinalModel(config, runDir);
        }
        hooks.emit(
          runFinishedBody(
            { matrix, zeroShot, validationMatrix, validationZeroShot },
            (resume.elapsedMs + Date.now() - sessionStart) / 1000,
          ),
        );
        outcome = 'finished';
        return;
      case 'error':
        alive.stop();
        hooks.emit({
          type: 'error',
          message: m.message,
          ...(m.where ? { where: m.where } : {}),
          ...(m.hint ? { hint: m.hint } : {}),
        });
        outcome = 'failed';
        return;
    }
  };
  const taskOf = (index: number) => {
    const t = tasks[index];
    if (!t) throw TorchWorkerError.protocol(`task ${index} does not exist (the run has tasks 0..${tasks.length - 1})`);
    return t;
  };
  /** A checkpoint path the worker sent as the event gives it: absolute, a folder of the run's checkpoints/. */
  const checkpointPath = (given: string): string => {
    const root = checkpointsDir(runDir);
    const full = resolvePath(runDir, given);
    if (dirname(full) !== root)
      throw TorchWorkerError.protocol(`checkpoint path '${given}' is not a folder checkpoints/<name> of the run`);
    return childPath(root, basename(full), given);
  };

  // A stop request left by an earlier session must not stop this one.
  const stopFile = join(runDir, STOP_REQUEST_FILE);
  rmSync(stopFile, { force: true });
  let failure: unknown = null;
  alive.phase(
    cmd.world > 1
      ? `loading the model in the PyTorch worker (${cmd.world} processes under torchrun)`
      : 'loading the model in the PyTorch worker',
  );
  if (launch) {
    try {
      writeLaunch(runDir, launch);
    } catch (e) {
      throw new WriteFailedError(join(runDir, LAUNCH_FILE), 'write the launch record the other nodes join to', e);
    }
  }
  const worker = startWorker(cmd, runDir, (json) => {
    if (failure) return;
    try {
      let m: unknown;
      try {
        m = JSON.parse(json);
      } catch {
        throw TorchWorkerError.protocol(`a message line is not JSON: ${json.slice(0, 200)}`);
      }
      const issue = workerMessageIssue(m);
      if (issue) throw TorchWorkerError.protocol(`${issue} (${json.slice(0, 200)})`);
      handle(m as WorkerMessage);
    } catch (e) {
      failure = e;
      alive.stop();
      worker.terminate();
    }
  });
  let stopWritten = false;
  const poll = setInterval(() => {
    if (stopWritten || !hooks.shouldStop()) return;
    stopWritten = true;
    try {
      writeFileSync(stopFile, `${process.pid}\n`);
    } catch (e) {
      console.error(`could not write ${stopFile} to stop the PyTorch worker: ${(e as Error).message}`);
      worker.terminate();
    }
  }, STOP_POLL_MS);
  let exit: WorkerExit;
  try {
    exit = await worker.exited;
  } finally {
    alive.stop();
    clearInterval(poll);
    rmSync(stopFile, { force: true });
  }
  if (failure) throw failure;
  flushTaskStarted();
  if (outcome) {
    if (exit.code !== 0 && outcome !== 'failed')
      console.error(`the PyTorch worker ended the run (${outcome}) but exited ${describeExit(exit)}`);
    return outcome;
  }
  throw exitError(exit, cmd, worker.tail(), runDir);
}
