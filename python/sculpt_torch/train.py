"""The worker's run: src/engine/runner.ts and src/engine/task-trainer.ts over the prepared plan.

    hello -> zero-shot scores (eval.zeroShot, not on resume) -> per task:
        [fresh task: optimizer reset, method.before_task] -> method.trainable -> task-started (then the ranks and
        warnings before_task reported) -> epochs[e][b] batches, one optimizer step each, step messages every
        stepEventInterval steps, checkpoints by the `checkpoint` policy, the stop request honoured after each
        step -> method.after_task -> scores of every task and split -> checkpoint `task` (not after the last)
    -> the fine-tuned model's weights (manifest finalModel, checkpoint.final) -> done

One optimizer step (train-step.ts): Σ token CE of this rank's rows / labelled tokens of the whole batch
(+ extra_loss / world) -> backward -> gradients summed over ranks -> global-norm clipping -> transform_gradients ->
optimizer step with the manifest's lr of the step -> after_step.
"""
from __future__ import annotations

import math
import os
import platform
import random
import sys
import time
import traceback
from typing import Any

import numpy as np
import torch

from .checkpoint import (CheckpointError, Position, load_checkpoint, model_tensors, prune, read_meta, save_checkpoint,
                         save_final_model)
from .data import Example, build_batch, placeholder_batch, rank_share, read_examples, read_prompts
from .distributed import SetupError, init_distributed
from .evaluate import Scorer
from .manifest import TaskSpec, load_manifest
from .methods import create_method
from .methods.base import Batch, MethodContext
from .model import layer_count, load_model, parameter_count, token_loss_sum
from .optim import Optimizer, clip_by_global_norm
from .protocol import Channel

STOP_FILE = "stop-request"


class Diverged(RuntimeError):
    def __init__(self, message: str, where: str, hint: str):
        super().__init__(message)
        self.where = where
        self.hint = hint


def memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def count_targets(model) -> int:
    """The method target matrices (sculpt_torch.targets), 0 while that module does not exist."""
    try:
        from .targets import target_matrices
    except ModuleNotFoundError as e:
        if e.name and e.name.endswith("targets"):
            return 0
        raise
    return len(list(target_matrices(model)))


class StepWindow:
    """The steps since the last step message: losses stay tensors until a flush reads them all at once."""

    def __init__(self):
        self.losses: list[torch.Tensor] = []
        self.terms: list[dict[str, torch.Tensor]] = []
        self.tokens = 0
        self.started = time.perf_counter()

    def add(self, loss: torch.Tensor, terms: dict[str, torch.Tensor], tokens: int) -> None:
        self.losses.append(loss)
        self.terms.append(terms)
        self.tokens += tokens


