"""Worker checkpoints: `<runDir>/checkpoints/torch-<globalStep>-<reason>/`, everything needed to continue exactly.

    meta.json              format, engine, position {task, epoch, batch, taskStep, globalStep}, world, shard,
                           optimizer {name, step, slots}, method name, reason; written last
    model.safetensors      every parameter by its model key (tied parameters once), fp32     } one process or
    optimizer.safetensors  the moments `m/<name>`, `v/<name>`                                 } ddp (rank 0)
    method.pt              method.state_dict() (plain values and tensors: torch.load(weights_only=True))
    dcp/                   FSDP2: model and moments through torch.distributed.checkpoint, sharded by rank
    method-rank<r>.pt      FSDP2: each rank's method state (its DTensors as local shards)
    rng-rank<r>.pt         each rank's random states (torch, CUDA, python, numpy)

Every rank writes into `checkpoints/.tmp-<name>-<pid>/` (a folder on storage all ranks share); rank 0 writes
meta.json once every rank is done, flushes, and renames the folder into place, so a folder that exists is whole.
A name already taken (an interrupted session's folder, or a task that trains no steps) gets a `-2`, `-3`, ...
suffix: the trainer process reads the path from the `checkpoint` message, never builds it.

The fine-tuned model (`checkpoint.final`, `save_final_model`) is no checkpoint of the run but a Hugging Face
checkpoint: the weights alone, the method's changes merged in, by the base checkpoint's keys and in its dtypes.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .distributed import Dist
from .optim import Optimizer, is_dtensor

CHECKPOINT_FORMAT = 1
CHECKPOINTS = "checkpoints"
PREFIX = "torch-"
REASONS = ("task", "epoch", "steps", "stop")


class CheckpointError(ValueError):
    pass


@dataclass
class Position:
    """Where a run stands: the next batch to train is epochs[epoch][batch] of task `task`."""

    task: int = 0
    epoch: int = 0
    batch: int = 0
    taskStep: int = 0
    globalStep: int = 0

    @classmethod
    def start_of(cls, task: int, global_step: int) -> "Position":
        return cls(task=task, globalStep=global_step)


def save_safetensors(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str] | None = None) -> None:
    """safetensors' save_file, with the file's mode as the process's umask gives any other file: save_file makes
    it readable by its owner only (0600), which would keep the rest of a team out of a shared run folder."""
    save_file(tensors, path, metadata=metadata)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _fsync(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename is still atomic there
    finally:
        os.close(fd)


def _write_json(path: str, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


# ---- method state: DTensors travel as their local shard ----

_DTENSOR = "__sculpt_dtensor__"


def _placement_code(p) -> str:
    from torch.distributed.tensor import Replicate, Shard

    if isinstance(p, Shard):
        return f"S{p.dim}"
    if isinstance(p, Replicate):
        return "R"
    raise CheckpointError(f"method state holds a DTensor placed as {p!r}, which checkpoints do not store")


def _placement(code: str):
    from torch.distributed.tensor import Replicate, Shard

    return Replicate() if code == "R" else Shard(int(code[1:]))


def to_portable(value: Any) -> Any:
    if is_dtensor(value):
        return {_DTENSOR: value.to_local().detach().cpu().clone(),
                "placements": [_placement_code(p) for p in value.placements],
                "shape": list(value.shape), "stride": list(value.stride())}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: to_portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_portable(v) for v in value]
    if isinstance(value, tuple):
        return tuple(to_portable(v) for v in value)
    return value


def from_portable(value: Any, device: torch.device, mesh: Any) -> Any:
    if isinstance(value, dict) and _DTENSOR in value:
        from torch.distributed.tensor import DTensor

        if mesh is None:
            raise CheckpointError("method state holds sharded tensors, but this run does not shard (torch.shard)")
        return DTensor.from_local(value[_DTENSOR].to(device), mesh, [_placement(c) for c in value["placements"]],
                                  shape=torch.Size(value["shape"]), stride=tuple(value["stride"]))
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: from_portable(v, device, mesh) for k, v in value.items()}
    if isinstance(value, list):
        return [from_portable(v, device, mesh) for v in value]
    if isinstance(value, tuple):
        return tuple(from_portable(v, device, mesh) for v in value)
    return value


# ---- random states ----

def rng_state(device: torch.device) -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


# ---- names ----

def checkpoints_dir(run_dir: str) -> str:
    return os.path.join(run_dir, CHECKPOINTS)


def free_name(root: str, global_step: int, reason: str) -> str:
    base = f"{PREFIX}{global_step}-{reason}"
    name, n = base, 1
    while os.path.exists(os.path.join(root, name)):
        n += 1
        name = f"{base}-{n}"
    return name


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters by model key, tied ones once (the key named_parameters gives first)."""
    return dict(model.named_parameters())


