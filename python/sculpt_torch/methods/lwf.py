"""Learning without Forgetting (Li & Hoiem 2016), for a language model.

Mirrors src/engine/methods/lwf.ts. Before each task t >= 1 the current weights are copied as a frozen teacher.
While task t trains, every parameter trains (as SeqFT) with the distillation term

    α T² · mean over answer positions of KL( softmax(z_old / T) ‖ softmax(z_new / T) )

where z are next-token logits over the whole vocabulary at the positions that predict the new task's answer
tokens (position p predicts token p + 1, as the loss; an encoder-decoder model's decoder position p predicts
labels[p]), z_old from the teacher, z_new from the model being trained; T² keeps the gradient scale independent
of T (Hinton et al. 2015). Reported as `distillation`. Costs a second forward of the student (extra_loss does not
see the task loss's logits) and one of the teacher per step, and a copy of the weights.

The teacher runs the model's own modules with the copied tensors (torch.func.functional_call), so it needs no
second model; the logits are taken at the answer positions only before the softmax, which gives the masked mean
of the TypeScript engine without [B, T, V] softmaxes.
"""
from __future__ import annotations

from typing import Any

import torch

from ..targets import ConfigError
from .base import Batch, Method, MethodContext
from .ewc import answer_logits


def answer_positions(labels: torch.Tensor) -> torch.Tensor:
    """[B, T] float mask of the positions whose next token is an answer token (labels[p + 1] != -100)."""
    nxt = (labels[:, 1:] != -100).float()
    return torch.cat([nxt, nxt.new_zeros(labels.shape[0], 1)], dim=1)


def distillation_from_rows(
    z_old: torch.Tensor, z_new: torch.Tensor, temperature: float, count: int | None = None
) -> torch.Tensor:
    """T² · Σ over rows of KL(softmax(z_old / T) ‖ softmax(z_new / T)) / count for [N, V] logits (count: the rows,
    unless the mean is over more rows than these, e.g. the whole batch of several processes); 0 without rows."""
    log_old = torch.log_softmax(z_old.float() / temperature, dim=-1)
    log_new = torch.log_softmax(z_new.float() / temperature, dim=-1)
    kl = (log_old.exp() * (log_old - log_new)).sum(-1)
    return kl.sum() / max(kl.shape[0] if count is None else count, 1) * (temperature * temperature)


def distillation_loss(z_old: torch.Tensor, z_new: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · Σ_p m_p KL(softmax(z_old,p / T) ‖ softmax(z_new,p / T)) / Σ_p m_p for logits [B, T, V] and a [B, T]
    0/1 position mask; 0 when the mask is empty."""
    keep = mask > 0
    return distillation_from_rows(z_old[keep], z_new[keep], temperature)


class Lwf(Method):
    name = "lwf"

    def __init__(self, config: dict[str, Any], path: str | None = None):
        super().__init__(config)
        self.path = path
        self.temperature = float(config["temperature"])
        self.alpha = float(config["alpha"])
        #: The teacher's weights, by the model's own parameter names (what functional_call expects).
        self.teacher: dict[str, torch.Tensor] = {}

    def setup(self, ctx: MethodContext) -> None:
        if getattr(ctx, "shard", "none") == "fsdp2":
            # FSDP2 gathers each block's weights from its own shards in the block's forward, so the teacher's
            # tensors cannot stand in for them (torch.func.functional_call); a sharded teacher is not built yet.
            raise ConfigError([{
                "path": "torch.shard",
                "message": "lwf runs its teacher through the model's own modules, which FSDP2 shards: it runs with "
                           "'ddp' or 'none'",
                "expected": "'ddp' or 'none' with lwf",
                "actual": "fsdp2",
            }])

    def before_task(self, ctx: MethodContext) -> None:
        self.teacher = {}
        if ctx.task == 0:
            return
        self.teacher = {name: p.detach().clone() for name, p in ctx.model.named_parameters()}

    @property
    def has_teacher(self) -> bool:
        """True while a teacher is held (tasks after the first)."""
        return bool(self.teacher)

    def extra_loss(self, batch: Batch, ctx: MethodContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
        if not self.teacher or self.alpha == 0:
            return None
        z_new = answer_logits(ctx.model, batch)
        with torch.no_grad():
            z_old = answer_logits(ctx.model, batch, self.teacher)
        # The mean runs over every answer position of the whole batch: with several processes each holds a share,
        # so its sum is divided by the global count (one answer position per answer token) and multiplied by the
        # world size the loop divides extra losses by, which makes N processes take one process's step.
        if batch.global_labelled is None:
            distillation = distillation_from_rows(z_old, z_new, self.temperature) * self.alpha
        else:
            share = distillation_from_rows(z_old, z_new, self.temperature, count=batch.global_labelled)
            distillation = share * ctx.world * self.alpha
        return distillation, {"distillation": distillation}

    def state_dict(self) -> dict[str, Any]:
        """The TypeScript method's state: tensors `teacher/<name>`."""
        return {"tensors": {f"teacher/{n}": t for n, t in self.teacher.items()}, "json": {"teacher": list(self.teacher)}}

    def load_state_dict(self, state: dict[str, Any], ctx: MethodContext) -> None:
        j, tensors = state["json"], state["tensors"]
        own = dict(ctx.model.named_parameters())
        self.teacher = {}
        for name in j["teacher"]:
            key = f"teacher/{name}"
            if key not in tensors:
                raise ValueError(f"lwf checkpoint lacks tensor '{key}'; was it written by another method or model?")
            self.teacher[name] = tensors[key].to(own[name].device if name in own else None)
