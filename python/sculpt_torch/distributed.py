"""Processes, devices and how the model is spread over them.

One process, or several started by torchrun (its RANK / WORLD_SIZE / LOCAL_RANK / MASTER_* variables): gloo on
CPU, nccl on CUDA. Every rank holds the batch plan, and takes the rows r, r + world, ... of each global batch.
Each rank's loss is the sum of its token losses divided by the labelled count of the whole batch, and gradients
are SUMMED over ranks, so N processes take the step one process takes (up to float summation order):

- `ddp`: every rank holds the whole model; after the backward the gradients of the trainable parameters are
  all-reduced (summed) in buckets. Done by hand rather than by the DistributedDataParallel wrapper, because the
  trainable set changes from task to task (methods freeze and add parameters), which DDP fixes at wrap time.
- `fsdp2`: torch.distributed.fsdp.fully_shard on every transformer block (the model's `_no_split_modules`) and on
  the root; parameters, gradients and optimizer moments are DTensors sharded on dim 0. Reduce-scatter sums
  (divide factor 1, plain SUM, which gloo also supports: FSDP2 runs on CPU in this torch). Parameters a method adds
  outside the model's modules stay whole on every rank and are all-reduced like `ddp`.
- `none`: one process.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from .optim import is_dtensor

SHARDS = ("none", "ddp", "fsdp2")
# Gradients are all-reduced in buckets of at most this many elements (128 MiB of fp32).
BUCKET_ELEMENTS = 1 << 25


class SetupError(RuntimeError):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SetupError(f"environment variable {name}={value!r} is not an integer") from None


def resolve_device(setting: str, local_rank: int) -> torch.device:
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SetupError(
                f"torch.device is 'cuda' but this torch ({torch.__version__}) sees no CUDA device",
                "set torch.device to 'cpu' or 'auto', or point torch.python at a Python whose torch has CUDA",
            )
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise SetupError(
                f"local rank {local_rank} has no GPU of its own: this machine has {count}",
                "set torch.nprocPerNode to at most the number of GPUs",
            )
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def resolve_shard(setting: str, world: int, device: torch.device) -> tuple[str, str | None]:
    """The shard mode in effect and, when it differs from a setting that asked for more, why."""
    if world == 1:
        if setting in ("ddp", "fsdp2"):
            return "none", f"torch.shard is '{setting}' but the run has one process: nothing is sharded"
        return "none", None
    if setting == "auto":
        return ("fsdp2" if device.type == "cuda" else "ddp"), None
    if setting == "none":
        raise SetupError(
            f"torch.shard is 'none' but {world} processes were started",
            "use 'auto', 'ddp' or 'fsdp2' with more than one process, or one process",
        )
    return setting, None


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    shard: str = "none"
    precision: str = "fp32"
    backend: str | None = None
    mesh: Any = None
    #: Why the shard mode differs from the setting (a `warning` for the trainer), else None.
    note: str | None = None

    @property
    def active(self) -> bool:
        return self.world > 1

    # ---- collectives (no-ops with one process) ----

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.active:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on any rank."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order (on every rank)."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.active:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def close(self, clean: bool = True) -> None:
        """Leaves the process group. After a clean end every rank first waits for the others: a gloo group torn
        down while a peer still talks on it aborts the process ("terminate called without an active exception")."""
        if dist.is_available() and dist.is_initialized():
            if clean and self.active:
                self.barrier()
            dist.destroy_process_group()

    # ---- precision ----

    def autocast(self):
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---- the model across ranks ----

    def shard_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Applies the shard mode to a freshly loaded model (in place; the same module comes back)."""
        if self.shard != "fsdp2":
            return model
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        self.mesh = init_device_mesh(self.device.type, (self.world,))
        blocks = set(getattr(model, "_no_split_modules", None) or [])
        if not blocks:
            raise SetupError(
                f"{type(model).__name__} names no transformer block class (_no_split_modules) to shard with FSDP2",
                "use torch.shard 'ddp'",
            )
        for module in model.modules():
            if type(module).__name__ in blocks:
                fully_shard(module, mesh=self.mesh)
        fully_shard(model, mesh=self.mesh)
        for module in model.modules():
            # Sum, not average, over ranks: the loss is already divided by the global labelled count.
            if hasattr(module, "set_gradient_divide_factor"):
                module.set_gradient_divide_factor(1.0)
            if hasattr(module, "set_force_sum_reduction_for_comms"):
                module.set_force_sum_reduction_for_comms(True)
        return model

    def reshard(self, model: torch.nn.Module) -> None:
        """Frees the gathered parameters after inference. A forward without gradients leaves FSDP2's root
        unsharded (no backward comes to reshard it), and the next training forward would read the gathered copy
        while the optimizer updates the shards."""
        if self.shard != "fsdp2":
            return
        from torch.distributed.fsdp import FSDPModule

        for module in model.modules():
            if isinstance(module, FSDPModule):
                module.reshard()

    @torch.no_grad()
    def sync_grads(self, params: dict[str, torch.Tensor]) -> None:
        """Sums over ranks the gradients that are whole on every rank (all of them under ddp; under fsdp2 only
        parameters outside the sharded modules: FSDP2 has already reduce-scattered its own)."""
        if not self.active:
            return
        grads = [p.grad for p in params.values() if p.grad is not None and not is_dtensor(p.grad)]
        bucket: list[torch.Tensor] = []
        size = 0
        for g in grads:
            if bucket and (size + g.numel() > BUCKET_ELEMENTS or g.dtype != bucket[0].dtype):
                self._reduce_bucket(bucket)
                bucket, size = [], 0
            bucket.append(g)
            size += g.numel()
        if bucket:
            self._reduce_bucket(bucket)

    def _reduce_bucket(self, bucket: list[torch.Tensor]) -> None:
        if len(bucket) == 1:
            dist.all_reduce(bucket[0], op=dist.ReduceOp.SUM)
            return
        flat = torch.cat([g.reshape(-1) for g in bucket])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for g in bucket:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g))
            offset += n

    def reduce_sharded(self, t: torch.Tensor) -> torch.Tensor:
        """Sum of a per-rank partial value over the ranks holding shards (the whole group)."""
        return self.all_reduce_sum(t)


def init_distributed(device_setting: str = "auto", shard_setting: str = "auto", precision: str = "fp32") -> Dist:
    world = env_int("WORLD_SIZE", 1)
    rank = env_int("RANK", 0)
    local_rank = env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise SetupError(f"RANK={rank} and WORLD_SIZE={world} do not describe a process group")
    device = resolve_device(device_setting, local_rank)
    shard, note = resolve_shard(shard_setting, world, device)
    backend = None
    if world > 1:
        if not dist.is_available():
            raise SetupError(f"this torch ({torch.__version__}) has no torch.distributed; {world} processes cannot work together")
        backend = "nccl" if device.type == "cuda" else "gloo"
        if not dist.is_initialized():
            kwargs: dict[str, Any] = {"backend": backend}
            if device.type == "cuda":
                kwargs["device_id"] = device
            dist.init_process_group(**kwargs)
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise SetupError("torch.precision is 'bf16' but this GPU does not support bfloat16", "use 'fp32'")
    return Dist(rank=rank, world=world, local_rank=local_rank, device=device, shard=shard, precision=precision,
                backend=backend, note=note)