# ---- save ----

def save_checkpoint(
    run_dir: str,
    reason: str,
    position: Position,
    model: torch.nn.Module,
    optimizer: Optimizer,
    method,
    dist: Dist,
    extra: dict[str, Any] | None = None,
) -> str:
    """Writes a checkpoint on every rank (a collective); returns its path relative to the run folder."""
    if reason not in REASONS:
        raise ValueError(f"checkpoint reason '{reason}': expected one of {', '.join(REASONS)}")
    root = checkpoints_dir(run_dir)
    plan = None
    if dist.rank == 0:
        os.makedirs(root, exist_ok=True)
        name = free_name(root, position.globalStep, reason)
        tmp = os.path.join(root, f".tmp-{name}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        plan = (name, tmp)
    name, tmp = dist.broadcast(plan)
    sharded = dist.shard == "fsdp2"
    params = model_tensors(model)
    slots = optimizer.slots()
    try:
        if sharded:
            import torch.distributed.checkpoint as dcp

            dcp.save({"model": params, "optimizer": slots}, checkpoint_id=os.path.join(tmp, "dcp"))
            torch.save(to_portable(method.state_dict()), os.path.join(tmp, f"method-rank{dist.rank}.pt"))
        elif dist.rank == 0:
            save_safetensors({k: v.detach().cpu().contiguous() for k, v in params.items()},
                             os.path.join(tmp, "model.safetensors"))
            save_safetensors({k: v.detach().cpu().contiguous() for k, v in slots.items()},
                             os.path.join(tmp, "optimizer.safetensors"))
            torch.save(to_portable(method.state_dict()), os.path.join(tmp, "method.pt"))
        torch.save(rng_state(dist.device), os.path.join(tmp, f"rng-rank{dist.rank}.pt"))
        dist.barrier()
        if dist.rank == 0:
            meta = {
                "format": CHECKPOINT_FORMAT,
                "engine": "torch",
                "reason": reason,
                "position": asdict(position),
                "world": dist.world,
                "shard": dist.shard,
                "optimizer": {"name": optimizer.name, "step": optimizer.step, "slots": sorted(slots)},
                "method": getattr(method, "name", None),
                "time": int(time.time() * 1000),
                **(extra or {}),
            }
            for folder, _, files in os.walk(tmp):
                for f in files:
                    _fsync(os.path.join(folder, f))
            _write_json(os.path.join(tmp, "meta.json"), meta)
            _fsync(tmp)
            os.rename(tmp, os.path.join(root, name))
            _fsync(root)
    except BaseException:
        if dist.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    dist.barrier()
    return f"{CHECKPOINTS}/{name}"


def prune(run_dir: str, written: list[str], keep: int) -> list[str]:
    """Deletes the checkpoints this session wrote beyond the newest `keep` (rank 0). Called before the next one is
    written, so each folder deleted is older than `keep` checkpoints whose messages went out long before (the
    trainer process commits a checkpoint when it logs its event); a checkpoint the session resumed from is not
    in `written`, and folders of other sessions are the trainer process's to manage. Returns what is kept."""
    excess = written[: max(0, len(written) - keep)]
    for rel in excess:
        path = os.path.join(run_dir, rel)
        aside = os.path.join(os.path.dirname(path), f".del-{os.path.basename(path)}")
        try:
            os.rename(path, aside)
        except OSError:
            continue  # already gone
        shutil.rmtree(aside, ignore_errors=True)
    return written[len(excess):]


# ---- load ----

def read_meta(path: str) -> dict[str, Any]:
    meta_path = os.path.join(path, "meta.json")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"{meta_path}: missing; {path} is not a complete torch checkpoint") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{meta_path}: not valid JSON ({e})") from None
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("engine") != "torch":
        raise CheckpointError(
            f"{meta_path}: format {meta.get('format')!r}, engine {meta.get('engine')!r}; expected format "
            f"{CHECKPOINT_FORMAT} of engine 'torch'"
        )
    pos = meta.get("position")
    fields = ("task", "epoch", "batch", "taskStep", "globalStep")
    if not isinstance(pos, dict) or any(not isinstance(pos.get(k), int) or pos[k] < 0 for k in fields):
        raise CheckpointError(f"{meta_path}: position must hold the integers {', '.join(fields)}, found {pos!r}")
    return meta


