"""The methods on sharded weights, in two gloo processes on the CPU (FSDP2's fully_shard runs there in this torch).

1. The dense adaptive-SVD path on row-sharded DTensors (FSDP2's Shard(0) layout): the boundary SVD is done once per
   matrix and broadcast, the projections of the local shards (one all-reduce for the left side) equal the
   unsharded projection, and every weight change of a step stays orthogonal to the protected subspace on both
   sides. Uneven shards (9 rows over 2 processes) and a layout that is gathered (Shard(1)) are covered too.
2. adaptive-svd (adaptive rank policy: importance, SVD, projection and re-projection), EWC (Fisher and penalty)
   and O-LoRA on a llama sharded with fully_shard as sculpt_torch/distributed.py shards it, and the factored
   adaptive-svd and LwF on whole replicas ('ddp'), stepped as the training loop steps (each process a share of the batch, the loss over the global count of answer tokens,
   extra_loss / world, whole gradients summed over the processes, FSDP2's summed), against one process on the
   whole batch: the same weights to 1e-5.
"""
from __future__ import annotations

import os
import socket
import tempfile
import unittest

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LR = 0.02


def _rows() -> list:
    from tests.test_methods_support import synthetic_task

    return synthetic_task(7, 8, 512)


def _fsdp(model, mesh) -> None:
    from torch.distributed.fsdp import fully_shard

    blocks = set(model._no_split_modules)
    for module in model.modules():
        if type(module).__name__ in blocks:
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)
    for module in model.modules():
        if hasattr(module, "set_gradient_divide_factor"):
            module.set_gradient_divide_factor(1.0)
        if hasattr(module, "set_force_sum_reduction_for_comms"):
            module.set_force_sum_reduction_for_comms(True)


def _step(model, method, ctx, rows, params, rank: int, world: int) -> None:
    """One step as sculpt_torch/train.py takes it, with an element-wise scaled update (as Adam's)."""
    from sculpt_torch.methods.ewc import answer_nll
    from sculpt_torch.methods.projection import is_dtensor

    from tests.test_methods_support import causal_batch

    share = causal_batch(rows[rank::world])
    labelled = causal_batch(rows).labelled
    loss = answer_nll(model, share) / labelled
    extra = method.extra_loss(share, ctx)
    if extra is not None:
        loss = loss + extra[0] / world
    loss.backward()
    if world > 1:
        for p in params.values():
            if p.grad is not None and not is_dtensor(p.grad):
                dist.all_reduce(p.grad)
    method.transform_gradients(params, ctx)
    with torch.no_grad():
        for p in params.values():
            if p.grad is not None:
                p.add_(-LR * p.grad * (1 + p.detach().abs()))
    method.after_step(params, ctx)
    for p in params.values():
        p.grad = None


