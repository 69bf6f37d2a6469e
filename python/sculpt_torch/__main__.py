"""`python -m sculpt_torch <runDir> [--resume <checkpointDir>]`, directly or under torchrun (docs/torch-engine.md).

Exit status: 0 when the run finished or stopped on request, 1 after an `error` message, 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sculpt_torch", description="Sculpt's PyTorch worker")
    parser.add_argument("run_dir", help="the run folder; its prepared/ holds the manifest and data")
    parser.add_argument("--resume", metavar="CHECKPOINT", help="a checkpoint folder (absolute, or relative to the run folder)")
    args = parser.parse_args(argv)
    from .orphan import watch_parent_if_asked

    watch_parent_if_asked()
    from .train import run_worker

    return run_worker(args.run_dir, args.resume)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is written and the process group is gone; skipping the interpreter's teardown avoids C++ static
    # destructors of torch.distributed running after it (seen to abort a gloo rank now and then at exit).
    os._exit(code)
