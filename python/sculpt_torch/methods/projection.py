"""The protected subspace of a weight and the gradient projections of constrained full fine-tuning.

Mirrors src/engine/linalg/projection.ts. At a task boundary each target weight W (m x n, as stored) is
decomposed, W = U diag(sigma) Vᵀ; its top-k singular directions (U_k, V_k) carry what earlier tasks rely on, and
later gradients are projected away from them:

    two-sided (default)  G <- (I - U_k U_kᵀ) G (I - V_k V_kᵀ),  computed as P = G - U_k (U_kᵀ G); P - (P V_k) V_kᵀ
    paper (ablation)     G <- G - U_k (U_kᵀ G V_k) V_kᵀ          (removes only the high-high block)

Only thin products (m x k, k x n) are formed, never an m x m or n x n projector.

The decomposition runs in float64 (SVD_DTYPE), as the TypeScript engine's LAPACK dgesdd path does and as the
reference fixtures were made: the energy policy picks k from cumulative sums of sigma² against thresholds, and
the factored parametrisation rebuilds W from all of its singular triplets, so float32 singular values and
vectors would move k at a threshold and leave a reconstruction error of ~1e-6 |W| in every weight at every
boundary. U_k and V_k are then kept in the weight's dtype (float32 master weights), as the TypeScript engine
keeps them; the projections run in that dtype.

Sharding: a weight that is a DTensor row-sharded over a 1-D mesh (FSDP2's Shard(0)) keeps the rows of U_k that
match its local rows and all of V_k; the left projection sums U_kᵀ G over the shards with one all-reduce of a
k x n matrix, the right one is local. Other DTensor layouts are gathered, projected and redistributed (correct,
slower). The SVD itself gathers the full matrix (see `decompose_weights`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal, Sequence

import torch
import torch.distributed as dist

try:  # DTensor exists in every torch this worker supports; the guard keeps CPU-only builds importable.
    from torch.distributed.tensor import DTensor, Replicate, Shard, distribute_tensor
except ImportError:  # pragma: no cover
    DTensor = None  # type: ignore[assignment,misc]

ProjectionMode = Literal["two-sided", "paper"]

#: Precision of the boundary SVD (see the module docstring for why float64).
SVD_DTYPE = torch.float64


def is_dtensor(t: object) -> bool:
    return DTensor is not None and isinstance(t, DTensor)


@dataclass
class Layout:
    """How a weight (and so its gradient) is laid out over the processes.

    rows: the slice of the global rows this process holds (Shard(0)), None when it holds all of them.
    group: the process group to sum partial products over (None: nothing to sum).
    gather: the layout is neither of those; project the gathered matrix and redistribute it.
    """

    rows: slice | None = None
    group: object | None = None
    gather: bool = False


def layout_of(t: torch.Tensor) -> Layout:
    if not is_dtensor(t):
        return Layout()
    placements = tuple(t.placements)
    mesh = t.device_mesh
    if all(isinstance(p, Replicate) for p in placements):
        return Layout()
    if mesh.ndim == 1 and len(placements) == 1 and isinstance(placements[0], Shard) and placements[0].dim == 0:
        start, stop = _local_rows(t)
        return Layout(rows=slice(start, stop), group=mesh.get_group())
    return Layout(gather=True)


def _local_rows(t: "DTensor") -> tuple[int, int]:
    """The global row range of this process's shard of a Shard(0) DTensor."""
    try:
        from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

        shape, offset = compute_local_shape_and_global_offset(t.shape, t.device_mesh, t.placements)
        return int(offset[0]), int(offset[0]) + int(shape[0])
    except (ImportError, TypeError):  # the helper moved: count the rows of the shards before this one
        local = t.to_local().shape[0]
        group = t.device_mesh.get_group()
        counts = [0] * dist.get_world_size(group)
        dist.all_gather_object(counts, int(local), group=group)
        me = t.device_mesh.get_local_rank()
        start = sum(counts[:me])
        return start, start + int(local)


