"""Online EWC (Kirkpatrick et al. 2017; the online form of Schwarz et al. 2018, "Progress & Compress").

Mirrors src/engine/methods/ewc.ts. After each task the diagonal empirical Fisher of every parameter is estimated
on `fisherSamples` of the task's training examples (the first of its calibration order), one example at a time:

    F = (1/N) Σ_n (∂ log p(y_n | x_n) / ∂θ)²        log p(y | x) = Σ over the answer tokens of log p

and accumulated, F_acc <- γ F_acc + F; the weights at that moment become the anchor θ*. Later tasks train every
parameter (as SeqFT) with the penalty

    L_task + Σ_j (λ/2) F_acc,j (θ_j - θ*_j)²

reported as the `ewc` term. The Fisher uses the sum over answer tokens (the example's log likelihood), not the
per-token mean the training loss averages: an answer of n tokens weighs n² more.

Across processes (the training loop's conventions, sculpt_torch/train.py): every process scores the same
calibration examples. Per-example gradients come from backward() into .grad (not autograd.grad), so that FSDP2's
hooks run; FSDP2 sums its sharded gradients over the processes, so a sharded gradient is world times the
example's and is divided back. The loop adds extra_loss / world on every process and sums whole gradients over
the processes, which gives a penalty on whole parameters its gradient once; a penalty term on a sharded parameter
reaches only this process's shard and is not summed, so its gradient is scaled by world to make up for the
division (its value is unchanged).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..targets import named_parameters
from .base import Batch, Method, MethodContext
from .projection import is_dtensor, layout_of, world_size
from .rank_policy import eval_mode


def _is_seq2seq(model: nn.Module) -> bool:
    return bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))


def answer_logits(model: nn.Module, batch: Batch, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """[N, V] logits of the positions that predict the batch's answer tokens, in float32, in row order.

    Causal: position p predicts token p + 1 (labels[p + 1] != -100). Encoder-decoder: decoder position p
    predicts labels[p] (the model shifts the labels right into decoder inputs). With `params`, the forward runs
    with those tensors in place of the model's parameters (torch.func.functional_call; tied weights stay tied).
    """
    if _is_seq2seq(model):
        kwargs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask, "labels": batch.labels, "use_cache": False}
        keep = batch.labels != -100
    else:
        kwargs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask, "use_cache": False}
        keep = None
    if params is None:
        z = model(**kwargs).logits
    else:
        z = torch.func.functional_call(model, params, args=(), kwargs=kwargs)
        z = z.logits
    if keep is None:
        z, keep = z[:, :-1], batch.labels[:, 1:] != -100
    return z[keep].float()


def answer_targets(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The answer tokens answer_logits' rows predict."""
    labels = batch.labels if _is_seq2seq(model) else batch.labels[:, 1:]
    return labels[labels != -100]


def answer_nll(model: nn.Module, batch: Batch) -> torch.Tensor:
    """-log p(answer | prompt) of the batch: the sum over its answer tokens (float32 scalar)."""
    return F.cross_entropy(answer_logits(model, batch), answer_targets(model, batch), reduction="sum")


