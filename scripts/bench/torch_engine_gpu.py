#!/usr/bin/env python3
"""The PyTorch engine's GPU check (run by scripts/gpu-check-torch; usage there and in `--help`).

For each model shape, random weights built from transformers config classes (no downloads) and saved as a Hugging
Face folder in a temporary directory, it:

 (a) trains through the worker's own loop: a prepared/ run folder in the format of docs/torch-engine.md with
     synthetic token-id tasks, run by sculpt_torch.train.run_worker (in this process for one process, under
     torchrun through scripts/bench/torch_engine_rank.py for several), seqft and adaptive-svd (the resolved
     defaults: fixed rank policy, ratio 0.5) in fp32 and bf16. Task 0 warms up; task 1 (after adaptive-svd's
     boundary SVD) is measured from the worker's `step` messages (tokens/s of each message's steps; the first
     message is dropped as warm-up). The task-boundary SVD seconds come from the `ranks` message; peak memory is
     torch.cuda.max_memory_allocated on a GPU and the process's peak RSS on CPU.
 (b) compares the logits of the same checkpoint on both engines: the worker's model (sculpt_torch.model, fp32)
     against the tfjs engine (`node dist/cli.js inspect --input/--out`, WebGPU on a GPU, wasm on CPU) on a few
     fixed prompts: max |a - b| / max |b| (the parity measure of test/helpers/webgpu.ts) and the norm-wise error.
 (c) puts the worker's fp32 tokens/s beside the tfjs WebGPU engine's for the GPT-2-small shape at the same
     batch and length (`node dist/bench.js gpu`, which measures exactly that shape at 8 x 512).

Prints Markdown tables, the elapsed time of every section, and with --json a last line of JSON.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON_DIR = os.path.join(REPO, "python")
RANK_SCRIPT = os.path.join(REPO, "scripts", "bench", "torch_engine_rank.py")
sys.path.insert(0, PYTHON_DIR)

PAD, BOS, EOS = 0, 1, 2
METHODS = ("seqft", "adaptive-svd")
PRECISIONS = ("fp32", "bf16")

# The method configs as the trainer process resolves them (every default filled in; python/tests use the same).
METHOD_CONFIGS: dict[str, dict[str, Any]] = {
    "seqft": {"method": "seqft"},
    "adaptive-svd": {
        "method": "adaptive-svd",
        "targets": ["attention", "mlp"],
        "nonTargets": "trainable",
        "rank": {"policy": "fixed", "ratio": 0.5},
        "projection": "two-sided",
        "parametrisation": "dense",
        "protectPretrained": False,
        "calibrationSamples": 128,
    },
}

# Parity criteria: both engines on the CPU agree to float32 rounding; on a GPU the criterion is scripts/gpu-check's
# (webgpu vs cpu, 1e-3): different kernels sum in different orders over d = 768 / 896.
PARITY_LIMIT_CPU = 1e-4
PARITY_LIMIT_GPU = 1e-3


@dataclass
class Shape:
    name: str
    family: str  # gpt2 | qwen2
    config: dict[str, Any]
    batch: int
    seq: int
    answer: int  # answer tokens per row (the loss is taken over these, as the worker always does)

    @property
    def vocab(self) -> int:
        return int(self.config["vocab_size"])


def gpt2(name: str, d: int, layers: int, heads: int, vocab: int, positions: int, batch: int, seq: int, answer: int):
    return Shape(name, "gpt2", dict(n_embd=d, n_layer=layers, n_head=heads, vocab_size=vocab, n_positions=positions,
                                     layer_norm_epsilon=1e-5, activation_function="gelu_new", bos_token_id=BOS,
                                     eos_token_id=EOS), batch, seq, answer)


def qwen2(name: str, d: int, layers: int, heads: int, kv: int, ff: int, vocab: int, batch: int, seq: int, answer: int):
    return Shape(name, "qwen2", dict(hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
                                      num_key_value_heads=kv, intermediate_size=ff, vocab_size=vocab,
                                      tie_word_embeddings=True, max_position_embeddings=32768, rope_theta=1_000_000.0,
                                      rms_norm_eps=1e-6, bos_token_id=BOS, eos_token_id=EOS), batch, seq, answer)


# GPT-2-small at 8 x 512: the batch and length `node dist/bench.js gpu` measures that shape at, so (c) compares like
# with like. Qwen2-0.5B (Qwen2.5-0.5B's shape) at the same batch and length.
FULL = [
    gpt2("gpt2-small-shape", 768, 12, 12, 50257, 1024, batch=8, seq=512, answer=8),
    qwen2("qwen2-0.5b-shape", 896, 24, 14, 2, 4864, 151936, batch=8, seq=512, answer=8),
]
QUICK = [
    gpt2("gpt2-tiny-shape", 64, 2, 4, 512, 64, batch=4, seq=32, answer=2),
    qwen2("qwen2-tiny-shape", 64, 2, 4, 2, 128, 512, batch=4, seq=32, answer=2),
]


# ---------------------------------------------------------------------------------------------------- output


class Out:
    """Each section's elapsed time, for the report, and progress lines on stderr as it happens: the Markdown is
    printed at the end, so a run cut short by the machine's time limit shows how far it got only there."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.sections: list[tuple[str, float]] = []

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def progress(self, text: str) -> None:
        print(f"[{self.now():7.1f} s] {text}", file=sys.stderr, flush=True)

    def section(self, name: str):
        out = self

        class _Timer:
            def __enter__(self):
                self.start = time.perf_counter()
                out.progress(f"{name} ...")
                return self

            def __exit__(self, *exc):
                took = time.perf_counter() - self.start
                out.sections.append((name, took))
                out.progress(f"{name}: {took:.1f} s")
                return False

        return _Timer()