def local_tensor(t: torch.Tensor) -> torch.Tensor:
    """The part of `t` this process holds (a view of the DTensor's local shard; `t` itself otherwise)."""
    return t.to_local() if is_dtensor(t) else t


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def reshard(model: torch.nn.Module) -> None:
    """Frees FSDP2's gathered parameters after forwards without a backward (a calibration pass): without it the
    root module stays unsharded, and the next training forward would read that copy while the optimizer
    updates the shards."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover
        return
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """The whole matrix on every process (an all-gather for a sharded DTensor; `t` itself otherwise)."""
    return t.full_tensor() if is_dtensor(t) else t


@dataclass
class ProtectedSubspace:
    """Leading singular vectors of one weight as stored (m x n) and all of its singular values."""

    #: [m, k] (under Shard(0): the local rows only), in the weight's dtype, on its device.
    U_k: torch.Tensor
    #: [n, k].
    V_k: torch.Tensor
    #: All min(m, n) singular values, descending, float64 on the CPU (for the rank policy and the ranks event).
    sigma: torch.Tensor
    layout: Layout

    @property
    def k(self) -> int:
        return int(self.U_k.shape[1])

    def truncated(self, k: int) -> "ProtectedSubspace":
        return ProtectedSubspace(self.U_k[:, :k].contiguous(), self.V_k[:, :k].contiguous(), self.sigma, self.layout)


@dataclass
class Decomposition:
    """The thin SVD of a weight as stored, `vectors` leading triplets, float64."""

    U: torch.Tensor  # [m, vectors]
    sigma: torch.Tensor  # [min(m, n)], CPU
    V: torch.Tensor  # [n, vectors]


def svd(W: torch.Tensor, vectors: int) -> Decomposition:
    """Thin SVD of a plain (gathered) matrix in SVD_DTYPE, keeping `vectors` leading singular vectors."""
    r = min(W.shape)
    if not 0 <= vectors <= r:
        raise ValueError(f"protected subspace of a {W.shape[0]} x {W.shape[1]} matrix: expected 0 <= k <= {r}, got {vectors}")
    U, S, Vh = torch.linalg.svd(W.detach().to(SVD_DTYPE), full_matrices=False)
    return Decomposition(U[:, :vectors].contiguous(), S.cpu(), Vh[:vectors].transpose(0, 1).contiguous())


def decompose_weights(weights: Sequence[torch.Tensor], vectors: Sequence[int]) -> list[Decomposition]:
    """The SVD of every weight (see iter_decompositions)."""
    return list(iter_decompositions(weights, vectors))


def iter_decompositions(weights: Sequence[torch.Tensor], vectors: Sequence[int]) -> Iterator[Decomposition]:
    """The SVD of every weight in turn, with all processes agreeing on the result. One at a time, so that a
    caller that keeps only k of the vectors never holds more than one full decomposition.

    One process: decomposed on the weight's device. Several: weight i is decomposed by process i mod world only
    and its factors are broadcast from there, so every process projects with the same bits. The weights go in
    rounds of `world`: every process takes part in gathering each sharded weight of a round (this is where the
    dense path holds a full matrix) but keeps only its own, then all processes decompose theirs at the same time,
    then the factors are broadcast in order. Each process holds at most one full matrix and its factors.
    """
    if len(weights) != len(vectors):
        raise ValueError(f"decompose_weights: {len(weights)} weights but {len(vectors)} ranks")
    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    if not distributed:
        for W, v in zip(weights, vectors):
            yield svd(full_tensor(W), v)
        return
    world, me = dist.get_world_size(), dist.get_rank()
    for start in range(0, len(weights), world):
        members = range(start, min(start + world, len(weights)))
        mine: torch.Tensor | None = None
        mine_index = -1
        shapes: dict[int, tuple[int, int, torch.device]] = {}
        for i in members:
            full = full_tensor(weights[i]).detach()  # a collective for a sharded weight: every process joins
            shapes[i] = (full.shape[0], full.shape[1], full.device)
            if i % world == me:
                mine, mine_index = full, i
            del full
        # After the round's gathers, so that the processes' decompositions overlap instead of taking turns.
        own = svd(mine, vectors[mine_index]) if mine is not None else None
        del mine
        for i in members:
            owner = i % world
            m, n, device = shapes[i]
            v = vectors[i]
            if me == owner:
                assert own is not None
                U, S, V = own.U.to(device), own.sigma.to(device=device), own.V.to(device)
            else:
                U = torch.empty(m, v, dtype=SVD_DTYPE, device=device)
                S = torch.empty(min(m, n), dtype=SVD_DTYPE, device=device)
                V = torch.empty(n, v, dtype=SVD_DTYPE, device=device)
            for t in (U, S, V):
                dist.broadcast(t, src=owner)
            yield Decomposition(U, S.cpu(), V)


def agree(values: list[float], device: torch.device) -> list[float]:
    """`values` as process 0 has them, on every process (unchanged on one process). Used for numbers that decide
    shapes, such as importance scores: tiny differences between processes' reductions must not give two
    processes different k."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return t.cpu().tolist()