def _method_runs(rank: int, world: int, mesh) -> dict[str, torch.Tensor]:
    """The methods' runs (FSDP2 with a mesh, else whole replicas as 'ddp'); the whole weights (and the Fisher)
    they end with. The rows' answers are all two tokens long, so the processes' shares hold as many answer
    positions each, and LwF's mean of the shares' means is the whole batch's mean."""
    from sculpt_torch.methods.adaptive_svd import AdaptiveSvd
    from sculpt_torch.methods.ewc import Ewc
    from sculpt_torch.methods.lwf import Lwf
    from sculpt_torch.methods.olora import OLora
    from sculpt_torch.methods.projection import full_tensor

    from tests.test_methods_support import (
        LLAMA_TINY, adaptive_svd_config, context, ewc_config, load_model, lwf_config, olora_config)

    rows = _rows()
    out: dict[str, torch.Tensor] = {}
    for label, shard, make, cfg in (
        ("svd", "fsdp2", AdaptiveSvd, adaptive_svd_config(protectPretrained=True, calibrationSamples=6,
                                                          rank={"policy": "adaptive", "importance": "matrix", "normalisation": "minmax"})),
        ("ewc", "fsdp2", Ewc, ewc_config(fisherSamples=3, **{"lambda": 1e4})),
        ("olora", "fsdp2", OLora, olora_config(r=4, lambda1=1.0, lambda2=0.1, lr=LR)),
        ("factored", "ddp", AdaptiveSvd, adaptive_svd_config(protectPretrained=True, parametrisation="factored")),
        ("lwf", "ddp", Lwf, lwf_config()),
    ):
        model = load_model(LLAMA_TINY)
        sharded = mesh is not None and shard == "fsdp2"
        if sharded:
            _fsdp(model, mesh)
        method = make(cfg, "methods[0]")
        ctx, rec = context(model, cfg, tasks=[rows, rows], eval_batch_size=4)
        ctx.rank, ctx.world, ctx.mesh = rank, world, mesh if sharded else None
        ctx.shard = shard if world > 1 else "none"
        method.setup(ctx)
        for task in range(2):
            ctx.task = task
            method.before_task(ctx)
            params = method.trainable(ctx)
            for _ in range(2):
                _step(model, method, ctx, rows, params, rank, world)
            method.after_task(ctx)
        for name, p in model.named_parameters():
            out[f"{label}/{name}"] = full_tensor(p.detach()).clone()
        if label == "svd":
            out["svd/ks"] = torch.tensor([m["k"] for r in rec.ranks for m in r["matrices"]])
        if label == "ewc":
            for name, F in method.fisher.items():
                out[f"ewc/F/{name}"] = full_tensor(F).clone()
    return out


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    from sculpt_torch.methods.adaptive_svd import AdaptiveSvd
    from sculpt_torch.methods.projection import decompose_weights, project_, project_gradient, subspace_of

    from tests.test_methods_support import LLAMA_TINY, adaptive_svd_config, context, load_model

    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, init_method=f"tcp://127.0.0.1:{port}")
    try:
        mesh = init_device_mesh("cpu", (world,))
        report: dict[str, float] = {}
        g = torch.Generator().manual_seed(0)  # the same matrices on every process
        for label, (m, n, k), placement in (("uneven", (9, 6, 3), Shard(0)), ("even", (12, 8, 4), Shard(0)), ("gathered", (10, 8, 3), Shard(1))):
            W, G = torch.randn(m, n, generator=g), torch.randn(m, n, generator=g)
            Wd = distribute_tensor(W, mesh, [placement])
            d = decompose_weights([Wd], [k])[0]
            sub = subspace_of(Wd, d, k)
            U, V = d.U.float(), d.V.float()
            for mode in ("two-sided", "paper"):
                Gd = distribute_tensor(G.clone(), mesh, [placement])
                project_(Gd, sub, mode)
                report[f"{label}/{mode}"] = float((Gd.full_tensor() - project_gradient(G, U, V, mode)).norm() / G.norm())
            ref = torch.linalg.svd(W.double(), full_matrices=False)
            report[f"{label}/subspace"] = float((d.U @ d.U.T - ref.U[:, :k] @ ref.U[:, :k].T).norm())

        # The method on a llama whose target weights are row-sharded DTensor parameters.
        model = load_model(LLAMA_TINY)
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and module.weight.shape != (512, 64):
                module.weight = torch.nn.Parameter(distribute_tensor(module.weight.detach().clone(), mesh, [Shard(0)]))
        cfg = adaptive_svd_config(protectPretrained=True, rank={"policy": "fixed", "ratio": 0.5})
        method = AdaptiveSvd(cfg, "methods[0]")
        ctx, rec = context(model, cfg)
        ctx.rank, ctx.world = rank, world
        method.setup(ctx)
        method.before_task(ctx)
        params = method.trainable(ctx)
        start = {t.name: t.parameter.detach().full_tensor().clone() for t in method.targets}
        for step in range(2):
            for t in method.targets:
                p = t.parameter
                p.grad = distribute_tensor(torch.randn(p.shape, generator=g), mesh, [Shard(0)])
            method.transform_gradients(params, ctx)
            with torch.no_grad():  # an element-wise scaled step, as Adam's, which leaves the subspace
                for t in method.targets:
                    p = t.parameter
                    p.add_(-0.01 * p.grad * (1 + p.detach().abs()))
            method.after_step(params, ctx)
        worst = 0.0
        for t in method.targets:
            dW = (t.parameter.detach().full_tensor() - start[t.name]).double()
            sub = method.sub[t.name]
            U_local, V = sub.U_k.double(), sub.V_k.double()
            rows = sub.layout.rows
            left = U_local.T @ dW[rows]  # partial U_kᵀ ΔW over this process's rows
            dist.all_reduce(left)
            worst = max(worst, float(left.norm() / dW.norm()), float((dW @ V).norm() / dW.norm()))
        report["method/orthogonality"] = worst
        report["method/ranks"] = float(len(rec.ranks[0]["matrices"]))
        runs = _method_runs(rank, world, mesh)
        if rank == 0:
            torch.save(report, os.path.join(out_dir, "report.pt"))
            torch.save(runs, os.path.join(out_dir, "runs.pt"))
    finally:
        dist.destroy_process_group()


class ShardedProjectionTest(unittest.TestCase):
    def test_sharded_projections_and_fsdp2_method_runs_equal_one_process(self) -> None:
        with tempfile.TemporaryDirectory() as out:
            processes = mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=False)
            whole = _method_runs(0, 1, None)  # one process on the whole batch, while the two run
            while not processes.join():
                pass
            report = torch.load(os.path.join(out, "report.pt"))
            runs = torch.load(os.path.join(out, "runs.pt"))
        self.assertEqual(set(runs), set(whole))
        self.assertTrue(torch.equal(runs["svd/ks"], whole["svd/ks"]), "the same ranks from the sharded calibration")
        for key, want in whole.items():
            if key == "svd/ks":
                continue
            err = float((runs[key].double() - want.double()).norm() / want.double().norm().clamp_min(1e-30))
            self.assertLessEqual(err, 1e-5, f"{key}: relative difference {err} between 2 FSDP2 processes and one")
        for key, value in report.items():
            if key.endswith(("two-sided", "paper")):
                self.assertLessEqual(value, 1e-6, key)
            elif key.endswith("subspace"):
                self.assertLessEqual(value, 1e-10, key)
        self.assertLessEqual(report["method/orthogonality"], 1e-5)
        self.assertEqual(report["method/ranks"], 14)


if __name__ == "__main__":
    unittest.main()
