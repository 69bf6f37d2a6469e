"""Per-task fine-tuning, the reference for forward transfer (src/engine/methods/per-task.ts): every task starts
from the weights the run loaded (copied at setup) and trains every parameter on that task alone.

The state holds nothing: setup runs again on resume before the checkpoint's weights are restored, on the same
freshly loaded weights, so the copy is the same.
"""
from __future__ import annotations

import torch

from .base import Method, MethodContext


class PerTask(Method):
    name = "per-task"

    def __init__(self, config):
        super().__init__(config)
        self.start: dict[str, torch.Tensor] = {}

    def setup(self, ctx: MethodContext) -> None:
        self.start = {n: p.detach().clone() for n, p in ctx.model.named_parameters()}

    @torch.no_grad()
    def before_task(self, ctx: MethodContext) -> None:
        params = dict(ctx.model.named_parameters())
        for name, value in self.start.items():
            if name not in params:
                raise KeyError(f"per-task: the model has no parameter '{name}' to restore")
            params[name].copy_(value)