def _penalty_part(F_: torch.Tensor, theta: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """Σ F (θ - θ*)² of one parameter as a plain scalar.

    Sharded (F and θ* are Shard(0) DTensors, as the parameter was when they were taken): the value is the sum
    over all shards; the gradient is world times that of this process's rows, which the loop's division by
    world brings back. θ is either the sharded parameter (the gradient lands in this shard's .grad, not summed)
    or, for FSDP2's root module between the loop's forward and backward, the gathered parameter: this process's
    rows are sliced out of it, and FSDP2's summed reduce-scatter gives each shard the gradient of its rows only.
    """
    if not is_dtensor(anchor):
        return (F_ * (theta - anchor).square()).sum()
    layout = layout_of(anchor)
    if layout.gather:
        raise ValueError(f"ewc: parameters laid out as {anchor.placements} are not supported (FSDP2's Shard(0) is)")
    own = theta.to_local() if is_dtensor(theta) else theta if layout.rows is None else theta[layout.rows]
    local = (F_.to_local() * (own - anchor.to_local()).square()).sum()
    whole = local.detach().clone()
    if layout.group is not None:
        dist.all_reduce(whole, group=layout.group)
    world = world_size()
    return local * world + (whole - local.detach() * world)


def diagonal_fisher(model: nn.Module, batches: list[Batch], params: dict[str, nn.Parameter]) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher over the given batches, each one example: the mean of the squared gradients of
    log p(answer | prompt). Parameters the loss does not reach get a zero Fisher (no penalty)."""
    sums = {name: torch.zeros_like(p, memory_format=torch.preserve_format).detach() for name, p in params.items()}
    flags = {name: p.requires_grad for name, p in params.items()}
    saved = {name: p.grad for name, p in params.items()}
    n = 0
    world = world_size()
    try:
        for p in params.values():
            p.requires_grad_(True)
            p.grad = None
        with eval_mode(model):
            for b in batches:
                if b.input_ids.shape[0] != 1:
                    raise ValueError(f"diagonal_fisher needs one example per batch (per-example gradients), got {b.input_ids.shape[0]}")
                answer_nll(model, b).backward()
                with torch.no_grad():
                    for name, p in params.items():
                        if p.grad is not None:
                            # FSDP2 summed the identical per-process gradients of this example.
                            g = p.grad / world if is_dtensor(p.grad) else p.grad
                            sums[name].add_(g * g)
                            p.grad = None
                n += 1
    finally:
        for name, p in params.items():
            p.requires_grad_(flags[name])
            p.grad = saved[name]
    if n == 0:
        raise ValueError("diagonal_fisher: no examples to estimate the Fisher from")
    return {name: s.div_(n) for name, s in sums.items()}


class Ewc(Method):
    name = "ewc"

    def __init__(self, config: dict[str, Any], path: str | None = None):
        super().__init__(config)
        self.path = path
        self.lambda_ = float(config["lambda"])
        self.gamma = float(config["gamma"])
        self.fisher_samples = int(config["fisherSamples"])
        #: F_acc by parameter name.
        self.fisher: dict[str, torch.Tensor] = {}
        #: θ* by parameter name.
        self.anchor: dict[str, torch.Tensor] = {}
        self.boundaries = 0

    def trainable(self, ctx: MethodContext) -> dict[str, nn.Parameter]:
        return named_parameters(ctx.model)

    def extra_loss(self, batch: Batch, ctx: MethodContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
        if not self.fisher or self.lambda_ == 0:
            return None
        params = named_parameters(ctx.model)
        parts = [_penalty_part(F_, params[name], self.anchor[name]) for name, F_ in self.fisher.items()]
        ewc = torch.stack(parts).sum() * (self.lambda_ / 2)
        return ewc, {"ewc": ewc}

    def after_task(self, ctx: MethodContext) -> None:
        params = named_parameters(ctx.model)
        batches = ctx.calibration_batches(ctx.task, self.fisher_samples, 1)
        F_new = diagonal_fisher(ctx.model, batches, params)
        for name, f in F_new.items():
            old = self.fisher.get(name)
            self.fisher[name] = f if old is None else old.mul_(self.gamma).add_(f)
        self.anchor = {name: p.detach().clone() for name, p in params.items()}
        self.boundaries += 1

    def state_dict(self) -> dict[str, Any]:
        """The TypeScript method's state: tensors `F/<name>` (F_acc) and `theta/<name>` (θ*)."""
        tensors = {f"F/{n}": t for n, t in self.fisher.items()}
        tensors.update({f"theta/{n}": t for n, t in self.anchor.items()})
        return {"tensors": tensors, "json": {"boundaries": self.boundaries, "params": list(self.fisher)}}

    def load_state_dict(self, state: dict[str, Any], ctx: MethodContext) -> None:
        j, tensors = state["json"], state["tensors"]
        params = named_parameters(ctx.model)
        self.boundaries = int(j["boundaries"])
        self.fisher, self.anchor = {}, {}
        for name in j["params"]:
            for key in (f"F/{name}", f"theta/{name}"):
                if key not in tensors:
                    raise ValueError(f"ewc checkpoint lacks tensor '{key}'; was it written by another method or model?")
            like = params.get(name)
            device = like.device if like is not None else None
            self.fisher[name] = tensors[f"F/{name}"].to(device)
            self.anchor[name] = tensors[f"theta/{name}"].to(device)