def md_table(header: list[str], rows: list[list[str]]) -> str:
    # Cells can hold error text (a worker's message, a traceback line): one line each, no bare column bars.
    def cell(text: str) -> str:
        return " ".join(str(text).split()).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def fmt_bytes(n: int | None) -> str:
    if not n:
        return "n/a"
    if n >= 1 << 30:
        return f"{n / (1 << 30):.2f} GiB"
    return f"{n / (1 << 20):.0f} MiB"


def fmt_num(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


# ---------------------------------------------------------------------------------------------------- models


def build_model(shape: Shape, root: str, device: str) -> str:
    """A random-weight checkpoint of `shape` saved as a Hugging Face folder; its path."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, Qwen2Config
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    cls = GPT2Config if shape.family == "gpt2" else Qwen2Config
    config = cls(**shape.config)
    config.architectures = ["GPT2LMHeadModel" if shape.family == "gpt2" else "Qwen2ForCausalLM"]
    torch.manual_seed(0)
    # Initialised where it will run: a 0.5B model's random init is seconds on a GPU and a minute on the CPU.
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out = os.path.join(root, "models", shape.name)
    model.save_pretrained(out)
    del model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


# ---------------------------------------------------------------------------------------------------- prepared/


def write_jsonl(path: str, rows: list[dict]) -> None:
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")


def write_prepared(run_dir: str, shape: Shape, model_dir: str, method: str, precision: str, device: str, world: int,
                   warm_steps: int, steps: int, interval: int, lr: float, seed: int = 0) -> None:
    """`<run_dir>/prepared/` as the trainer process writes it (docs/torch-engine.md): two tasks of random token ids,
    every row exactly `seq` tokens (BOS + prompt, answer + EOS), so each step trains batch x seq tokens and tokens/s
    means the same on both engines. Task 0 (warm_steps) runs before adaptive-svd's first boundary; task 1 (steps)
    is the measured one. No evaluations and no checkpoints: only the training loop is timed."""
    prepared = os.path.join(run_dir, "prepared")
    os.makedirs(prepared, exist_ok=True)
    rng = random.Random(seed)
    tasks = []
    for t, n_steps in enumerate((warm_steps, steps)):
        rows = []
        for _ in range(n_steps * shape.batch):
            prompt = [BOS] + [rng.randrange(3, shape.vocab) for _ in range(shape.seq - shape.answer - 1)]
            answer = [rng.randrange(3, shape.vocab) for _ in range(shape.answer - 1)] + [EOS]
            rows.append({"prompt": prompt, "answer": answer})
        write_jsonl(os.path.join(prepared, f"train-{t}.jsonl"), rows)
        write_jsonl(os.path.join(prepared, f"calibration-{t}.jsonl"), rows[: shape.batch])
        tasks.append({
            "index": t,
            "name": f"synthetic{t}",
            "labels": ["a", "b"],
            "train": {"file": f"train-{t}.jsonl", "examples": len(rows)},
            "epochs": [[list(range(b * shape.batch, (b + 1) * shape.batch)) for b in range(n_steps)]],
            "lr": [lr] * n_steps,
            "steps": n_steps,
            "calibration": f"calibration-{t}.jsonl",
            "evaluations": [],
        })
    manifest = {
        "format": 1,
        "runDir": os.path.abspath(run_dir),
        "model": {"dir": model_dir, "arch": "gpt2" if shape.family == "gpt2" else "llama", "kind": "causal",
                  "vocabSize": shape.vocab},
        "tokens": {"pad": PAD, "bos": BOS, "eos": EOS},
        "seed": seed,
        "methodIndex": 0,
        "method": METHOD_CONFIGS[method],
        "training": {
            "epochs": 1, "batchSize": shape.batch, "lr": lr, "optimizer": "adamw", "weightDecay": 0.0,
            "schedule": "constant", "warmupSteps": 0, "maxSeqLen": shape.seq, "gradClip": 1.0,
            "evalBatchSize": shape.batch, "stepEventInterval": interval,
        },
        "checkpoint": {"every": "never", "keep": 1},
        # Several processes: FSDP2 asked for by name (auto picks DDP on CPU, and the CPU dry run is meant to take
        # the FSDP2 path the GPUs take).
        "torch": {"shard": "fsdp2" if world > 1 else "auto", "precision": precision, "device": device,
                  "nprocPerNode": world},
        "eval": {"zeroShot": False, "batchSize": shape.batch, "maxNewTokens": 1},
        "tasks": tasks,
    }
    with open(os.path.join(prepared, "manifest.json"), "w") as f:
        json.dump(manifest, f)


# ---------------------------------------------------------------------------------------------------- runs


def reset_peak(device: str) -> str:
    """Starts a fresh peak-memory count for an in-process run; what the peak will mean."""
    import torch

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return "cuda max allocated"
    try:
        # Linux: writing 5 resets this process's high-water resident set (VmHWM), so each run gets its own peak.
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "peak RSS"
    except OSError:
        return "peak RSS since the bench started"


def read_peak(device: str) -> int:
    import torch

    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run_in_process(run_dir: str, device: str) -> tuple[int, list[dict], int, str, int]:
    """run_worker (what `python -m sculpt_torch` runs) with its messages collected: (code, messages, peak, kind,
    the bytes already held before the run: on a GPU near 0, or an earlier run's tensors were not freed)."""
    import torch
    from sculpt_torch.protocol import Channel
    from sculpt_torch.train import run_worker

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    baseline = int(torch.cuda.memory_allocated()) if device == "cuda" else 0
    kind = reset_peak(device)
    messages: list[dict] = []
    code = run_worker(run_dir, None, Channel(sink=messages.append))
    peak = read_peak(device)
    # The worker's model, optimizer and method state are garbage now (they hold each other in cycles): free them
    # before the next run, so its peak is its own.
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return code, messages, peak, kind, baseline


def run_torchrun(run_dir: str, world: int, device: str, timeout: float) -> tuple[int, list[dict], int, str, str]:
    """The worker under torchrun, `world` processes: (code, messages, max peak over ranks, kind, log tail).

    A run still going at `timeout` gets SIGABRT first (the ranks run with faulthandler, so each prints its Python
    stack: where a collective waits), then SIGKILL for the whole process group; the stacks end up in the log."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"
    if device == "cpu":
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // world))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(world),
           RANK_SCRIPT, run_dir]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
                            start_new_session=True)
    hung = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        hung = True
        for sig, wait in ((signal.SIGABRT, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                pass
        stdout, stderr = proc.communicate()
    messages, peaks, kind = [], [], ""
    for line in stdout.splitlines():
        if line.startswith("@sculpt "):
            messages.append(json.loads(line[len("@sculpt "):]))
        elif line.startswith("@torch-engine-rank "):
            r = json.loads(line[len("@torch-engine-rank "):])
            peaks.append(int(r["peakBytes"]))
            kind = r["peakKind"] + " (largest rank)"
    log = stderr[-6000:]
    if hung:
        log = f"no end after {timeout:.0f} s: stopped (SIGABRT for the stacks, then SIGKILL)\n" + log
    return 124 if hung else proc.returncode, messages, max(peaks) if peaks else 0, kind, log


def summarise(messages: list[dict], tokens_per_step: int) -> dict[str, Any]:
    """tokens/s and step time of the measured task (1) from the step messages, the boundary SVD from `ranks`."""
    hello = next((m for m in messages if m["type"] == "hello"), {})
    error = next((m for m in messages if m["type"] == "error"), None)
    windows = [m for m in messages if m["type"] == "step" and m["task"] == 1]
    # The first message's steps pay for first-use allocations after the boundary (adaptive-svd's weight copies,
    # the allocator's new blocks): dropped, as the tfjs suite drops its warm-up steps.
    measured = windows[1:] if len(windows) > 1 else windows
    steps = sum(len(m["losses"]) for m in measured)
    seconds = sum(len(m["losses"]) * tokens_per_step / m["tokensPerSecond"] for m in measured if m["tokensPerSecond"])
    ranks = [m for m in messages if m["type"] == "ranks" and m.get("beforeTask") == 1]
    losses = [v for m in messages if m["type"] == "step" for v in m["losses"]]
    return {
        "deviceName": hello.get("deviceName"),
        "shard": hello.get("shard"),
        "parameters": hello.get("parameters"),
        "targets": hello.get("targets"),
        "error": error and f"{error.get('message')} (at {error.get('where')})",
        "steps": steps,
        "tokensPerSecond": steps * tokens_per_step / seconds if seconds > 0 else None,
        "stepMs": 1000 * seconds / steps if steps else None,
        "svdSeconds": ranks[-1]["seconds"] if ranks else None,
        "firstLoss": losses[0] if losses else None,
        "lastLoss": losses[-1] if losses else None,
    }


# ---------------------------------------------------------------------------------------------------- parity


def parity(shape: Shape, model_dir: str, device: str, backend: str, work: str, prompts: int, length: int,
           timeout: float) -> dict[str, Any]:
    """Logits of fixed prompts from the worker's model and from the tfjs engine (`sculpt inspect`)."""
    import torch
    from safetensors.torch import load_file, save_file
    from sculpt_torch.data import Example, make_batch
    from sculpt_torch.model import load_model, logits

    rng = random.Random(1234)
    ids = [[rng.randrange(3, shape.vocab) for _ in range(length)] for _ in range(prompts)]
    row: dict[str, Any] = {"model": shape.name, "backend": backend, "prompts": prompts, "tokens": length}
    model = load_model(model_dir, "causal", torch.device(device))
    with torch.no_grad():
        # The worker's forward (sculpt_torch.model.logits, attention mask and all); every row is full length.
        batch = make_batch([Example(tuple(r[:-1]), tuple(r[-1:])) for r in ids], PAD, torch.device(device))
        ours = logits(model, batch, "causal", PAD).float().cpu()
    del model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    inp, out = os.path.join(work, f"{shape.name}-in.safetensors"), os.path.join(work, f"{shape.name}-out.safetensors")
    save_file({"input.input_ids": torch.tensor(ids, dtype=torch.int64)}, inp)
    cmd = ["node", os.path.join(REPO, "dist", "cli.js"), "inspect", model_dir, "--input", inp, "--out", out,
           "--backend", backend]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except (subprocess.TimeoutExpired, OSError) as e:
        row["error"] = f"`{' '.join(cmd[:3])}` failed: {e}"
        return row
    row["tfjsSeconds"] = time.perf_counter() - t0
    if proc.returncode != 0 or not os.path.exists(out):
        row["error"] = f"sculpt inspect exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-600:]}"
        return row
    theirs = load_file(out)["logits"].float()
    if tuple(theirs.shape) != tuple(ours.shape):
        row["error"] = f"tfjs logits {list(theirs.shape)} vs torch {list(ours.shape)}"
        return row
    diff = (theirs - ours).abs()
    row["maxRelDiff"] = float(diff.max() / ours.abs().max().clamp_min(1e-6))
    row["normRelDiff"] = float((theirs - ours).double().norm() / ours.double().norm().clamp_min(1e-12))
    row["maxAbsLogit"] = float(ours.abs().max())
    return row


# ---------------------------------------------------------------------------------------------------- tfjs figures


TFJS_SHAPE = "gpt2-small-shape"
# (c) may start until this many seconds past the training deadline and must end by then: with the default deadline
# (400 s) the whole check ends by 480 s, inside a 10-minute machine call with room for an in-flight run.
TFJS_GRACE = 80.0


def tfjs_rows_from_output(text: str) -> list[dict] | None:
    """The rows of a `node dist/bench.js gpu --json` run (its last JSON line) for the GPT-2-small shape."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and '"suite"' in line:
            obj = json.loads(line)
            if obj.get("suite") != "gpu":
                continue
            return [r for r in obj.get("rows", []) if r.get("name", "").startswith(TFJS_SHAPE + "/webgpu/")]
    return None


# ---------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="scripts/gpu-check-torch", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                    help="where the worker trains (auto: cuda when torch sees a GPU)")
    ap.add_argument("--quick", action="store_true", help="tiny shapes and a handful of steps (the CPU dry run)")
    ap.add_argument("--json", action="store_true", help="a last line of JSON with every figure")
    ap.add_argument("--models", help="comma-separated shape names (default: every shape of the mode)")
    ap.add_argument("--precisions", default=",".join(PRECISIONS))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--steps", type=int, help="measured steps of task 1 (default 20; --quick 6)")
    ap.add_argument("--batch", type=int, help="rows per step, instead of the shape's (8; --quick 4)")
    ap.add_argument("--seq", type=int, help="tokens per row, instead of the shape's (512; --quick 32)")
    ap.add_argument("--warm-steps", type=int, help="steps of task 0, before the boundary (default 3; --quick 2)")
    ap.add_argument("--interval", type=int, help="steps per step message (default 4; --quick 2)")
    ap.add_argument("--world", type=int,
                    help="processes of the FSDP2 rows (default: the GPU count on cuda, none on cpu; 2 on cpu dry-runs "
                         "the torchrun + FSDP2 path over gloo)")
    ap.add_argument("--tfjs-backend", choices=("webgpu", "wasm", "cpu"),
                    help="the tfjs side of the logits parity (default: webgpu on cuda, wasm on cpu)")
    ap.add_argument("--no-parity", action="store_true")
    ap.add_argument("--tfjs-bench", default=None,
                    help="(c): 'run' runs `node dist/bench.js gpu --json --fused-only --models gpt2-small-shape` "
                         "(default on cuda without --quick), 'skip', or the saved output of `scripts/gpu-check --json`")
    ap.add_argument("--deadline", type=float,
                    help="seconds after which the remaining runs are skipped (default 400; --quick none), so the "
                         "tables print inside a 10-minute machine call")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default torch's; --quick on cpu: 1)")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (models, run folders)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    out = Out()
    with out.section("setup (imports, device)"):
        try:
            import torch
            import transformers
        except ImportError as e:
            print(f"gpu-check-torch: {sys.executable} cannot import torch and transformers ({e}): set SCULPT_PYTHON "
                  "(on CPU, `npm run provision` makes .venv)", file=sys.stderr)
            return 2

        if a.device == "cuda" and not torch.cuda.is_available():
            print(f"gpu-check-torch: --device cuda, but this torch ({torch.__version__}) sees no CUDA device",
                  file=sys.stderr)
            return 2
        device = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        gpus = torch.cuda.device_count() if device == "cuda" else 0
        device_name = (torch.cuda.get_device_name(0) if device == "cuda"
                       else (platform.processor() or platform.machine()))
        if device == "cuda":
            torch.cuda.init()
        if a.threads or (a.quick and device == "cpu"):
            # Tiny shapes gain nothing from threads, and on a small shared machine OpenMP's spinning threads make
            # every step wait for a descheduled one (a 768 x 3072 SVD: 0.7 s on one thread, 14 s on two busy
            # cores): one thread keeps the dry run quick and its figures steady.
            torch.set_num_threads(a.threads or 1)
    shapes = QUICK if a.quick else FULL
    if a.models:
        wanted = a.models.split(",")
        unknown = [w for w in wanted if w not in {s.name for s in shapes}]
        if unknown:
            print(f"gpu-check-torch: unknown model {', '.join(unknown)}; this mode has "
                  f"{', '.join(s.name for s in shapes)}", file=sys.stderr)
            return 2
        shapes = [s for s in shapes if s.name in wanted]
    for s in shapes:
        s.batch = a.batch or s.batch
        s.seq = a.seq or s.seq
        if s.seq <= s.answer + 1:
            print(f"gpu-check-torch: --seq must exceed {s.answer + 1} (BOS, a prompt token, the answer)",
                  file=sys.stderr)
            return 2
    methods = [m for m in a.methods.split(",") if m]
    precisions = [p for p in a.precisions.split(",") if p]
    for m in methods:
        if m not in METHODS:
            print(f"gpu-check-torch: unknown method {m} (expected {', '.join(METHODS)})", file=sys.stderr)
            return 2
    for p in precisions:
        if p not in PRECISIONS:
            print(f"gpu-check-torch: unknown precision {p} (expected {', '.join(PRECISIONS)})", file=sys.stderr)
            return 2
    steps = a.steps or (6 if a.quick else 20)
    warm = a.warm_steps or (2 if a.quick else 3)
    interval = a.interval or (2 if a.quick else 4)
    if steps % interval or steps // interval < 2:
        print("gpu-check-torch: --steps must be a multiple of --interval, at least two messages' worth "
              "(the first is dropped as warm-up)", file=sys.stderr)
        return 2
    world = a.world if a.world is not None else (gpus if device == "cuda" else 1)
    if device == "cuda" and world > gpus:
        print(f"gpu-check-torch: --world {world} but this machine has {gpus} GPU(s)", file=sys.stderr)
        return 2
    worlds = [1] + ([world] if world > 1 else [])
    backend = a.tfjs_backend or ("webgpu" if device == "cuda" else "wasm")
    limit = PARITY_LIMIT_GPU if device == "cuda" or backend == "webgpu" else PARITY_LIMIT_CPU
    deadline = a.deadline if a.deadline is not None else (None if a.quick else 400.0)
    tfjs_bench = a.tfjs_bench or ("run" if device == "cuda" and not a.quick else "skip")
    dev_label = f"{device}: {device_name}" if device == "cuda" else "cpu"

    def time_left() -> float:
        return math.inf if deadline is None else deadline - out.now()

    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    parity_rows: list[dict[str, Any]] = []
    tfjs_rows: list[dict[str, Any]] = []
    work = tempfile.mkdtemp(prefix="sculpt-gpu-check-torch-")
    failed = False
    try:
        models: dict[str, str] = {}
        for shape in shapes:
            with out.section(f"build {shape.name} (random weights, saved as an HF folder)"):
                models[shape.name] = build_model(shape, work, device)

        for shape in shapes:
            tokens_per_step = shape.batch * shape.seq
            # Parity first for each model: it takes seconds, and the deadline should cut training rows, not it.
            if not a.no_parity:
                with out.section(f"{shape.name} logits parity (torch {device} vs tfjs {backend})"):
                    if time_left() <= 0:
                        parity_rows.append({"model": shape.name, "backend": backend, "skipped": True,
                                            "error": f"skipped: past the {deadline:.0f} s deadline"})
                    else:
                        try:
                            pr = parity(shape, models[shape.name], device, backend, work, 3, 8 if a.quick else 16,
                                        max(30.0, min(300.0, time_left() + 60)))
                        except Exception as e:  # the torch side failed: a row that says so, and the runs go on
                            pr = {"model": shape.name, "backend": backend, "error": f"{type(e).__name__}: {e}"}
                        pr["device"] = dev_label
                        pr["limit"] = limit
                        pr["ok"] = "maxRelDiff" in pr and pr["maxRelDiff"] <= limit
                        parity_rows.append(pr)
                        failed = failed or not pr["ok"]
                        out.progress(f"  max rel diff {pr.get('maxRelDiff', pr.get('error'))}")

            for w in worlds:
                label = f"{shape.name} training, world {w}" + (" (torchrun, FSDP2)" if w > 1 else "")
                with out.section(label):
                    for precision in precisions:
                        for method in methods:
                            row: dict[str, Any] = {
                                "device": dev_label, "precision": precision, "world": w, "model": shape.name,
                                "method": method, "batch": shape.batch, "seq": shape.seq,
                            }
                            rows.append(row)
                            if time_left() <= 0:
                                row["status"] = f"skipped: past the {deadline:.0f} s deadline"
                                continue
                            run_dir = os.path.join(work, "runs", f"{shape.name}-{precision}-{method}-w{w}")
                            write_prepared(run_dir, shape, models[shape.name], method, precision, device, w, warm,
                                           steps, interval, a.lr)
                            t0 = time.perf_counter()
                            log = ""
                            if w == 1:
                                code, messages, peak, kind, row["baselineBytes"] = run_in_process(run_dir, device)
                            else:
                                # Quick: a tiny run takes seconds, and a hang should cost two minutes, not ten.
                                cap = 120.0 if a.quick else 600.0
                                code, messages, peak, kind, log = run_torchrun(
                                    run_dir, w, device, max(30.0, min(cap, time_left() + 60)))
                            row["wallSeconds"] = time.perf_counter() - t0
                            s = summarise(messages, tokens_per_step)
                            row.update({k: s[k] for k in ("tokensPerSecond", "stepMs", "svdSeconds", "steps",
                                                          "shard", "parameters", "targets", "firstLoss", "lastLoss")})
                            row["peakBytes"], row["peakKind"] = peak or None, kind
                            if code != 0 or s["error"] or not s["tokensPerSecond"]:
                                row["status"] = "error: " + (s["error"] or f"exit {code}, no step messages")
                                if log:
                                    row["log"] = log[-4000:]
                                    print(log, file=sys.stderr)
                                failed = True
                            else:
                                row["status"] = "ok"
                            out.progress(
                                f"  {precision} {method} world {w}: {fmt_num(row.get('tokensPerSecond'))} tok/s, "
                                f"{fmt_num(row.get('stepMs'), 1)} ms/step, svd "
                                f"{fmt_num(row.get('svdSeconds'), 2)} s, peak {fmt_bytes(row.get('peakBytes'))} "
                                f"[{row['status'][:120]}]")
        # adaptive-svd's step against seqft's, same model, precision and world.
        for r in rows:
            if r["method"] == "adaptive-svd" and r.get("stepMs"):
                base = next((b for b in rows if b["method"] == "seqft" and b.get("stepMs") and all(
                    b[k] == r[k] for k in ("model", "precision", "world"))), None)
                r["vsSeqft"] = r["stepMs"] / base["stepMs"] if base else None

        with out.section("tfjs WebGPU figures (c)"):
            tfjs_text = None
            if tfjs_bench == "skip":
                pass
            elif tfjs_bench == "run":
                if a.quick:
                    notes.append("(c) not run in --quick: the tiny shapes differ from the tfjs suite's")
                elif time_left() + TFJS_GRACE < 120:
                    notes.append(f"(c) skipped: too little time left (deadline {deadline:.0f} s + {TFJS_GRACE:.0f} s); "
                                 "see below for reading the figures from scripts/gpu-check")
                else:
                    cmd = ["node", os.path.join(REPO, "dist", "bench.js"), "gpu", "--json", "--fused-only", "--models",
                           TFJS_SHAPE, "--reps", "3"]
                    try:
                        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                                              timeout=time_left() + TFJS_GRACE)
                        tfjs_text = proc.stdout
                        if proc.returncode != 0:
                            notes.append(f"(c) `node dist/bench.js gpu` exited {proc.returncode}: "
                                         f"{proc.stderr.strip()[-400:]}")
                    except (subprocess.TimeoutExpired, OSError) as e:
                        notes.append(f"(c) `node dist/bench.js gpu` did not finish: {e}")
            else:
                try:
                    with open(tfjs_bench) as f:
                        tfjs_text = f.read()
                except OSError as e:
                    notes.append(f"(c) cannot read {tfjs_bench}: {e}")
            if tfjs_text is not None:
                found = tfjs_rows_from_output(tfjs_text)
                if not found:
                    notes.append("(c) the tfjs output holds no gpt2-small-shape/webgpu rows (a --json line of "
                                 "`node dist/bench.js gpu`)")
                # Only the fused-kernel rows (`<model>/webgpu/<method>`); a saved full run also has `/tfjs-ops` ones.
                for r in (x for x in found or [] if len(x["name"].split("/")) == 3):
                    method = r["name"].split("/")[2]
                    mine = next((x for x in rows if x["model"] == TFJS_SHAPE and x["method"] == method
                                 and x["precision"] == "fp32" and x["world"] == 1), None)
                    tfjs_rows.append({"model": TFJS_SHAPE, "method": method, "tfjsWebgpu": r.get("ours"),
                                      "pytorchTwin": r.get("peer"),
                                      "torchWorker": mine.get("tokensPerSecond") if mine else None})
    finally:
        if a.keep:
            print(f"gpu-check-torch: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    # ------------------------------------------------------------------------------------------------ report
    say: list[str] = []
    # "highest" (torch's default, which the worker keeps) is true fp32 products, no TF32: as the tfjs engine and the
    # twin in scripts/gpu-check compute.
    matmul = torch.get_float32_matmul_precision()
    say.append("## gpu-check-torch: the PyTorch engine\n")
    say.append(f"device: {dev_label}" + (f", {gpus} GPU(s)" if device == "cuda" else f", {os.cpu_count()} cores, "
               f"{torch.get_num_threads()} torch thread(s)") + f"; torch {torch.__version__}, transformers "
               f"{transformers.__version__}; {'quick (tiny shapes)' if a.quick else 'full'}"
               + (f"; fp32 matmul precision: {matmul} ({'no TF32' if matmul == 'highest' else 'TF32 allowed'})"
                  if device == "cuda" else ""))
    say.append("\n### (a) training through the worker's loop (sculpt_torch.train.run_worker on a prepared/ folder)\n")
    say.append(f"Task 0: {warm} steps (warm-up); task 1: {steps} steps, a step message every {interval}; the figures "
               f"are task 1's messages after the first. adaptive-svd: fixed rank policy, ratio 0.5 (the default); "
               f"svd s = the task-boundary SVD of every target (`ranks` message). Peak memory: "
               + ("torch.cuda.max_memory_allocated" if device == "cuda" else "the process's peak RSS (VmHWM, reset "
                  "before each run; includes Python, torch and transformers)") + ".\n")
    table = []
    for r in rows:
        ok = r.get("status") == "ok"
        table.append([
            r["device"], r["precision"], str(r["world"]) + (f" ({r.get('shard')})" if r.get("shard") else ""),
            r["model"], r["method"], f"{r['batch']}x{r['seq']}",
            fmt_num(r.get("tokensPerSecond"), 0 if (r.get("tokensPerSecond") or 0) >= 100 else 1) if ok
            else r.get("status", "?"),
            fmt_num(r.get("stepMs"), 1) if ok else "",
            f"{r['vsSeqft']:.2f}x" if r.get("vsSeqft") else "",
            fmt_num(r.get("svdSeconds"), 2) if r.get("svdSeconds") is not None else "",
            fmt_bytes(r.get("peakBytes")) if ok else "",
        ])
    say.append(md_table(["device", "precision", "world", "model", "method", "batch x seq", "tokens/s", "step ms",
                         "vs seqft", "svd s", "peak memory"], table))
    if world <= 1:
        what = f"{gpus} GPU" if device == "cuda" else "cpu"
        say.append(f"\n- {what}: FSDP2 over 1 process: not exercised. The worker turns torch.shard 'fsdp2' with one "
                   "process into 'none' (python/sculpt_torch/distributed.py resolve_shard), so fully_shard runs only "
                   "with two or more processes (on CPU: `--device cpu --world 2`, gloo).")
    for n in notes:
        say.append(f"- {n}")

    if not a.no_parity:
        say.append(f"\n### (b) logits: the worker's model (torch {device}, fp32) vs the tfjs engine "
                   f"(`node dist/cli.js inspect --backend {backend}`), same checkpoint\n")
        prow = []
        for p in parity_rows:
            if "error" in p:
                prow.append([dev_label, p["model"], p["backend"], "", p["error"][:300], "", "",
                             "skipped" if p.get("skipped") else "FAIL"])
            else:
                prow.append([p["device"], p["model"], p["backend"], f"{p['prompts']}x{p['tokens']}",
                             f"{p['maxRelDiff']:.1e}", f"{p['normRelDiff']:.1e}", f"<= {p['limit']:.0e}",
                             "pass" if p["ok"] else "FAIL"])
        say.append(md_table(["device", "model", "tfjs backend", "prompts x tokens",
                             "max rel diff (max abs diff / max abs logit)", "norm rel diff", "criterion", ""], prow))

    say.append("\n### (c) beside the tfjs WebGPU engine (GPT-2-small shape, 8x512, fp32, one process)\n")
    gpt2_small = next((x for x in shapes if x.name == TFJS_SHAPE), None)
    if gpt2_small and (gpt2_small.batch, gpt2_small.seq) != (8, 512):
        say.append(f"This run trained {TFJS_SHAPE} at {gpt2_small.batch}x{gpt2_small.seq} (--batch/--seq), not the "
                   "suite's 8x512: the figures below do not compare like with like.\n")
    if tfjs_rows:
        say.append(md_table(
            ["model", "method", "torch worker tok/s", "tfjs webgpu tok/s", "PyTorch twin tok/s (torch_twin.py)",
             "worker / webgpu"],
            [[r["model"], r["method"], fmt_num(r["torchWorker"]), fmt_num(r["tfjsWebgpu"]), fmt_num(r["pytorchTwin"]),
              f"{r['torchWorker'] / r['tfjsWebgpu']:.2f}x" if r["torchWorker"] and r["tfjsWebgpu"] else "n/a"]
             for r in tfjs_rows]))
    else:
        say.append("Not measured in this run. `scripts/gpu-check` reports the same shape at the same batch and length: "
                   "its table (b), rows `gpt2-small-shape/webgpu/seqft` and `gpt2-small-shape/webgpu/adaptive-svd`, "
                   "column `ours tok/s` (fp32, TF32 off); compare with the fp32, world-1 rows of "
                   "`gpt2-small-shape` above. Or save `scripts/gpu-check --json --models gpt2-small-shape` to a file "
                   "and pass it here as `--tfjs-bench <file>`.")

    total = out.now()
    say.append("\n### elapsed\n")
    for name, took in out.sections:
        say.append(f"- {name}: {took:.1f} s")
    say.append(f"- total: {total:.1f} s")
    print("\n".join(say))
    if a.json:
        print(json.dumps({
            "suite": "gpu-torch", "device": device, "deviceName": device_name, "gpus": gpus,
            "torch": torch.__version__, "transformers": transformers.__version__, "quick": a.quick,
            "models": [s.name for s in shapes], "methods": methods, "precisions": precisions, "worlds": worlds,
            "steps": steps, "warmSteps": warm, "interval": interval,
            "rows": rows, "parity": parity_rows, "tfjs": tfjs_rows, "notes": notes,
            "elapsed": {name: round(took, 2) for name, took in out.sections}, "total": round(total, 2),
            "ok": not failed,
        }))
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
