"""The optimizers of src/engine/optim.ts, operation for operation, so that both engines take the same steps:

    SGD:    p <- p - lr g
    Adam:   m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g²;  p <- p - (lr / (1-b1^t)) m / (sqrt(v / (1-b2^t)) + eps)
    AdamW:  the Adam step from p (1 - lr wd) (decoupled decay; weight decay is ignored by adam and sgd)

`t` counts steps since the last reset (a fresh optimizer per task). Moments are keyed by parameter name and
checkpointed as `m/<name>`, `v/<name>`, the tfjs slot names. Under FSDP2 parameters, gradients and moments are
DTensors sharded alike; the arithmetic runs on the local shards, which is the same elementwise computation.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

try:
    from torch.distributed.tensor import DTensor
except ImportError:  # a torch without DTensor cannot shard anyway
    DTensor = None  # type: ignore[assignment,misc]

NAMES = ("adamw", "adam", "sgd")


def is_dtensor(t) -> bool:
    return DTensor is not None and isinstance(t, DTensor)


def local(t: torch.Tensor) -> torch.Tensor:
    """The tensor this process holds: the local shard of a DTensor, else the tensor itself (no copy)."""
    return t._local_tensor if is_dtensor(t) else t


class Optimizer:
    def __init__(self, name: str, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0):
        if name not in NAMES:
            raise ValueError(f"optimizer '{name}': expected one of {', '.join(NAMES)}")
        self.name = name
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weight_decay = weight_decay if name == "adamw" else 0.0
        self.t = 0
        self.m: dict[str, torch.Tensor] = {}
        self.v: dict[str, torch.Tensor] = {}

    @property
    def step(self) -> int:
        return self.t

    @torch.no_grad()
    def apply(self, grads: dict[str, torch.Tensor], params: dict[str, torch.Tensor], lr: float) -> None:
        """One update of every parameter in `grads` (a parameter without a gradient is not touched)."""
        self.t += 1
        t = self.t
        bc1 = 1 - math.pow(self.beta1, t)
        bc2 = 1 - math.pow(self.beta2, t)
        for name, grad in grads.items():
            p = params.get(name)
            if p is None:
                raise KeyError(f"optimizer: gradient for '{name}', which is not a trainable parameter")
            P, G = local(p), local(grad)
            if self.name == "sgd":
                P.copy_(P - G * lr)
                continue
            M = local(self._slot(self.m, name, p))
            V = local(self._slot(self.v, name, p))
            decayed = P * (1 - lr * self.weight_decay) if self.weight_decay > 0 else P
            m1 = M * self.beta1 + G * (1 - self.beta1)
            v1 = V * self.beta2 + G.square() * (1 - self.beta2)
            M.copy_(m1)
            V.copy_(v1)
            denom = (v1 / bc2).sqrt() + self.eps
            P.copy_(decayed - (m1 / denom) * (lr / bc1))

    def _slot(self, store: dict[str, torch.Tensor], name: str, like: torch.Tensor) -> torch.Tensor:
        s = store.get(name)
        if s is None:
            s = torch.zeros_like(like.detach(), memory_format=torch.preserve_format)
            store[name] = s
        return s

    def forget(self, names) -> None:
        """Drops the moments of parameters no longer trained (a finished task's adapters)."""
        for n in list(names):
            self.m.pop(n, None)
            self.v.pop(n, None)

    def reset(self) -> None:
        """Moments and step count back to zero, as a fresh optimizer per task."""
        self.m.clear()
        self.v.clear()
        self.t = 0

    def slots(self) -> dict[str, torch.Tensor]:
        """The moments by `m/<name>`, `v/<name>` (the optimizer's own tensors)."""
        out = {f"m/{n}": s for n, s in self.m.items()}
        out.update({f"v/{n}": s for n, s in self.v.items()})
        return out

    def load(self, name: str, step: int, slots: dict[str, torch.Tensor]) -> None:
        if name != self.name:
            raise ValueError(f"optimizer state is for '{name}', this run uses '{self.name}'")
        self.reset()
        self.t = int(step)
        for key, value in slots.items():
            kind, _, param = key.partition("/")
            store = self.m if kind == "m" else self.v if kind == "v" else None
            if store is None or not param:
                raise ValueError(f"optimizer state has an unknown slot '{key}' (expected m/<name> or v/<name>)")
            store[param] = value


@torch.no_grad()
def clip_by_global_norm(
    grads: dict[str, torch.Tensor],
    max_norm: float,
    reduce_sharded: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor | None:
    """Scales the gradients in place so that their global L2 norm is at most `max_norm`, by
    min(1, max_norm / (norm + 1e-6)) as clipByGlobalNorm (and torch's clip_grad_norm_) do. Returns the norm before
    clipping, or None when clipping is off (max_norm 0): then nothing is computed.

    `reduce_sharded` sums a local value over the ranks that hold the shards of DTensor gradients (FSDP2); a plain
    gradient is whole on every rank and counts once."""
    if not max_norm > 0:
        return None
    sharded = [local(g) for g in grads.values() if is_dtensor(g)]
    plain = [g for g in grads.values() if not is_dtensor(g)]
    device = next(iter(grads.values())).device if grads else torch.device("cpu")
    total = torch.zeros((), dtype=torch.float32, device=device)
    if sharded:
        part = torch.zeros((), dtype=torch.float32, device=device)
        for g in sharded:
            part = part + g.float().square().sum()
        total = total + (reduce_sharded(part) if reduce_sharded else part)
    for g in plain:
        total = total + g.float().square().sum()
    norm = total.sqrt()
    scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    for g in grads.values():
        local(g).mul_(scale.to(g.dtype))
    return norm
