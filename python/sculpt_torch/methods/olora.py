"""O-LoRA (Wang et al. 2023, "Orthogonal Subspace Learning for Language Model Continual Learning").

Mirrors src/engine/methods/olora.ts. Task t gets a new LoRA pair (A_t: r x d_in, B_t: d_out x r) on each
configured attention projection; the base model and the pairs of earlier tasks are frozen, and the module computes

    y = x Wᵀ + b + (alpha / r) Σ_{i<=t} (x A_iᵀ) B_iᵀ        (= x W_effᵀ + b, W_eff = W + (alpha / r) Σ B_i A_i)

The loss of task t is

    L_task + λ1 Σ_{modules} Σ_{i<t} ‖A_i A_tᵀ‖²_F + λ2 (‖A_t‖² + ‖B_t‖²)

with the orthogonality term of the paper (eq. 5, the squared entries of the r x r products O_{i,t}), as the
TypeScript engine computes it, and the squared L2 norm (the reference code's unsquared norm has no gradient at
B_t = 0, where every pair starts). A_t is Kaiming-uniform as PEFT (U(±1/√d_in)), B_t zero, so each task starts
from the previous task's function. A_t's values come from the TypeScript engine's seeded generator (mulberry32,
seeded from the run's seed, the task and the projection), so both engines start every task from the same A_t.

GPT-2 fuses q, k and v into one Conv1D `c_attn` [d, 3d]: q, k and v then name its column blocks [0, d), [d, 2d),
[2d, 3d), each with its own pair (as the LoRA paper's GPT-2 experiments); `o` is `c_proj`. Conv1D computes
y = x W, so its update is (B A)ᵀ and the adapter's contribution x Aᵀ Bᵀ is the same as for nn.Linear. A role
selects every projection with that role, so on an encoder-decoder model q and v include the cross-attention ones.

In the model: each adapted module is replaced, in setup, by an OLoraProjection that keeps the module's own
`weight` and `bias` Parameters (state-dict keys unchanged) and registers the pairs of every task of the run as
`<module>.olora.A_<t>[_<block>]`, all frozen until their task starts. They are plain tensors on every process
(setup runs after FSDP2 has sharded the model), whole and equal everywhere, so the training loop sums their
gradients over the processes as any gradient outside the sharded modules.

`dropout` (the authors' lora_dropout): while training (with gradients enabled) every task's pairs act on
x times an inverted-dropout mask, one per module and step, drawn from the same generator and seed as the
TypeScript engine's, so both engines drop the same inputs of the same batch.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..targets import ConfigError, TargetMatrix, manifest_value, method_path, model_family, replace_module, target_matrices
from .base import Method, MethodContext
from .projection import full_tensor, is_dtensor

FUSED_BLOCK = {"q": 0, "k": 1, "v": 2}

# ----------------------------------------------------------------------------------------------------------------
# The TypeScript engine's seeded generator (src/data/rng.ts: mulberry32, FNV-1a) and its method seed
# (src/engine/methods/support.ts methodSeed), bit for bit.

_M32 = 0xFFFFFFFF


def hash_string(s: str) -> int:
    """FNV-1a over UTF-16 code units, as hashString."""
    h = 0x811C9DC5
    units = s.encode("utf-16-le")
    for i in range(0, len(units), 2):
        h = ((h ^ (units[i] | units[i + 1] << 8)) * 0x01000193) & _M32
    return h


def _mix(t: np.ndarray) -> np.ndarray:
    """mulberry32's output function of the state after the increment (uint64 arrays holding uint32 values)."""
    t = ((t ^ (t >> np.uint64(15))) * (t | np.uint64(1))) & np.uint64(_M32)
    t = (t ^ ((t + (((t ^ (t >> np.uint64(7))) * (t | np.uint64(61))) & np.uint64(_M32))) & np.uint64(_M32))) & np.uint64(_M32)
    return (t ^ (t >> np.uint64(14))) & np.uint64(_M32)


