"""Shared pieces of the method tests: resolved method configs, tiny models, batches, a context, and a driver
that runs one optimizer step through the method hooks in the training loop's order:

    forward with labels (+ extra_loss) -> backward -> global-norm clipping -> transform_gradients
    -> optimizer step -> after_step

No test cases here.
"""
from __future__ import annotations

import copy
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from sculpt_torch.methods.base import Batch, Method, MethodContext

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "test" / "fixtures" / "hf-reference"
LLAMA_TINY = FIXTURES / "llama-tiny"
GPT2_TINY = FIXTURES / "gpt2-tiny"
T5_TINY = FIXTURES / "t5-tiny"
ASSET_LLAMA = REPO / "assets" / "models" / "tiny-llama"

torch.set_num_threads(min(2, os.cpu_count() or 1))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
logging.getLogger("transformers").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*Model config.*")
# transformers' own deprecation notices (e.g. when PEFT wraps a model) say nothing about the methods under test.
warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")

# The defaults of src/protocol/config.ts, as the TypeScript side resolves a method entry before the worker sees it.
_RANK_DEFAULTS: dict[str, dict[str, Any]] = {
    "adaptive": {"mrr": 0.1, "trr": 0.8, "importance": "block", "normalisation": "minmax"},
    "schedule": {"start": 0.3, "step": 0.1, "max": 0.9},
    "authors-schedule": {"start": 0.07, "step": 0.07},
    "energy": {"threshold": 0.9, "thresholdStep": 0, "maxThreshold": 0.99},
    "fixed": {},
}


def rank_policy(**rank: Any) -> dict[str, Any]:
    out = {**_RANK_DEFAULTS[rank["policy"]], **rank}
    if rank["policy"] == "fixed" and not any(k in rank for k in ("k", "ratio", "effectiveRank")):
        out["ratio"] = 0.5
    return out


def adaptive_svd_config(**over: Any) -> dict[str, Any]:
    cfg = {
        "method": "adaptive-svd",
        "targets": ["attention", "mlp"],
        "nonTargets": "trainable",
        "rank": {"policy": "fixed", "ratio": 0.5},
        "projection": "two-sided",
        "parametrisation": "dense",
        "protectPretrained": False,
        "calibrationSamples": 128,
    }
    cfg.update(over)
    cfg["rank"] = rank_policy(**cfg["rank"])
    return cfg


def ewc_config(**over: Any) -> dict[str, Any]:
    return {"method": "ewc", "lambda": 1000, "gamma": 1, "fisherSamples": 128, **over}


def lwf_config(**over: Any) -> dict[str, Any]:
    return {"method": "lwf", "temperature": 2, "alpha": 1, **over}


def olora_config(**over: Any) -> dict[str, Any]:
    return {"method": "o-lora", "r": 8, "alpha": 32, "modules": ["q", "v"], "lambda1": 0.5, "lambda2": 0, **over}


def load_model(folder: Path) -> torch.nn.Module:
    """A fixture model in float32 with eager attention, in eval mode (the TypeScript engine has no dropout)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    config = AutoConfig.from_pretrained(folder)
    cls = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    model = cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    return model.eval()


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def causal_batch(rows: list[tuple[list[int], list[int]]], pad: int = 0) -> Batch:
    """As src/engine/data/batches.ts makeBatch: prompt then answer, right-padded; labels on the answer only."""
    T = max(len(p) + len(a) for p, a in rows)
    ids = torch.full((len(rows), T), pad, dtype=torch.long)
    labels = torch.full((len(rows), T), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for i, (p, a) in enumerate(rows):
        seq = p + a
        ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, len(p) : len(seq)] = torch.tensor(a)
        mask[i, : len(seq)] = 1
    return Batch(ids, labels, mask, labelled=int((labels != -100).sum()), tokens=int(mask.sum()))


def seq2seq_batch(rows: list[tuple[list[int], list[int]]], pad: int = 0) -> Batch:
    S = max(len(x) for x, _ in rows)
    T = max(len(y) for _, y in rows)
    ids = torch.full((len(rows), S), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), S), dtype=torch.long)
    labels = torch.full((len(rows), T), -100, dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
        labels[i, : len(y)] = torch.tensor(y)
    return Batch(ids, labels, mask, labelled=int((labels != -100).sum()), tokens=int(mask.sum()))


def lm_batch(input_ids: torch.Tensor) -> Batch:
    """The fixtures' batches: labels = input_ids (every token after the first is predicted), mask all ones."""
    ids = input_ids.long()
    return Batch(ids, ids.clone(), torch.ones_like(ids), labelled=int(ids.numel() - ids.shape[0]), tokens=int(ids.numel()))


