#!/usr/bin/env python3
"""One process of the PyTorch worker under torchrun, for scripts/bench/torch_engine_gpu.py's multi-process rows.

  python -m torch.distributed.run --standalone --nproc-per-node N scripts/bench/torch_engine_rank.py <runDir>

Runs exactly what `python -m sculpt_torch <runDir>` runs (sculpt_torch.train.run_worker), then prints, on every
rank, one line `@torch-engine-rank {"rank", "world", "peakBytes", "peakKind", "code"}`: the worker reports only
the memory in use at each step message, and the bench wants each process's peak (the largest over the ranks is
the per-GPU figure).
"""
from __future__ import annotations

import json
import os
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "python"))

PREFIX = "@torch-engine-rank "


def peak_bytes(device_type: str) -> tuple[int, str]:
    import torch

    if device_type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated()), "cuda max allocated"
    # A fresh process: its high-water resident set is this run's peak.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, "peak RSS"
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "peak RSS"


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: torch_engine_rank.py <runDir>", file=sys.stderr)
        return 2
    run_dir = sys.argv[1]
    with open(os.path.join(run_dir, "prepared", "manifest.json")) as f:
        device_setting = json.load(f).get("torch", {}).get("device", "auto")
    from sculpt_torch.train import run_worker

    code = run_worker(run_dir)
    import torch

    kind = "cuda" if device_setting == "cuda" or (device_setting == "auto" and torch.cuda.is_available()) else "cpu"
    peak, what = peak_bytes(kind)
    line = {"rank": int(os.environ.get("RANK", "0") or 0), "world": int(os.environ.get("WORLD_SIZE", "1") or 1),
            "peakBytes": peak, "peakKind": what, "code": code}
    sys.stdout.write(PREFIX + json.dumps(line) + "\n")
    return code


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # As sculpt_torch/__main__.py: skip the interpreter's teardown, where torch.distributed's static destructors
    # have been seen to abort a gloo rank after a clean run.
    os._exit(rc)