def subspace_of(W: torch.Tensor, d: Decomposition, k: int) -> ProtectedSubspace:
    """The first k vectors of a decomposition of W, in W's dtype, laid out as W is."""
    layout = layout_of(W)
    dtype = W.dtype if W.dtype in (torch.float32, torch.float64) else torch.float32
    device = local_tensor(W).device
    U = d.U[:, :k]
    if layout.rows is not None:
        U = U[layout.rows]
    return ProtectedSubspace(
        U.to(device=device, dtype=dtype).contiguous(),
        d.V[:, :k].to(device=device, dtype=dtype).contiguous(),
        d.sigma,
        layout,
    )


def protected_subspace(W: torch.Tensor, k: int) -> ProtectedSubspace:
    """Decomposes W and keeps its top-k singular subspace."""
    return subspace_of(W, decompose_weights([W], [k])[0], k)


def project_two_sided(G: torch.Tensor, U_k: torch.Tensor, V_k: torch.Tensor) -> torch.Tensor:
    """(I - U_k U_kᵀ) G (I - V_k V_kᵀ) as P = G - U_k (U_kᵀ G); P - (P V_k) V_kᵀ. Returns a new tensor."""
    _check(G, U_k, V_k)
    P = G
    if U_k.shape[1] > 0:
        P = P - U_k @ (U_k.transpose(0, 1) @ P)
    if V_k.shape[1] > 0:
        P = P - (P @ V_k) @ V_k.transpose(0, 1)
    return P.clone() if P is G else P


def project_paper(G: torch.Tensor, U_k: torch.Tensor, V_k: torch.Tensor) -> torch.Tensor:
    """The formula printed in the paper, G - U_k (U_kᵀ G V_k) V_kᵀ: removes only the high-high block."""
    _check(G, U_k, V_k)
    if U_k.shape[1] == 0 or V_k.shape[1] == 0:
        return G.clone()
    core = (U_k.transpose(0, 1) @ G) @ V_k  # k x k
    return G - (U_k @ core) @ V_k.transpose(0, 1)


def project_gradient(G: torch.Tensor, U_k: torch.Tensor, V_k: torch.Tensor, mode: ProjectionMode = "two-sided") -> torch.Tensor:
    """Projects G (m x n) away from the protected subspace; returns a new tensor, G is left as it is."""
    if mode == "two-sided":
        return project_two_sided(G, U_k, V_k)
    if mode == "paper":
        return project_paper(G, U_k, V_k)
    raise ValueError(f"unknown projection mode '{mode}' (expected 'two-sided' or 'paper')")


def project_(t: torch.Tensor, sub: ProtectedSubspace, mode: ProjectionMode) -> None:
    """Projects `t` (a gradient or a weight change, laid out as the weight) in place, for any layout."""
    if sub.layout.gather:
        full = project_gradient(t.full_tensor(), sub.U_k, sub.V_k, mode)
        local_tensor(t).copy_(local_tensor(distribute_tensor(full, t.device_mesh, t.placements)))
        return
    G = local_tensor(t)
    U, V = sub.U_k, sub.V_k
    group = sub.layout.group
    if mode == "two-sided":
        if U.shape[1] > 0:
            C = U.transpose(0, 1) @ G  # k x n: a partial sum over this shard's rows
            if group is not None:
                dist.all_reduce(C, group=group)
            G.sub_(U @ C)
        if V.shape[1] > 0:
            G.sub_((G @ V) @ V.transpose(0, 1))
    elif mode == "paper":
        if U.shape[1] == 0 or V.shape[1] == 0:
            return
        core = (U.transpose(0, 1) @ G) @ V  # k x k
        if group is not None:
            dist.all_reduce(core, group=group)
        G.sub_((U @ core) @ V.transpose(0, 1))
    else:
        raise ValueError(f"unknown projection mode '{mode}' (expected 'two-sided' or 'paper')")


def _check(G: torch.Tensor, U_k: torch.Tensor, V_k: torch.Tensor) -> None:
    m, n = G.shape
    if G.dim() != 2 or U_k.dim() != 2 or V_k.dim() != 2 or U_k.shape[0] != m or V_k.shape[0] != n:
        raise ValueError(
            f"projection: gradient {list(G.shape)} needs U_k [{m}, k] and V_k [{n}, k], got U_k {list(U_k.shape)} and V_k {list(V_k.shape)}"
        )