def _check_shape(path: str, key: str, found, expected) -> None:
    if tuple(found) != tuple(expected):
        raise CheckpointError(f"{path}: tensor '{key}' has shape {list(found)}, expected {list(expected)}")


def _place(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A whole tensor laid out as `like` (sharded the same way when `like` is a DTensor)."""
    if is_dtensor(like):
        from torch.distributed.tensor import distribute_tensor

        return distribute_tensor(full.to(like.device_mesh.device_type), like.device_mesh, like.placements)
    return full.to(device=like.device, dtype=like.dtype)


@torch.no_grad()
def load_checkpoint(path: str, model: torch.nn.Module, optimizer: Optimizer, method, ctx, dist: Dist) -> dict:
    """Restores weights, optimizer, method state and random states from `path` (every rank); returns meta."""
    meta = read_meta(path)
    params = model_tensors(model)
    saved_shard = meta.get("shard", "none")
    opt = meta.get("optimizer") or {}
    slot_names = list(opt.get("slots") or [])
    if saved_shard == "fsdp2":
        if dist.shard != "fsdp2" or meta.get("world") != dist.world:
            raise CheckpointError(
                f"{path}/meta.json: written by {meta.get('world')} processes under fsdp2; resume it with the same "
                f"number of processes and torch.shard fsdp2 (this run: {dist.world}, {dist.shard})"
            )
        import torch.distributed.checkpoint as dcp

        stored = dcp.FileSystemReader(os.path.join(path, "dcp")).read_metadata().state_dict_metadata
        slots = {}
        for key in slot_names:
            param = key.partition("/")[2]
            if param in params:
                slots[key] = torch.zeros_like(params[param].detach())
            elif f"optimizer.{key}" in stored:
                # A method's own parameter (an adapter): whole on every rank.
                slots[key] = torch.zeros(tuple(stored[f"optimizer.{key}"].size), device=dist.device)
            else:
                raise CheckpointError(f"{path}/dcp: lacks optimizer slot '{key}' that meta.json lists")
        state = {"model": params, "optimizer": slots}
        dcp.load(state, checkpoint_id=os.path.join(path, "dcp"))
        method_file = os.path.join(path, f"method-rank{dist.rank}.pt")
    else:
        model_file = os.path.join(path, "model.safetensors")
        with safe_open(model_file, framework="pt") as f:
            keys = set(f.keys())
            for name, p in params.items():
                if name not in keys:
                    raise CheckpointError(f"{model_file}: lacks parameter '{name}'")
                t = f.get_tensor(name)
                _check_shape(model_file, name, t.shape, p.shape)
                p.copy_(_place(t, p))
        opt_file = os.path.join(path, "optimizer.safetensors")
        slots = {}
        with safe_open(opt_file, framework="pt") as f:
            for key in f.keys():
                param = key.partition("/")[2]
                t = f.get_tensor(key)
                if param in params:
                    _check_shape(opt_file, key, t.shape, params[param].shape)
                    slots[key] = _place(t, params[param].detach())
                else:
                    # A method's own parameter (an adapter); the method checks its state when it loads it.
                    slots[key] = t.to(dist.device)
        method_file = os.path.join(path, "method.pt")
    optimizer.load(opt.get("name", optimizer.name), int(opt.get("step", 0)), slots)
    try:
        state = torch.load(method_file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{method_file}: missing") from None
    method.load_state_dict(from_portable(state, dist.device, dist.mesh), ctx)
    rng_file = os.path.join(path, f"rng-rank{dist.rank}.pt")
    if os.path.exists(rng_file):
        set_rng_state(torch.load(rng_file, map_location="cpu", weights_only=True), dist.device)
    return meta


# ---- the fine-tuned model (checkpoint.final) ----

FINAL_WEIGHTS = "model.safetensors"
_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def base_weights(model_dir: str) -> dict[str, tuple[str, str]]:
    """The base checkpoint's tensors: key -> (its safetensors file, its dtype as safetensors names it), from
    model.safetensors or the shards model.safetensors.index.json lists; empty for a folder without either."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            files = {os.path.join(model_dir, v) for v in json.load(f)["weight_map"].values()}
    else:
        single = os.path.join(model_dir, "model.safetensors")
        files = {single} if os.path.isfile(single) else set()
    out: dict[str, tuple[str, str]] = {}
    for file in sorted(files):
        with safe_open(file, framework="pt") as f:
            for key in f.keys():
                out[key] = (file, f.get_slice(key).get_dtype())
    return out


def _base_key(name: str, base: dict[str, Any], prefix: str) -> str | None:
    """The base checkpoint's key of model parameter `name`: the same, or one that differs by the model's
    base_model_prefix (GPT-2 checkpoints saved from the bare transformer lack `transformer.`), as from_pretrained
    matches them."""
    candidates = [name]
    if prefix:
        candidates += [name[len(prefix) + 1 :]] if name.startswith(prefix + ".") else [f"{prefix}.{name}"]
    return next((k for k in candidates if k in base), None)


@torch.no_grad()
def save_final_model(
    folder: str,
    model: torch.nn.Module,
    keys: list[str],
    merged: dict[str, torch.Tensor],
    base_dir: str,
    dist: Dist,
) -> None:
    """Writes `<folder>/model.safetensors` (a collective; rank 0 writes): the model's own parameters `keys` (tied
    ones once, as a checkpoint keeps them), each replaced by `merged[key]` where the method keeps its changes
    outside the weight, under the base checkpoint's keys and cast to its dtypes (training runs in fp32). Tensors
    of the base file stored under another name of a tied parameter get that parameter; others (buffers some
    checkpoints store) are copied as they are, so the file has the base's keys. The folder is emptied first: an
    interrupted attempt's file is never completed."""
    params = dict(model.named_parameters())
    by_id = {id(params[k]): k for k in keys}
    # Every name of each parameter written (a tied embedding is also the head), to the name it is written under.
    aliases = {a: by_id[id(p)] for a, p in model.named_parameters(remove_duplicate=False) if id(p) in by_id}
    full: dict[str, torch.Tensor] = {}
    for name in keys:
        t = merged.get(name)
        t = (params[name] if t is None else t).detach()
        # Every rank gathers each sharded parameter in the same order; rank 0 keeps the whole tensors, on the CPU.
        t = t.full_tensor() if is_dtensor(t) else t
        if dist.rank == 0:
            full[name] = t.cpu()
    failure = None
    if dist.rank == 0:
        tmp = os.path.join(folder, f".{FINAL_WEIGHTS}.tmp-{os.getpid()}")
        try:
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder)
            base = base_weights(base_dir)
            prefix = getattr(model, "base_model_prefix", "") or ""
            tensors: dict[str, torch.Tensor] = {}
            written: dict[str, str] = {}
            for name in list(full):
                # Popped as it is cast: a model of billions of weights is held once, not twice, on rank 0.
                t = full.pop(name)
                key = _base_key(name, base, prefix)
                # A parameter the base file lacks (a head it ties but this model does not) keeps the model's key.
                dtype = _DTYPES.get(base[key][1], t.dtype) if key is not None else t.dtype
                written[name] = key or name
                tensors[key or name] = t.to(dtype).contiguous()
            for key, (file, dtype) in base.items():
                if key in tensors:
                    continue
                alias = next((a for a in aliases if _base_key(a, {key: None}, prefix)), None)
                if alias is not None:
                    # A tied parameter the base file stores under each of its names: the trained one under each.
                    t = tensors[written[aliases[alias]]]
                    tensors[key] = t.to(_DTYPES.get(dtype, t.dtype)).clone()
                else:
                    with safe_open(file, framework="pt") as f:
                        tensors[key] = f.get_tensor(key)
            # `format`: transformers reads a safetensors file only when its metadata says which framework wrote it.
            save_safetensors(tensors, tmp, metadata={"format": "pt"})
            _fsync(tmp)
            os.replace(tmp, os.path.join(folder, FINAL_WEIGHTS))
            _fsync(folder)
        except BaseException as e:
            try:
                os.remove(tmp)
            except OSError:
                pass
            failure = f"could not write {os.path.join(folder, FINAL_WEIGHTS)}: {e}"
            if not isinstance(e, Exception):
                raise
    # Rank 0's outcome on every rank (and a barrier): no rank leaves before the file is written, and all fail alike.
    failure = dist.broadcast(failure)
    if failure:
        raise OSError(failure)
