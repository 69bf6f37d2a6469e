"""Adaptive SVD ("Sculpting Subspaces", Nayak et al. 2025; OSFT): constrained full fine-tuning.

Mirrors src/engine/methods/adaptive-svd.ts. At each task boundary every target matrix W is decomposed,
W = U diag(sigma) Vᵀ; its top-k singular directions (U_k, V_k), with k from the rank policy, are what earlier
tasks rely on. During the next task:

  dense     G <- (I - U_k U_kᵀ) G (I - V_k V_kᵀ) before the optimizer step, and the step's weight change D is
            re-projected the same way after it (Adam's element-wise scaling rotates D out of the subspace);
  factored  W = U_k diag(sigma_k) V_kᵀ + U_low diag(S_low) V_lowᵀ with U_low, S_low, V_low trained,
            dU_low <- (I - U_k U_kᵀ) dU_low, dV_low <- (I - V_k V_kᵀ) dV_low (PEFT's OSF), merged back into W
            at the task end.

`paper` projection is the printed G - U_k U_kᵀ G V_k V_kᵀ, for ablation. The subspace is recomputed from the
current weights at every boundary, so nothing per task is stored. Matrices are decomposed as stored (GPT-2's
Conv1D [in, out] too), as the TypeScript engine does, so U_k, V_k and the ranks event's shapes agree.

How the hooks divide the work (sculpt_torch/methods/base.py):
  before_task         calibrate (adaptive policy), choose k, decompose, report the ranks; factored: put a
                      module computing W_high + U_low diag(S_low) V_lowᵀ in place of each target module
  trainable           by nonTargets; factored: the factors instead of the targets' weights. Also sets
                      requires_grad on every model parameter to match, by identity
  transform_gradients project the gradients; dense: also keeps the weights as they are before the step
  after_step          dense: W <- W_before + P(W - W_before)
  after_task          factored: merge the factors into the weights and put the original modules back

Several processes (factored: 'ddp' only, refused under FSDP2 at setup): every process calls every hook. The SVD of each
weight gathers the whole matrix and runs on one process, which broadcasts the factors (projection.py
iter_decompositions); under FSDP2 each process keeps the rows of U_k matching its shard of W and all of V_k
(n x k per matrix: the dense path's memory per process is not divided by the world size yet), and the left
projection sums U_kᵀ G over the shards. Importance scores are taken from process 0, so that every process
chooses the same k.
"""
from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..targets import ConfigError, TargetMatrix, method_path, named_parameters, parameter_groups, replace_module
from .base import Method, MethodContext
from .projection import (
    ProtectedSubspace,
    agree,
    iter_decompositions,
    layout_of,
    local_tensor,
    project_,
    subspace_of,
)
from .rank_policy import (
    choose_ranks,
    constrained_matrices,
    importances,
    rank_pattern_issues,
    sigma_stats,
)

#: Parameter groups a `nonTargets: {"freeze": [...]}` option freezes (when they are not targets).
FREEZE_GROUPS: dict[str, tuple[str, ...]] = {
    "norms": ("norm",),
    "head": ("head",),
    "embeddings": ("embedding", "position"),
    "biases": ("bias",),
}


class FactoredWeight(nn.Module):
    """A target module for one task of the factored parametrisation: its weight is
    W_high + U_low diag(S_low) V_lowᵀ (the layout W is stored in), computed densely in each forward.

    The original Parameter stays registered here as `weight` (frozen), and `bias` as it was, so the model's
    state-dict keys do not change; the factors are the method's (not registered), so a checkpoint of the
    model holds the weights as they were at the task start and the method's state holds the factors.
    """

    def __init__(self, original: nn.Module, factors: "Factors"):
        super().__init__()
        self.weight = original.weight
        bias = getattr(original, "bias", None)
        self.bias = bias if isinstance(bias, nn.Parameter) else None
        # Plain attributes (object.__setattr__ keeps nn.Module from registering them).
        object.__setattr__(self, "original", original)
        object.__setattr__(self, "factors", factors)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        W = self.factors.merged()
        o = self.original
        if isinstance(o, nn.Embedding):
            return F.embedding(x, W, o.padding_idx, o.max_norm, o.norm_type, o.scale_grad_by_freq, o.sparse)
        if isinstance(o, nn.Linear):
            return F.linear(x, W, self.bias)
        # GPT-2's Conv1D: stored [in, out], y = x W + b.
        out = x.reshape(-1, x.shape[-1]) @ W
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], W.shape[1])