class Rng:
    """mulberry32 as src/data/rng.ts: the state advances by 0x6d2b79f5 per draw, so n draws are computed at once."""

    def __init__(self, seed: int):
        self.s = ((seed & _M32) ^ 0x9E3779B9) & _M32

    def uint32(self, n: int) -> np.ndarray:
        steps = np.arange(1, n + 1, dtype=np.uint64)
        t = (np.uint64(self.s) + steps * np.uint64(0x6D2B79F5)) & np.uint64(_M32)
        self.s = int(t[-1]) if n else self.s
        return _mix(t)

    def next(self, n: int | None = None) -> float | np.ndarray:
        """Uniform in [0, 1): one float, or an array of n."""
        u = self.uint32(1 if n is None else n).astype(np.float64) / 4294967296.0
        return float(u[0]) if n is None else u

    def int(self, n: int) -> int:
        return int(np.floor(self.next() * n))

    def fork(self, salt: int) -> "Rng":
        draw = int(np.floor(self.next() * 4294967296.0))
        return Rng(draw ^ ((salt * 0x85EBCA6B) & _M32))


def method_seed(seed: int, purpose: str) -> int:
    """methodSeed(new Rng(seed), purpose): the run's generator as it stands at setup, forked for `purpose`."""
    return Rng(seed).fork(hash_string(purpose)).int(0x100000000)


# ----------------------------------------------------------------------------------------------------------------


@dataclass
class AdapterSlot:
    """Where one adapter acts: a whole weight, or a block of output features of a fused one."""

    #: Name used in keys, e.g. 'model.layers.0.self_attn.q_proj' or 'transformer.h.0.attn.c_attn.q'.
    key: str
    #: HF key of the adapted weight.
    weight: str
    target: TargetMatrix
    d_in: int
    #: Output width of the adapted block.
    d_out: int
    #: First output feature of the block within the weight, and the weight's full output width.
    offset: int
    width: int
    #: '' for a whole weight, else the block's role (q, k, v): the suffix of its parameter names.
    block: str = ""


def pair_key(task: int, slot: AdapterSlot, part: str) -> str:
    """The TypeScript engine's name of a pair's matrix: olora.<task>.<slot key>.<A|B>."""
    return f"olora.{task}.{slot.key}.{part}"


def resolve_slots(model: nn.Module, modules: Sequence[str], path: str) -> list[AdapterSlot]:
    """The adapter slots for `modules`: each role's projections, or a block of a fused qkv projection when the
    model has no separate one. Errors name the option's JSON path."""
    targets = target_matrices(model)
    available: list[str] = []
    for t in targets:
        roles = (["q", "k", "v"] if t.role == "qkv" else [t.role] if t.role in ("q", "k", "v", "o")
                 else ["mlp"] if t.group == "mlp" else [])
        for r in roles:
            if r not in available:
                available.append(r)

    def fail(message: str, actual: Any = None) -> None:
        issue = {"path": path, "message": message,
                 "expected": f"a non-empty list of distinct projections of this model: {', '.join(available)}"}
        if actual is not None:
            issue["actual"] = actual
        raise ConfigError([issue])

    if len(modules) == 0:
        fail("is empty: O-LoRA needs at least one projection to adapt", [])
    dup = next((m for i, m in enumerate(modules) if list(modules).index(m) != i), None)
    if dup is not None:
        fail(f"names '{dup}' twice", dup)
    slots: list[AdapterSlot] = []
    for m in modules:
        # `mlp`: every projection of every MLP block, each whole, as the TypeScript engine adapts them.
        own = [t for t in targets if (t.group == "mlp" if m == "mlp" else t.role == m)]
        if own:
            slots += [AdapterSlot(t.module_name, t.name, t, t.d_in, t.d_out, 0, t.d_out) for t in own]
            continue
        block = FUSED_BLOCK.get(m)
        fused = [] if block is None else [t for t in targets if t.role == "qkv"]
        if not fused:
            what = (f"this {model_family(model)} model has no MLP projection to adapt" if m == "mlp" else
                    f"'{m}' is not an attention projection of this {model_family(model)} model")
            fail(f"{what} (it has {', '.join(available) or 'none'})", m)
        for t in fused:
            if t.d_out % 3 != 0:
                fail(f"the fused projection {t.name} has {t.d_out} outputs, not three equal q/k/v blocks", m)
            d = t.d_out // 3
            slots.append(AdapterSlot(f"{t.module_name}.{m}", t.name, t, t.d_in, d, block * d, t.d_out, m))
    # One order for every run, whatever order the config lists modules in: layer by layer as the inventory.
    order = {t.name: i for i, t in enumerate(targets)}
    return sorted(slots, key=lambda s: (order[s.weight], s.offset))