class Worker:
    def __init__(self, run_dir: str, resume: str | None = None, channel: Channel | None = None):
        self.run_dir = os.path.abspath(run_dir)
        self.resume = resume
        self.channel = channel
        self.where = "start-up"
        self._held: list[tuple[str, dict[str, Any]]] | None = None
        self._written: list[str] = []
        self._examples: dict[str, list[Example]] = {}
        self._prompts: dict[str, list[tuple[int, ...]]] = {}

    # ---- messages ----

    def send(self, kind: str, **fields: Any) -> None:
        if self._held is not None:
            self._held.append((kind, fields))
        else:
            self.channel.send(kind, **fields)

    def _hold(self) -> None:
        """Keeps what the method reports (ranks, warnings) until `_release`: a task's `ranks` come after its
        `task-started`, which needs the trainable set the method chooses after its boundary work."""
        self._held = []

    def _release(self) -> None:
        held, self._held = self._held or [], None
        for kind, fields in held:
            self.channel.send(kind, **fields)

    # ---- entry ----

    def run(self) -> int:
        """Runs to the end, a stop or an error; the process exit code (0 done or stopped, 1 failed)."""
        dist = None
        clean = False
        try:
            self.manifest = load_manifest(self.run_dir)
            t = self.manifest.torch
            dist = self.dist = init_distributed(t.device, t.shard, t.precision)
            if self.channel is None:
                self.channel = Channel(rank=dist.rank)
            else:
                self.channel.rank = dist.rank
            code = self._run()
            clean = True
            return code
        except BaseException as e:  # every failure becomes an `error` message, then the process exits 1
            if isinstance(e, SystemExit):
                raise
            if self.channel is None:
                self.channel = Channel(rank=dist.rank if dist else int(os.environ.get("RANK", "0") or 0))
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            self._release()  # what the method reported before it failed is still true
            hint = getattr(e, "hint", None)
            where = getattr(e, "where", None) or self.where
            message = str(e) or type(e).__name__
            if isinstance(e, KeyboardInterrupt):
                message = "interrupted"
            self.channel.send("error", message=message, where=where, **({"hint": hint} if hint else {}))
            return 1
        finally:
            if dist is not None:
                dist.close(clean)

    def _run(self) -> int:
        m, dist = self.manifest, self.dist
        self._check_same_start()
        self.kind = m.model.kind
        self.pad = m.tokens.pad
        self.where = "loading the model"
        # The same seed on every rank: a method's random initialisation must give the same replica everywhere.
        torch.manual_seed(m.seed)
        random.seed(m.seed)
        np.random.seed(m.seed % (1 << 32))
        model = load_model(m.model.dir, self.kind, dist.device)
        emb = model.get_input_embeddings()
        if emb is not None and emb.num_embeddings < m.model.vocab_size:
            raise SetupError(
                f"{m.path}: model.vocabSize is {m.model.vocab_size} but {m.model.dir} embeds {emb.num_embeddings} "
                "token ids: the prepared data is for another tokenizer"
            )
        self.model = dist.shard_model(model)
        # The model's own parameters, before a method adds its own (O-LoRA's pairs): what the final model holds.
        self.model_keys = list(model_tensors(self.model))
        self.optimizer = Optimizer(m.training.optimizer, weight_decay=m.training.weight_decay)
        self.method = create_method(m.method)
        self.scorer = Scorer(self.model, self.kind, self.pad, m.tokens.eos, dist)
        self.ctx = MethodContext(
            model=self.model, manifest=m, config=m.method, task=0, seed=m.seed, device=dist.device,
            rank=dist.rank, world=dist.world, calibration_batches=self.calibration_batches,
            report_ranks=self.report_ranks, warn=self.warn, shard=dist.shard, mesh=dist.mesh, dist=dist,
        )
        self.send(
            "hello",
            torch=torch.__version__,
            transformers=_version("transformers"),
            device=str(dist.device),
            deviceName=torch.cuda.get_device_name(dist.device) if dist.device.type == "cuda"
            else (platform.processor() or platform.machine() or "cpu"),
            isGpu=dist.device.type == "cuda",
            world=dist.world,
            shard=dist.shard,
            precision=dist.precision,
            parameters=parameter_count(self.model),
            layers=layer_count(self.model),
            targets=count_targets(self.model),
        )
        if dist.note:
            self.warn(dist.note, "torch-shard")
        self.where = "method setup"
        self.method.setup(self.ctx)
        self.dist.reshard(self.model)
        pos = Position()
        if self.resume:
            pos = self._restore(self._resume_path(self.resume))
        elif m.eval.zero_shot:
            self.evaluate_all(-1)

        tasks = m.tasks
        while pos.task < len(tasks):
            spec = tasks[pos.task]
            self.ctx.task = pos.task
            fresh = pos.epoch == 0 and pos.batch == 0 and pos.taskStep == 0
            self.where = f"task {pos.task} ({spec.name}), before training"
            if fresh:
                self.optimizer.reset()
                self._hold()
                self.method.before_task(self.ctx)
                self.dist.reshard(self.model)
                trainable = self._trainable()
                reported, self._held = self._held, None
                self.send("task-started", task=pos.task,
                          trainableParameters=sum(p.numel() for p in trainable.values()))
                self._held = reported
                self._release()
            else:
                trainable = self._trainable()
            if self.train(pos, spec, trainable) == "stopped":
                path = self.checkpoint("stop", pos)
                self.send("stopped", task=pos.task, step=pos.taskStep, checkpoint=path)
                return 0
            self.where = f"task {pos.task} ({spec.name}), after training"
            self.method.after_task(self.ctx)
            self.dist.reshard(self.model)
            self.evaluate_all(pos.task)
            nxt = Position.start_of(pos.task + 1, pos.globalStep)
            last = pos.task == len(tasks) - 1
            stop = not last and self.should_stop()
            path = None
            if stop or (m.checkpoint.every != "never" and not last):
                path = self.checkpoint("stop" if stop else "task", nxt)
            if stop:
                self.send("stopped", task=nxt.task, step=0, checkpoint=path)
                return 0
            pos = nxt
        if dist.rank == 0:
            self._written = prune(self.run_dir, self._written, m.checkpoint.keep)
        if m.final_model:
            self.save_final_model(m.final_model)
        self.send("done")
        return 0

    # ---- training ----

    def _trainable(self) -> dict[str, torch.nn.Parameter]:
        trainable = self.method.trainable(self.ctx)
        chosen = {id(p) for p in trainable.values()}
        for p in self.model.parameters():
            p.requires_grad_(id(p) in chosen)
        for p in trainable.values():
            p.requires_grad_(True)
        return trainable

    def train(self, pos: Position, spec: TaskSpec, trainable: dict[str, torch.nn.Parameter]) -> str:
        """Trains task `pos.task` from `pos` on, advancing `pos`; 'stopped' when a stop was requested."""
        m = self.manifest
        every = m.checkpoint.every
        window = StepWindow()
        train = self._train_examples(spec)
        while pos.epoch < len(spec.epochs):
            batches = spec.epochs[pos.epoch]
            while pos.batch < len(batches):
                self.where = f"task {pos.task} ({spec.name}), step {pos.taskStep + 1}"
                idx = batches[pos.batch]
                loss, terms = self.step(train, idx, spec.lr[pos.taskStep], trainable)
                window.add(loss, terms, sum(len(train[i].prompt) + len(train[i].answer) for i in idx))
                pos.batch += 1
                pos.taskStep += 1
                pos.globalStep += 1
                if pos.taskStep % m.training.step_event_interval == 0 or pos.taskStep == spec.steps:
                    window = self.flush(window, pos, spec)
                if isinstance(every, int) and pos.globalStep % every == 0:
                    window = self.flush(window, pos, spec)
                    self.checkpoint("steps", pos)
                if self.should_stop():
                    self.flush(window, pos, spec)
                    return "stopped"
            pos.epoch += 1
            pos.batch = 0
            if every == "epoch" and pos.epoch < len(spec.epochs):
                window = self.flush(window, pos, spec)
                self.checkpoint("epoch", pos)
        self.flush(window, pos, spec)
        return "done"

    def step(self, train: list[Example], idx: list[int], lr: float,
             trainable: dict[str, torch.nn.Parameter]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        dist, m = self.dist, self.manifest
        rows = [train[i] for i in rank_share(idx, dist.rank, dist.world)]
        labelled = sum(len(train[i].answer) for i in idx)
        batch = build_batch(self.kind, rows, self.pad, dist.device) if rows else placeholder_batch(
            self.kind, self.pad, dist.device)
        batch.global_labelled, batch.global_rows = labelled, len(idx)
        with dist.autocast():
            total = token_loss_sum(self.model, batch, self.kind, self.pad)
            loss = total / labelled if labelled else total * 0.0
            extra = self.method.extra_loss(batch, self.ctx)
        terms: dict[str, torch.Tensor] = {}
        objective = loss
        if extra is not None:
            extra_total, extra_terms = extra
            objective = loss + extra_total / dist.world
            terms = {k: v.detach().float() / dist.world for k, v in extra_terms.items()}
        objective.backward()
        dist.sync_grads(trainable)
        grads = {n: p.grad for n, p in trainable.items() if p.grad is not None}
        clip_by_global_norm(grads, m.training.grad_clip, dist.reduce_sharded)
        self.method.transform_gradients(trainable, self.ctx)
        grads = {n: p.grad for n, p in trainable.items() if p.grad is not None}
        self.optimizer.apply(grads, trainable, lr)
        self.method.after_step(trainable, self.ctx)
        for p in trainable.values():
            p.grad = None
        return objective.detach().float(), terms

    def flush(self, window: StepWindow, pos: Position, spec: TaskSpec) -> StepWindow:
        """Sends one step message for the steps held (the ranks' shares summed); returns a fresh window."""
        if not window.losses:
            return window
        dist = self.dist
        values = dist.all_reduce_sum(torch.stack(window.losses)).tolist()
        names = sorted({k for t in window.terms for k in t})
        terms = None
        if names:
            zero = torch.zeros((), device=dist.device)
            sums = torch.stack([torch.stack([t.get(n, zero) for t in window.terms]).sum() for n in names])
            sums = dist.all_reduce_sum(sums) / len(window.terms)
            terms = dict(zip(names, sums.tolist()))
        seconds = time.perf_counter() - window.started
        diverged = [i for i, v in enumerate(values) if not math.isfinite(v)]
        # `losses`: every step's loss since the last message, for the trainer's divergence checks (the tfjs
        # engine checks each step); a non-finite one is null, and so is the mean then.
        self.send(
            "step",
            task=pos.task,
            step=pos.taskStep,
            globalStep=pos.globalStep,
            loss=sum(values) / len(values),
            lr=spec.lr[pos.taskStep - 1],
            tokensPerSecond=window.tokens / max(seconds, 1e-9),
            progress=pos.taskStep / spec.steps if spec.steps else 1.0,
            memoryBytes=memory_bytes(dist.device),
            # A non-finite term comes with a non-finite loss, which ends the run: no terms then.
            **({"terms": terms} if terms and not diverged else {}),
            losses=values,
        )
        if diverged:
            step = pos.taskStep - len(values) + 1 + diverged[0]
            raise Diverged(
                f"the training loss of task {pos.task} ({spec.name}) is not finite ({values[diverged[0]]}) at step "
                f"{step}",
                f"task {pos.task} ({spec.name}), step {step}",
                "Lower the learning rate"
                + (" or enable gradient clipping (training.gradClip)" if self.manifest.training.grad_clip == 0
                   else "")
                + f": lr at that step is {spec.lr[step - 1]}.",
            )
        return StepWindow()

    def should_stop(self) -> bool:
        """Rank 0 looks for the stop request; every rank gets its answer (the same step for all)."""
        found = self.dist.rank == 0 and os.path.exists(os.path.join(self.run_dir, STOP_FILE))
        return self.dist.any(found)

    # ---- data ----

    def _train_examples(self, spec: TaskSpec) -> list[Example]:
        key = spec.train.file
        if key not in self._examples:
            self._examples = {key: read_examples(self.manifest.file(key), self.kind, self.manifest.model.vocab_size,
                                                 spec.train.examples)}
        return self._examples[key]

    def calibration_batches(self, task: int, examples: int, batch_size: int | None = None) -> list[Batch]:
        spec = self.manifest.tasks[task]
        if spec.calibration is None:
            raise ValueError(f"{self.manifest.path}: tasks[{task}].calibration is missing; the method needs it")
        items = read_examples(self.manifest.file(spec.calibration), self.kind, self.manifest.model.vocab_size)
        items = items[: max(0, examples)]
        size = batch_size or self.manifest.training.eval_batch_size
        return [build_batch(self.kind, items[i : i + size], self.pad, self.dist.device)
                for i in range(0, len(items), size)]

    def report_ranks(self, policy: str, matrices: list[dict], seconds: float, warnings: list[str] | None = None):
        self.send("ranks", beforeTask=self.ctx.task, policy=policy, matrices=matrices, seconds=seconds,
                  **({"warnings": list(warnings)} if warnings else {}))

    def warn(self, message: str, code: str | None = None) -> None:
        self.send("warning", message=message, **({"code": code} if code else {}))

    # ---- evaluation ----

    def evaluate_all(self, after_task: int) -> None:
        m = self.manifest
        self.where = "zero-shot evaluation" if after_task < 0 else f"evaluation after task {after_task}"
        bs = m.eval.batch_size
        for spec in m.tasks:
            for ev in spec.evaluations:
                prompts = self._prompts.get(ev.file)
                if prompts is None:
                    prompts = self._prompts[ev.file] = read_prompts(m.file(ev.file), self.kind, m.model.vocab_size)
                if ev.examples is not None and len(prompts) != ev.examples:
                    raise ValueError(f"{m.file(ev.file)}: {len(prompts)} prompts, but the manifest says {ev.examples}")
                head = dict(afterTask=after_task, task=spec.index, split=ev.split, mode=ev.mode)
                if ev.mode == "next":
                    self.send("scores", **head, scores=self.scorer.next_token(prompts, ev.candidates, bs))
                elif ev.mode == "cont":
                    L = len(ev.continuations)
                    sums = self.scorer.continuation_sums(
                        [p for p in prompts for _ in range(L)], [c for _ in prompts for c in ev.continuations], bs)
                    self.send("scores", **head, scores=[sums[i * L : (i + 1) * L] for i in range(len(prompts))])
                else:
                    n = ev.max_new_tokens or m.eval.max_new_tokens
                    self.send("scores", **head, outputs=self.scorer.generate(prompts, n, bs))
        self.dist.reshard(self.model)

    # ---- checkpoints ----

    def checkpoint(self, reason: str, at: Position) -> str:
        self.where = f"checkpoint ({reason}) at task {at.task}, step {at.taskStep}"
        if self.dist.rank == 0:
            self._written = prune(self.run_dir, self._written, self.manifest.checkpoint.keep)
        path = save_checkpoint(self.run_dir, reason, at, self.model, self.optimizer, self.method, self.dist,
                               {"manifest": self.manifest.sha256, "seed": self.manifest.seed})
        self._written.append(path)
        self.send("checkpoint", path=path, task=at.task, step=at.taskStep, reason=reason)
        return path

    def save_final_model(self, folder: str) -> None:
        """The fine-tuned model's weights (checkpoint.final) into `folder`, which the trainer process completes
        into `<runDir>/model/` once `done` arrives. A method that keeps changes outside the weights (O-LoRA's
        pairs, adaptive SVD's factors) gives them merged."""
        self.where = "writing the final model"
        merge = getattr(self.method, "merged", None)
        merged = merge() if callable(merge) else {}
        save_final_model(folder, self.model, self.model_keys, merged, self.manifest.model.dir, self.dist)

    def _check_same_start(self) -> None:
        """Every rank starts from the same checkpoint (or none). The machines of one run are launched separately
        (`sculpt join` on each machine beside node 0): ranks restoring different checkpoints would hang in their
        first collective; here they fail, naming what each was given."""
        mine = os.path.relpath(self._resume_path(self.resume), self.run_dir) if self.resume else None
        starts = self.dist.gather(mine)
        if len(set(starts)) > 1:
            given = ", ".join(f"rank {r}: {s or 'the start'}" for r, s in enumerate(starts))
            raise SetupError(
                f"the ranks of this run were given different checkpoints to resume from ({given}); every machine "
                "must join node 0's launch of the run (sculpt join), which names the checkpoint node 0 resumes from"
            )

    def _resume_path(self, given: str) -> str:
        """An absolute path, else one relative to the run folder (as `checkpoint` messages give them), else to
        the working directory."""
        if os.path.isabs(given):
            return given
        inside = os.path.join(self.run_dir, given)
        return inside if os.path.isdir(inside) or not os.path.isdir(given) else os.path.abspath(given)

    def _restore(self, path: str) -> Position:
        self.where = f"resuming from {path}"
        meta = read_meta(path)
        pos = Position(**{k: meta["position"][k] for k in ("task", "epoch", "batch", "taskStep", "globalStep")})
        self._check_position(path, pos)
        if meta.get("manifest") and self.manifest.sha256 and meta["manifest"] != self.manifest.sha256:
            self.warn(f"checkpoint {path} was written for a different prepared/manifest.json; the run continues "
                      "with the current one", "checkpoint-manifest-changed")
        # The method's load_state_dict sees the task the resume lands in.
        self.ctx.task = pos.task
        load_checkpoint(path, self.model, self.optimizer, self.method, self.ctx, self.dist)
        return pos

    def _check_position(self, path: str, pos: Position) -> None:
        tasks = self.manifest.tasks
        where = f"{path}/meta.json: position {pos}"
        if pos.task > len(tasks) or (pos.task == len(tasks) and (pos.epoch or pos.batch or pos.taskStep)):
            raise CheckpointError(f"{where} is beyond the run's {len(tasks)} tasks")
        if pos.task == len(tasks):
            return
        spec = tasks[pos.task]
        if pos.epoch > len(spec.epochs) or (pos.epoch < len(spec.epochs) and pos.batch > len(spec.epochs[pos.epoch])):
            raise CheckpointError(f"{where} is outside task {pos.task}'s plan of {len(spec.epochs)} epochs")
        done = sum(len(e) for e in spec.epochs[: pos.epoch]) + pos.batch
        if done != pos.taskStep:
            raise CheckpointError(f"{where}: taskStep should be {done} for epoch {pos.epoch}, batch {pos.batch}")


def _version(package: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(package)
    except Exception:  # a missing distribution record is not worth failing a run over
        return None


def run_worker(run_dir: str, resume: str | None = None, channel: Channel | None = None) -> int:
    return Worker(run_dir, resume, channel).run()