class Factors:
    """W_high (fixed) and the trainable U_low [m, r-k], S_low [r-k], V_low [n, r-k] of one weight."""

    def __init__(self, W_high: torch.Tensor, U_low: torch.Tensor, S_low: torch.Tensor, V_low: torch.Tensor):
        self.W_high = W_high
        self.U_low = nn.Parameter(U_low)
        self.S_low = nn.Parameter(S_low)
        self.V_low = nn.Parameter(V_low)
        #: (original module, its wrapper) for every module whose weight this is (a tied weight has several).
        self.wrapped: list[tuple[nn.Module, FactoredWeight]] = []

    def merged(self) -> torch.Tensor:
        return self.W_high + (self.U_low * self.S_low) @ self.V_low.transpose(0, 1)


class AdaptiveSvd(Method):
    name = "adaptive-svd"

    def __init__(self, config: dict[str, Any], path: str | None = None):
        super().__init__(config)
        self.path = path
        self.policy: dict[str, Any] = config["rank"]
        self.targets: list[TargetMatrix] = []
        #: The protected subspace of every constrained matrix, by HF key.
        self.sub: dict[str, ProtectedSubspace] = {}
        #: The factored parametrisation's factors for this task, by HF key.
        self.factors: dict[str, Factors] = {}
        self.ks: list[int] = []
        #: Which of `ks` the policy clamped into [1, min_dim], for the ranks event.
        self.clamped: list[bool] = []
        self.boundaries = 0
        #: Dense: each constrained weight as it was before the current optimizer step.
        self._before: dict[str, torch.Tensor] = {}
        self._model: nn.Module | None = None

    # ---------------------------------------------------------------------------------------------------------

    def setup(self, ctx: MethodContext) -> None:
        self.path = method_path(ctx, self.path)
        self._model = ctx.model
        self.targets = constrained_matrices(ctx.model, self.config["targets"])
        if not self.targets:
            raise ConfigError([{
                "path": f"{self.path}.targets",
                "message": "selects no weight matrix of this model",
                "expected": "attention, mlp, head or embeddings",
            }])
        if self.config["parametrisation"] == "factored" and getattr(ctx, "shard", "none") == "fsdp2":
            # Every process would hold whole factors and W_high of every matrix: more than the model itself, on
            # each process. The dense parametrisation projects the shards in place.
            raise ConfigError([{
                "path": f"{self.path}.parametrisation",
                "message": "'factored' keeps whole factors of every matrix on each process, which FSDP2 does not shard",
                "expected": "'dense' with torch.shard 'fsdp2' (or torch.shard 'ddp' with 'factored')",
                "actual": "factored",
            }])
        # Check a fixed policy's k and rank patterns against every matrix now, before any training; its
        # warnings come with each boundary's ranks.
        if self.policy["policy"] == "fixed":
            issues = rank_pattern_issues(self.policy, self.targets, f"{self.path}.rank")
            if issues:
                raise ConfigError(issues)
            self._decide_ranks(None, None)

    def trainable(self, ctx: MethodContext) -> dict[str, torch.nn.Parameter]:
        params = named_parameters(ctx.model)
        target_names = {t.name for t in self.targets}
        nt = self.config["nonTargets"]
        frozen: set[str] = set()
        if nt == "frozen":
            frozen = {n for n in params if n not in target_names}
        elif nt != "trainable":
            groups = {g for option in nt["freeze"] for g in FREEZE_GROUPS[option]}
            frozen = {n for n, g in parameter_groups(ctx.model).items() if g in groups and n not in target_names}
        out: dict[str, torch.nn.Parameter] = {}
        for name, p in params.items():
            # In the factored form a target's own weight is fixed; its low-rank factors train instead.
            if name in frozen or name in self.factors:
                continue
            out[name] = p
        for name, f in self.factors.items():
            out[f"{name}#U_low"] = f.U_low
            out[f"{name}#S_low"] = f.S_low
            out[f"{name}#V_low"] = f.V_low
        train = {id(p) for p in out.values()}
        for p in params.values():
            p.requires_grad_(id(p) in train)
        return out

    def before_task(self, ctx: MethodContext) -> None:
        self._release(ctx.model)
        constrained = ctx.task > 0 or self.config["protectPretrained"]
        if not constrained:
            return
        started = time.perf_counter()
        # Calibrate on the previous task's data; before the first task (protectPretrained), on the first's.
        calibration_task = max(0, ctx.task - 1)
        importance: list[float] | None = None
        if self.policy["policy"] == "adaptive":
            batches = ctx.calibration_batches(calibration_task, self.config["calibrationSamples"])
            importance = importances(ctx.model, self.targets, batches, self.policy["importance"])
            importance = agree(importance, local_tensor(self.targets[0].parameter).device)
        # The energy policy decides from the singular values, so it asks for every vector and keeps k of them.
        after_svd = self.policy["policy"] == "energy"
        warnings = [] if after_svd else self._decide_ranks(ctx, importance)
        factored = self.config["parametrisation"] == "factored"
        vectors = [t.min_dim if factored or after_svd else self.ks[i] for i, t in enumerate(self.targets)]
        spectra: list[torch.Tensor] = []
        energy_choices = []
        weights = [t.parameter for t in self.targets]
        for i, (t, d) in enumerate(zip(self.targets, iter_decompositions(weights, vectors))):
            if after_svd:
                # The energy rank of a matrix depends on its own spectrum only: decided here, one matrix at a
                # time, it equals the decision over all of them and holds one full decomposition at a time.
                energy_choices.append(choose_ranks(self.policy, [t], self.boundaries, None, f"{self.path}.rank", [d.sigma]).choices[0])
                k = energy_choices[-1].k
            else:
                k = self.ks[i]
            self.sub[t.name] = subspace_of(t.parameter, d, k)
            if factored:
                self._factorise(ctx.model, t, d, k)
            spectra.append(d.sigma)
        if after_svd:
            self.ks = [c.k for c in energy_choices]
            self.clamped = [c.clamped for c in energy_choices]
        stats = [self._matrix_rank(i, t, spectra[i], importance) for i, t in enumerate(self.targets)]
        self.boundaries += 1
        ctx.report_ranks(self.policy["policy"], stats, time.perf_counter() - started, warnings)

    def _matrix_rank(self, i: int, t: TargetMatrix, sigma: torch.Tensor, importance: list[float] | None) -> dict[str, Any]:
        """One entry of the ranks event (src/protocol/events.ts MatrixRank), in its field order."""
        k, d = self.ks[i], t.min_dim
        entry: dict[str, Any] = {
            "name": t.name,
            "layer": t.layer,
            "role": t.role,
            "shape": list(t.shape),
            "k": int(k),
            "minDim": d,
            "ratio": k / d,
        }
        if importance is not None:
            entry["importance"] = float(importance[i])
        entry.update(sigma_stats(sigma, k))
        if self.clamped[i]:
            entry["clamped"] = True
        return entry

    def _decide_ranks(self, ctx: MethodContext | None, importance: list[float] | None) -> list[str]:
        """Sets `ks` from the policy and returns its warnings, also sent as warnings when `ctx` is given."""
        d = choose_ranks(self.policy, self.targets, self.boundaries, importance, f"{self.path}.rank")
        self.ks = [c.k for c in d.choices]
        self.clamped = [c.clamped for c in d.choices]
        if ctx is not None:
            for w in d.warnings:
                ctx.warn(w, "rank-policy")
        return d.warnings

    @torch.no_grad()
    def _factorise(self, model: nn.Module, t: TargetMatrix, d: Any, k: int) -> None:
        """Splits W = U diag(sigma) Vᵀ into the fixed top-k part and trainable low factors, and puts a module
        computing their sum in place of every module holding W. W_high is formed in float64 before it is
        rounded, so W_high + U_low diag(S_low) V_lowᵀ reproduces W to float32 rounding."""
        W = t.parameter
        dtype, device = W.dtype, W.device
        S = d.sigma.to(device=d.U.device, dtype=d.U.dtype)
        W_high = ((d.U[:, :k] * S[:k]) @ d.V[:, :k].transpose(0, 1)).to(device=device, dtype=dtype)
        f = Factors(
            W_high,
            d.U[:, k:].to(device=device, dtype=dtype).contiguous(),
            S[k:].to(device=device, dtype=dtype).contiguous(),
            d.V[:, k:].to(device=device, dtype=dtype).contiguous(),
        )
        self._install(model, t.name, W, f)

    def _install(self, model: nn.Module, name: str, W: torch.Tensor, f: Factors) -> None:
        holders = [m for m in model.modules() if not isinstance(m, FactoredWeight) and getattr(m, "weight", None) is W]
        for m in holders:
            wrapper = FactoredWeight(m, f)
            replace_module(model, m, wrapper)
            f.wrapped.append((m, wrapper))
        self.factors[name] = f

    def transform_gradients(self, params: dict[str, torch.nn.Parameter], ctx: MethodContext) -> None:
        if not self.sub:
            return
        if self.factors:
            for name, f in self.factors.items():
                sub = self.sub[name]
                with torch.no_grad():
                    if f.U_low.grad is not None and sub.k > 0:
                        g = f.U_low.grad
                        g.sub_(sub.U_k @ (sub.U_k.transpose(0, 1) @ g))
                    if f.V_low.grad is not None and sub.k > 0:
                        g = f.V_low.grad
                        g.sub_(sub.V_k @ (sub.V_k.transpose(0, 1) @ g))
            return
        training = {id(p) for p in params.values()}
        mode = self.config["projection"]
        with torch.no_grad():
            for t in self.targets:
                p = t.parameter
                if id(p) not in training:
                    continue
                # This hook is the last before the optimizer step: keep W as it is now for after_step.
                before = self._before.get(t.name)
                if before is None:
                    self._before[t.name] = p.detach().clone()
                else:
                    before.copy_(p.detach())
                if p.grad is not None:
                    project_(p.grad, self.sub[t.name], mode)

    def after_step(self, params: dict[str, torch.nn.Parameter], ctx: MethodContext) -> None:
        if not self._before or self.factors:
            return
        mode = self.config["projection"]
        with torch.no_grad():
            for t in self.targets:
                before = self._before.get(t.name)
                if before is None:
                    continue
                p = t.parameter
                D = p.detach() - before
                project_(D, self.sub[t.name], mode)
                p.copy_(before + D)

    def after_task(self, ctx: MethodContext) -> None:
        with torch.no_grad():
            for name, f in self.factors.items():
                merged = f.merged()
                for original, _ in f.wrapped:
                    original.weight.copy_(merged)
        self._release_factors(ctx.model)
        self._before.clear()

    @torch.no_grad()
    def merged(self) -> dict[str, torch.Tensor]:
        """The factored weights as the model computes them, W_high + U_low diag(S_low) V_lowᵀ, by HF key, for
        saving a plain checkpoint; none once after_task has merged them back into the weights."""
        return {name: f.merged() for name, f in self.factors.items()}

    # ---------------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The TypeScript method's state: tensors `Uh/<name>`, `Vh/<name>` (U_k, V_k; under row sharding the
        local rows of U_k) and, factored, `high/<name>`, `U_low/<name>`, `S_low/<name>`, `V_low/<name>`."""
        tensors: dict[str, torch.Tensor] = {}
        for name, s in self.sub.items():
            tensors[f"Uh/{name}"] = s.U_k.detach().clone()
            tensors[f"Vh/{name}"] = s.V_k.detach().clone()
        for name, f in self.factors.items():
            tensors[f"high/{name}"] = f.W_high.detach().clone()
            tensors[f"U_low/{name}"] = f.U_low.detach().clone()
            tensors[f"S_low/{name}"] = f.S_low.detach().clone()
            tensors[f"V_low/{name}"] = f.V_low.detach().clone()
        return {
            "tensors": tensors,
            "json": {
                "boundaries": self.boundaries,
                "ks": list(self.ks),
                "constrained": list(self.sub),
                "factored": list(self.factors),
            },
        }

    def load_state_dict(self, state: dict[str, Any], ctx: MethodContext) -> None:
        self._release(ctx.model)
        j, tensors = state["json"], state["tensors"]
        self.boundaries = int(j["boundaries"])
        self.ks = [int(k) for k in j["ks"]]
        self.clamped = [False] * len(self.ks)
        by_name = {t.name: t for t in self.targets}

        def take(key: str) -> torch.Tensor:
            if key not in tensors:
                raise ValueError(f"adaptive-svd checkpoint lacks tensor '{key}'; was it written by another method or model?")
            return tensors[key]

        for name in j["constrained"]:
            t = by_name.get(name)
            if t is None:
                raise ValueError(f"adaptive-svd checkpoint constrains '{name}', which is not a target of this model and config")
            device, dtype = local_tensor(t.parameter).device, t.parameter.dtype
            self.sub[name] = ProtectedSubspace(
                take(f"Uh/{name}").to(device=device, dtype=dtype),
                take(f"Vh/{name}").to(device=device, dtype=dtype),
                torch.zeros(0, dtype=torch.float64),
                layout_of(t.parameter),
            )
        for name in j["factored"]:
            W = by_name[name].parameter
            f = Factors(*(take(f"{part}/{name}").to(device=W.device, dtype=W.dtype) for part in ("high", "U_low", "S_low", "V_low")))
            self._install(ctx.model, name, W, f)

    # ---------------------------------------------------------------------------------------------------------

    def _release_factors(self, model: nn.Module | None) -> None:
        for f in self.factors.values():
            for original, wrapper in f.wrapped:
                if model is not None:
                    replace_module(model, wrapper, original)
        self.factors.clear()

    def _release(self, model: nn.Module | None) -> None:
        self.sub.clear()
        self._before.clear()
        self._release_factors(model)