class OLoraProjection(nn.Module):
    """An adapted projection (nn.Linear or GPT-2's Conv1D) with the LoRA pairs of every task on its slots.

    `weight` and `bias` are the original module's Parameters, so the model's keys for them do not change.
    `active` is the last task whose pairs are applied (-1: none, the base model).
    """

    def __init__(self, original: nn.Module, orientation: str, slots: list[AdapterSlot], scale: float):
        super().__init__()
        self.weight = original.weight
        bias = getattr(original, "bias", None)
        self.bias = bias if isinstance(bias, nn.Parameter) else None
        object.__setattr__(self, "original", original)
        self.orientation = orientation
        self.slots = slots
        self.scale = scale
        self.olora = nn.ParameterDict()
        self.active = -1
        #: While training with dropout: the inverted-dropout multiplier for this step's input (x -> a tensor of x's
        #: shape), set by OLora; every task's pairs act on x times it, as the authors' code applies lora_dropout.
        self.dropout_mask: Callable[[torch.Tensor], torch.Tensor] | None = None

    @staticmethod
    def part_name(part: str, task: int, slot: AdapterSlot) -> str:
        return f"{part}_{task}" + (f"_{slot.block}" if slot.block else "")

    def pair(self, task: int, slot: AdapterSlot) -> tuple[nn.Parameter, nn.Parameter]:
        return self.olora[self.part_name("A", task, slot)], self.olora[self.part_name("B", task, slot)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The base projection runs in the original module: a sharded model (FSDP2) puts the gathered weight on
        # the module that registered it, which is that one.
        y = self.original(x)
        if self.active < 0:
            return y
        # Training runs with gradients, evaluation without (evaluate.py): the mask is a training-time thing only.
        if self.dropout_mask is not None and torch.is_grad_enabled():
            x = x * self.dropout_mask(x)
        for slot in self.slots:
            pairs = [self.pair(t, slot) for t in range(self.active + 1)]
            A = torch.cat([a for a, _ in pairs], 0)  # [(t+1) r, d_in]
            B = torch.cat([b for _, b in pairs], 1)  # [d_out, (t+1) r]
            d = (x @ A.transpose(0, 1).to(x.dtype)) @ B.transpose(0, 1).to(x.dtype) * self.scale
            if slot.d_out != slot.width:
                d = F.pad(d, (slot.offset, slot.width - slot.offset - slot.d_out))
            y = y + d
        return y


def _dense(t: torch.Tensor) -> torch.Tensor:
    # Outside the module's forward a sharded wrapper leaves the pairs as DTensors; the terms here are small.
    return t.full_tensor() if is_dtensor(t) else t


class OLora(Method):
    name = "o-lora"

    def __init__(self, config: dict[str, Any], path: str | None = None):
        super().__init__(config)
        self.path = path
        self.r = int(config["r"])
        self.scale = float(config["alpha"]) / self.r
        self.lambda1 = float(config["lambda1"])
        self.lambda2 = float(config["lambda2"])
        self.dropout = float(config.get("dropout", 0) or 0)
        #: Optimizer steps taken in the run: with the weight's name, the seed of each step's dropout mask.
        self.steps = 0
        self.slots: list[AdapterSlot] = []
        #: One module per adapted weight, by HF key of the weight.
        self.wrappers: dict[str, OLoraProjection] = {}
        #: Tasks started (the last one's pairs train).
        self.started = 0
        #: Tasks whose pairs exist in the modules.
        self.allocated = 0
        self.seed = 0

    # ---------------------------------------------------------------------------------------------------------

    def setup(self, ctx: MethodContext) -> None:
        self.path = method_path(ctx, self.path)
        self.slots = resolve_slots(ctx.model, self.config["modules"], f"{self.path}.modules")
        too_big = next((s for s in self.slots if self.r > min(s.d_in, s.d_out)), None)
        if too_big is not None:
            d = min(too_big.d_in, too_big.d_out)
            raise ConfigError([{
                "path": f"{self.path}.r",
                "message": f"rank {self.r} exceeds min(d_out, d_in) = {d} of {too_big.key}",
                "expected": f"an integer <= {d}",
                "actual": self.r,
            }])
        tasks = manifest_value(ctx.manifest, "tasks")
        n_tasks = len(tasks) if isinstance(tasks, (list, tuple)) else None
        d_in = min(s.d_in for s in self.slots)
        if n_tasks is not None and n_tasks * self.r > d_in:
            ctx.warn(
                f"o-lora: {n_tasks} tasks x rank {self.r} exceed the input width {d_in}, so later adapters cannot be "
                "orthogonal to all earlier ones; the orthogonality loss cannot reach zero",
                "o-lora-capacity",
            )
        if self.config.get("lr") is None:
            ctx.warn(f"o-lora trains with training.lr; the O-LoRA paper uses 1e-3 for its adapters: set {self.path}.lr", "o-lora-lr")
        self.seed = method_seed(ctx.seed, "o-lora")
        by_weight: dict[str, list[AdapterSlot]] = {}
        for s in self.slots:
            by_weight.setdefault(s.weight, []).append(s)
        for weight, slots in by_weight.items():
            t = slots[0].target
            wrapper = OLoraProjection(t.module, t.orientation, slots, self.scale)
            replace_module(ctx.model, t.module, wrapper)
            self.wrappers[weight] = wrapper
            if self.dropout > 0:
                wrapper.dropout_mask = functools.partial(self.dropout_mask, weight)
        self._allocate(n_tasks or 1)

    def _allocate(self, tasks: int) -> None:
        """Creates the (frozen) pairs of tasks [allocated, tasks)."""
        for task in range(self.allocated, tasks):
            for s in self.slots:
                w = self.wrappers[s.weight]
                A0, B0 = self.initial_pair(s, task)
                device, dtype = w.weight.device, w.weight.dtype if w.weight.is_floating_point() else torch.float32
                w.olora[OLoraProjection.part_name("A", task, s)] = nn.Parameter(A0.to(device=device, dtype=dtype), requires_grad=False)
                w.olora[OLoraProjection.part_name("B", task, s)] = nn.Parameter(B0.to(device=device, dtype=dtype), requires_grad=False)
        self.allocated = max(self.allocated, tasks)

    def dropout_mask(self, weight: str, x: torch.Tensor) -> torch.Tensor:
        """0 with probability `dropout`, else 1 / (1 - dropout), over x's elements in order: the TypeScript engine's
        mask for the same weight and step (mulberry32 seeded by the method seed, the step and the weight), so both
        engines drop the same inputs of the same batch."""
        rng = Rng((self.seed ^ hash_string(f"dropout/{self.steps}/{weight}")) & _M32)
        keep = np.float32(1 / (1 - self.dropout))
        m = np.where(rng.next(x.numel()) < self.dropout, np.float32(0), keep).astype(np.float32)
        return torch.from_numpy(m).reshape(x.shape).to(device=x.device, dtype=x.dtype)

    def after_step(self, params: dict[str, nn.Parameter], ctx: MethodContext) -> None:
        self.steps += 1

    def initial_pair(self, s: AdapterSlot, task: int) -> tuple[torch.Tensor, torch.Tensor]:
        """PEFT's init: A Kaiming-uniform with a = √5, i.e. U(-1/√d_in, 1/√d_in); B zero. Seeded per task and slot
        as the TypeScript engine seeds it (the same float32 values)."""
        rng = Rng((self.seed ^ hash_string(f"{task}/{s.key}")) & _M32)
        bound = 1 / np.sqrt(s.d_in)
        a = (2 * rng.next(self.r * s.d_in) - 1) * bound
        return torch.from_numpy(a.astype(np.float32)).reshape(self.r, s.d_in), torch.zeros(s.d_out, self.r)

    def before_task(self, ctx: MethodContext) -> None:
        if self.started != ctx.task:
            raise ValueError(
                f"o-lora: asked to start task {ctx.task} with adapters for {self.started} tasks; the checkpoint and the run disagree"
            )
        self._allocate(ctx.task + 1)
        self.started = ctx.task + 1
        self._activate()

    def _activate(self) -> None:
        t = self.started - 1
        for w in self.wrappers.values():
            w.active = t
        for s in self.slots:
            for task in range(self.allocated):
                A, B = self.wrappers[s.weight].pair(task, s)
                A.requires_grad_(task == t)
                B.requires_grad_(task == t)

    def trainable(self, ctx: MethodContext) -> dict[str, nn.Parameter]:
        t = self.started - 1
        if t < 0:
            raise ValueError("o-lora: trainable() before before_task(): no adapter exists yet")
        out: dict[str, nn.Parameter] = {}
        for s in self.slots:
            A, B = self.wrappers[s.weight].pair(t, s)
            out[pair_key(t, s, "A")] = A
            out[pair_key(t, s, "B")] = B
        train = {id(p) for p in out.values()}
        for p in ctx.model.parameters():
            p.requires_grad_(id(p) in train)
        return out

    def extra_loss(self, batch: Any, ctx: MethodContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
        t = self.started - 1
        terms: dict[str, torch.Tensor] = {}
        if t >= 1 and self.lambda1 > 0:
            parts = []
            for s in self.slots:
                w = self.wrappers[s.weight]
                earlier = torch.cat([_dense(w.pair(i, s)[0]) for i in range(t)], 0)  # [t r, d_in]
                parts.append((earlier @ _dense(w.pair(t, s)[0]).transpose(0, 1)).square().sum())
            terms["orthogonality"] = torch.stack(parts).sum() * self.lambda1
        if t >= 0 and self.lambda2 > 0:
            parts = []
            for s in self.slots:
                A, B = self.wrappers[s.weight].pair(t, s)
                parts += [_dense(A).square().sum(), _dense(B).square().sum()]
            terms["l2"] = torch.stack(parts).sum() * self.lambda2
        if not terms:
            return None
        values = list(terms.values())
        return (values[0] if len(values) == 1 else torch.stack(values).sum()), terms

    @torch.no_grad()
    def merged(self) -> dict[str, torch.Tensor]:
        """Every adapted weight with the pairs of the tasks started merged in, W + (alpha / r) Σ_i B_i A_i in the
        weight's own layout (Conv1D: the transpose), for saving a plain checkpoint."""
        out: dict[str, torch.Tensor] = {}
        for s in self.slots:
            w = self.wrappers[s.weight]
            W = out.get(s.weight)
            if W is None:
                W = out[s.weight] = full_tensor(w.weight.detach()).clone()
            for task in range(self.started):
                A, B = (full_tensor(p.detach()) for p in w.pair(task, s))
                delta = (B @ A) * self.scale  # [d_out, d_in]
                if w.orientation == "out_in":
                    W[s.offset : s.offset + s.d_out, :] += delta
                else:
                    W[:, s.offset : s.offset + s.d_out] += delta.transpose(0, 1)
        return out

    # ---------------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The TypeScript method's state: tensors `olora.<task>.<slot>.<A|B>` for the tasks started."""
        tensors: dict[str, torch.Tensor] = {}
        for task in range(self.started):
            for s in self.slots:
                A, B = self.wrappers[s.weight].pair(task, s)
                tensors[pair_key(task, s, "A")] = A.detach().clone()
                tensors[pair_key(task, s, "B")] = B.detach().clone()
        json = {"tasks": self.started, "r": self.r, "slots": [s.key for s in self.slots], "steps": self.steps}
        return {"tensors": tensors, "json": json}

    def load_state_dict(self, state: dict[str, Any], ctx: MethodContext) -> None:
        j, tensors = state["json"], state["tensors"]
        mine = [s.key for s in self.slots]
        if j["r"] != self.r or list(j["slots"]) != mine:
            raise ValueError(
                f"o-lora checkpoint has rank {j['r']} adapters on {len(j['slots'])} projections, the config asks for rank "
                f"{self.r} on {len(mine)}; resume with the config the run started with"
            )
        tasks = int(j["tasks"])
        self._allocate(tasks)
        with torch.no_grad():
            for task in range(tasks):
                for s in self.slots:
                    A, B = self.wrappers[s.weight].pair(task, s)
                    for part, p in (("A", A), ("B", B)):
                        key = pair_key(task, s, part)
                        if key not in tensors:
                            raise ValueError(f"o-lora checkpoint lacks tensor '{key}'; was it written by another method or model?")
                        p.copy_(tensors[key])
        self.started = tasks
        self.steps = int(j.get("steps", 0))
        if tasks > 0:
            self._activate()

    @property
    def tasks(self) -> int:
        """Number of tasks with adapters (the last one trains)."""
        return self.started
