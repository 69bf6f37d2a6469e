"""A small prepared/ folder written by hand, as the trainer process would write it, over the tiny models' token
ids; and ways to run the worker on it (in this process, as a subprocess, under torchrun) and read its messages.

The synthetic tasks are learnable: each task maps prompts that contain a task-specific cue token to one of two
label tokens, so a few steps move the scores.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON_DIR = os.path.join(REPO, "python")
TINY_LLAMA = os.path.join(REPO, "assets", "models", "tiny-llama")
TINY_T5 = os.path.join(REPO, "assets", "models", "tiny-t5")
HF_REFERENCE = os.path.join(REPO, "test", "fixtures", "hf-reference")

PAD, BOS, EOS = 0, 1, 2
CLOSE = 9
VOCAB = 68  # tiny-llama and tiny-t5 share a 68-word tokenizer


@dataclass
class Prepared:
    run_dir: str
    manifest: dict
    #: expected[task][split]: the expected label index of each evaluation example.
    expected: dict = field(default_factory=dict)

    def write(self) -> None:
        with open(os.path.join(self.run_dir, "prepared", "manifest.json"), "w") as f:
            json.dump(self.manifest, f, indent=1)


def _jsonl(path: str, rows: list[dict]) -> None:
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def make_prepared(
    root: str,
    *,
    tasks: int = 2,
    train: int = 12,
    batch_size: int = 4,
    epochs: int = 2,
    lr: float = 0.01,
    schedule: str = "constant",
    method: dict | None = None,
    kind: str = "causal",
    optimizer: str = "adamw",
    weight_decay: float = 0.0,
    grad_clip: float = 1.0,
    step_event_interval: int = 2,
    checkpoint_every: str | int = "task",
    keep: int = 2,
    zero_shot: bool = True,
    eval_examples: int = 6,
    eval_batch_size: int = 4,
    modes: tuple[str, ...] = ("next", "cont"),
    torch_settings: dict | None = None,
    seed: int = 0,
) -> Prepared:
    """Writes `<root>/run/prepared/` and returns its description."""
    run_dir = os.path.join(root, "run")
    prepared = os.path.join(run_dir, "prepared")
    os.makedirs(prepared, exist_ok=True)
    rng = random.Random(seed)
    words = list(range(10, VOCAB))
    task_entries = []
    expected: dict = {}
    for t in range(tasks):
        cue = 4 + t  # ids 4.. are ordinary words of the tiny vocabulary
        labels = [words[2 * t], words[2 * t + 1]]

        def example(label: int) -> list[int]:
            # Random words around the task's cue; label 1 repeats the cue at the end, then a fixed closing token
            # (the template's "Answer:"): learnable by a tiny model in a few steps.
            body = [rng.choice(words[10:]) for _ in range(3 + rng.randrange(5))]
            body.insert(rng.randrange(len(body) + 1), cue)
            return body + [cue] * label + [CLOSE]

        rows = []
        for i in range(train):
            label = i % 2
            prompt = example(label)
            answer = [labels[label], EOS]
            if kind == "causal":
                rows.append({"prompt": [BOS] + prompt, "answer": answer})
            else:
                rows.append({"input": prompt + [EOS], "target": answer})
        _jsonl(os.path.join(prepared, f"train-{t}.jsonl"), rows)
        _jsonl(os.path.join(prepared, f"calibration-{t}.jsonl"), list(reversed(rows)))
        plan_rng = random.Random(seed * 1000 + t)
        plan = []
        for _ in range(epochs):
            order = list(range(train))
            plan_rng.shuffle(order)
            plan.append([order[i : i + batch_size] for i in range(0, train, batch_size)])
        steps = sum(len(e) for e in plan)
        if schedule == "constant":
            lrs = [lr] * steps
        else:
            lrs = [lr * (1 - s / max(1, steps)) for s in range(steps)]
        evaluations = []
        expected[t] = {}
        for split, n in (("test", eval_examples), ("validation", max(2, eval_examples // 2))):
            prompts, exp = [], []
            for i in range(n):
                label = (i + t) % 2
                prompt = example(label)
                prompts.append({"prompt": [BOS] + prompt if kind == "causal" else prompt + [EOS]})
                exp.append(label)
            file = f"eval-{t}-{split}.jsonl"
            _jsonl(os.path.join(prepared, file), prompts)
            expected[t][split] = exp
            for mode in modes:
                if mode == "next":
                    evaluations.append(
                        {"split": split, "file": file, "examples": n, "mode": "next", "candidates": labels}
                    )
                elif mode == "cont":
                    evaluations.append(
                        {"split": split, "file": file, "examples": n, "mode": "cont",
                         "continuations": [[x, EOS] for x in labels]}
                    )
                else:
                    evaluations.append(
                        {"split": split, "file": file, "examples": n, "mode": "generate", "maxNewTokens": 3}
                    )
        task_entries.append(
            {
                "index": t,
                "name": f"task{t}",
                "labels": [f"label{x}" for x in labels],
                "train": {"file": f"train-{t}.jsonl", "examples": train},
                "epochs": plan,
                "lr": lrs,
                "steps": steps,
                "calibration": f"calibration-{t}.jsonl",
                "evaluations": evaluations,
            }
        )
    model_dir = TINY_LLAMA if kind == "causal" else TINY_T5
    manifest = {
        "format": 1,
        "runDir": run_dir,
        "model": {"dir": model_dir, "arch": "llama" if kind == "causal" else "t5", "kind": kind, "vocabSize": VOCAB},
        "tokens": {"pad": PAD, "bos": BOS if kind == "causal" else None, "eos": EOS},
        "seed": seed,
        "methodIndex": 0,
        "method": method or {"method": "seqft"},
        "training": {
            "epochs": epochs,
            "batchSize": batch_size,
            "lr": lr,
            "optimizer": optimizer,
            "weightDecay": weight_decay,
            "schedule": schedule,
            "warmupSteps": 0,
            "maxSeqLen": 32,
            "gradClip": grad_clip,
            "evalBatchSize": eval_batch_size,
            "stepEventInterval": step_event_interval,
        },
        "checkpoint": {"every": checkpoint_every, "keep": keep},
        "torch": {"shard": "auto", "precision": "fp32", "device": "cpu", "nprocPerNode": 1, **(torch_settings or {})},
        "eval": {"zeroShot": zero_shot, "batchSize": eval_batch_size, "maxNewTokens": 3},
        "tasks": task_entries,
    }
    p = Prepared(run_dir, manifest, expected)
    p.write()
    return p


def one_thread() -> None:
    """In-process runs use one BLAS thread, as the subprocesses do (OMP_NUM_THREADS=1), so that their numbers are
    comparable bit for bit whatever another test module set at import."""
    import torch

    torch.set_num_threads(1)


def run_inprocess(run_dir: str, resume: str | None = None) -> tuple[int, list[dict]]:
    from sculpt_torch.protocol import Channel
    from sculpt_torch.train import run_worker

    one_thread()
    messages: list[dict] = []
    rc = run_worker(run_dir, resume, Channel(sink=messages.append))
    return rc, messages


def worker_env(**extra: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def parse_messages(stdout: str) -> list[dict]:
    from sculpt_torch.protocol import parse_line

    return [m for m in (parse_line(line) for line in stdout.splitlines()) if m is not None]


def run_subprocess(run_dir: str, *args: str, nproc: int = 1, timeout: float = 120, **env: str):
    """Runs `python -m sculpt_torch` (under torch.distributed.run when nproc > 1); (returncode, messages, proc)."""
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
               "-m", "sculpt_torch", run_dir, *args]
    else:
        cmd = [sys.executable, "-m", "sculpt_torch", run_dir, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=worker_env(**env), cwd=REPO)
    return proc.returncode, parse_messages(proc.stdout), proc


def of_type(messages: list[dict], kind: str) -> list[dict]:
    return [m for m in messages if m["type"] == kind]


def accuracy(scores: list[list[float]], expected: list[int]) -> float:
    """Percent of examples whose best-scoring label is the expected one (as the trainer process counts)."""
    hits = sum(1 for row, e in zip(scores, expected) if row.index(max(row)) == e)
    return 100.0 * hits / len(expected)