def synthetic_task(seed: int, n: int, vocab: int, prompt_len: int = 6, answer_len: int = 2) -> list[tuple[list[int], list[int]]]:
    """n (prompt, answer) rows of token ids in [3, vocab): the answer is a function of the prompt, so there is
    something to learn."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        length = int(torch.randint(prompt_len - 2, prompt_len + 1, (1,), generator=g))
        prompt = [1] + torch.randint(3, vocab, (length,), generator=g).tolist()
        answer = [3 + (sum(prompt) * (seed + 1) + j) % (vocab - 3) for j in range(answer_len - 1)] + [2]
        rows.append((prompt, answer))
    return rows


class Recorder:
    """What a method reported: ranks messages and warnings."""

    def __init__(self) -> None:
        self.ranks: list[dict[str, Any]] = []
        self.warnings: list[tuple[str, str | None]] = []

    def report_ranks(self, policy: str, matrices: list[dict[str, Any]], seconds: float, warnings: list[str] | None = None) -> None:
        self.ranks.append({"policy": policy, "matrices": matrices, "seconds": seconds, "warnings": list(warnings or [])})

    def warn(self, message: str, code: str | None = None) -> None:
        self.warnings.append((message, code))


def context(
    model: torch.nn.Module,
    config: dict[str, Any],
    tasks: list[list[tuple[list[int], list[int]]]] | None = None,
    seq2seq: bool = False,
    seed: int = 0,
    method_index: int = 0,
    eval_batch_size: int = 8,
    recorder: Recorder | None = None,
) -> tuple[MethodContext, Recorder]:
    """A MethodContext over in-memory tasks; calibration batches are each task's first examples."""
    rec = recorder or Recorder()
    tasks = tasks or [[]]
    make = seq2seq_batch if seq2seq else causal_batch

    def calibration_batches(task: int, examples: int, batch_size: int | None = None) -> list[Batch]:
        rows = tasks[task][:examples]
        size = batch_size or eval_batch_size
        return [make(rows[i : i + size]) for i in range(0, len(rows), size)]

    manifest = {"methodIndex": method_index, "seed": seed, "tasks": [{"index": i} for i in range(len(tasks))]}
    ctx = MethodContext(
        model=model,
        manifest=manifest,  # type: ignore[arg-type]
        config=config,
        task=0,
        seed=seed,
        device=torch.device("cpu"),
        calibration_batches=calibration_batches,
        report_ranks=rec.report_ranks,
        warn=rec.warn,
    )
    return ctx, rec


def model_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The Hugging Face loss with labels: the mean over answer tokens (causal: shifted inside)."""
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss


def train_step(
    model: torch.nn.Module,
    method: Method,
    ctx: MethodContext,
    batch: Batch,
    params: dict[str, torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    lr: float,
    grad_clip: float = 0.0,
) -> tuple[float, dict[str, float]]:
    """One optimizer step through the method's hooks; returns the loss (with the extra terms) and the terms."""
    optimizer.zero_grad(set_to_none=True)
    loss = model_loss(model, batch)
    terms: dict[str, float] = {}
    extra = method.extra_loss(batch, ctx)
    if extra is not None:
        total, parts = extra
        loss = loss + total
        terms = {k: float(v.detach()) for k, v in parts.items()}
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_([p for p in params.values() if p.grad is not None], grad_clip)
    method.transform_gradients(params, ctx)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    method.after_step(params, ctx)
    return float(loss.detach()), terms


def run_task(
    model: torch.nn.Module,
    method: Method,
    ctx: MethodContext,
    task: int,
    batches: list[Batch],
    make_optimizer: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
    lr: float,
    grad_clip: float = 0.0,
) -> list[float]:
    """before_task -> trainable -> steps -> after_task, as the training loop runs a task."""
    ctx.task = task
    method.before_task(ctx)
    params = method.trainable(ctx)
    optimizer = make_optimizer(list(params.values()))
    losses = [train_step(model, method, ctx, b, params, optimizer, lr, grad_clip)[0] for b in batches]
    method.after_task(ctx)
    return losses


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Norm-wise relative error |a - b| / |b| (in float64)."""
    a64, b64 = a.detach().double(), b.detach().double()
    return float((a64 - b64).norm() / b64.norm().clamp_min(1e-30))


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def clone_model(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model)
