"""The continual-learning method interface of the PyTorch worker: the hooks of src/engine/methods/method.ts.

The training loop (sculpt_torch/train.py) knows no method by name. One optimizer step is

    loss = model loss on the batch (+ method.extra_loss)  ->  backward  ->  global-norm clipping of the
    trainable gradients  ->  method.transform_gradients  ->  optimizer step  ->  method.after_step

and around each task: before_task -> trainable -> steps -> after_task -> evaluation. Methods change the model
in place where they need to (O-LoRA wraps its target Linear modules in setup; per-task restores weights in
before_task); everything they must carry across a stop lives in state_dict().
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

import torch

if TYPE_CHECKING:  # the context is built by the training loop
    from ..manifest import Manifest


@dataclass
class Batch:
    """One batch on the worker's device, built as src/engine/data/batches.ts makeBatch builds it."""

    input_ids: torch.Tensor  # [B, T] int64, right-padded with the pad id
    labels: torch.Tensor  # [B, T] int64, answer tokens, -100 on prompt and padding
    attention_mask: torch.Tensor  # [B, T] int64, 1 on tokens
    labelled: int  # answer tokens in this batch (what the loss averages over)
    tokens: int  # non-padding tokens
    #: With several ranks a training batch is one rank's share of the plan's batch: these count the whole batch
    #: (answer tokens, rows), so that a per-batch mean can be taken over all ranks' rows (Σ over own rows / the
    #: global count, times world since the loop divides extra_loss by world). None: the batch is the whole batch.
    global_labelled: int | None = None
    global_rows: int | None = None


@dataclass
class MethodContext:
    """What a method sees of the run. Built by the training loop; `task` advances from task to task."""

    model: torch.nn.Module
    manifest: "Manifest"
    #: The resolved method config (every default filled in by the TypeScript side).
    config: dict[str, Any]
    #: 0-based index of the current (or about to start) task in this run's order.
    task: int
    seed: int
    device: torch.device
    rank: int = 0
    world: int = 1
    #: calibration_batches(task, examples, batch_size): the first `examples` of the task's calibration file,
    #: in batches of batch_size (default: training.evalBatchSize), as ctx.batchesOf does in TypeScript.
    calibration_batches: Callable[..., list[Batch]] = field(default=lambda *a, **k: [])
    #: report_ranks(policy, matrices, seconds, warnings=None): a `ranks` message (rank 0 sends it).
    report_ranks: Callable[..., None] = field(default=lambda *a, **k: None)
    #: warn(message, code=None): a `warning` message.
    warn: Callable[..., None] = field(default=lambda *a, **k: None)
    #: How the model is spread over the ranks (sculpt_torch/distributed.py): `none`, `ddp` (a whole replica per
    #: rank) or `fsdp2` (the model's parameters are DTensors sharded on dim 0 over `mesh`; setup runs after
    #: sharding). Every rank calls every hook; a method's own tensors must be the same on every rank.
    shard: str = "none"
    mesh: Any = None
    #: The run's sculpt_torch.distributed.Dist (collectives that are no-ops with one process), or None.
    dist: Any = None

    def named_targets(self) -> Iterator[tuple[str, torch.nn.Parameter]]:
        """The weight matrices methods act on (attention and MLP projections), by Hugging Face key."""
        from ..targets import target_matrices

        yield from target_matrices(self.model)


class Method:
    """Default behaviour: train every parameter, change nothing (SeqFT)."""

    name = "seqft"

    def __init__(self, config: dict[str, Any]):
        self.config = config

    def setup(self, ctx: MethodContext) -> None:
        """Once, before anything trains (also on resume, before load_state_dict)."""

    def before_task(self, ctx: MethodContext) -> None:
        """Before training task ctx.task (not called again when a resume lands inside the task)."""

    def trainable(self, ctx: MethodContext) -> dict[str, torch.nn.Parameter]:
        """Parameters the optimizer updates during this task, by name (model keys and the method's own)."""
        return dict(ctx.model.named_parameters())

    def extra_loss(self, batch: Batch, ctx: MethodContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
        """An extra loss term for the batch and its named parts for the step event, or None.

        With several ranks `batch` is this rank's share of the global batch (an unlabelled one-row placeholder,
        labelled == 0, when the share is empty) and the loop adds total / world on each rank, gradients being
        summed over ranks: a term that depends on the weights only (a penalty) counts once, a per-batch mean
        becomes the mean of the ranks' means. The step event reports the terms averaged over ranks."""
        return None

    def transform_gradients(self, params: dict[str, torch.nn.Parameter], ctx: MethodContext) -> None:
        """Change the .grad of `params` in place before the optimizer step (e.g. project it)."""

    def after_step(self, params: dict[str, torch.nn.Parameter], ctx: MethodContext) -> None:
        """After each optimizer step (e.g. re-project the weight change of an adaptive optimizer)."""

    def after_task(self, ctx: MethodContext) -> None:
        """After training task ctx.task, before its evaluation (e.g. merge adapters, estimate the Fisher)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue after a stop: tensors and plain values (saved with torch.save)."""
        return {}

    def load_state_dict(self, state: dict[str, Any], ctx: MethodContext) -> None:
        """Restores state_dict() after setup() on resume."""
