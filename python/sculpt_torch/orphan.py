"""Leave when the trainer that launched this worker is gone.

The trainer gives the worker a stdin pipe it never writes to. When the trainer exits, however it went (kill -9
included), the pipe's last writer is gone and a read returns end-of-file; the worker then has nobody to report
to, and keeping a model loaded or a step running would only hold the GPU and the run folder. Under torchrun every
rank inherits the same pipe, so each rank sees the end-of-file and leaves.

Only when the trainer asks for it (SCULPT_PARENT_STDIN=1): run by hand, stdin may be a terminal or /dev/null.
"""
from __future__ import annotations

import os
import sys
import threading
from typing import BinaryIO, Callable

ENV = "SCULPT_PARENT_STDIN"
#: The exit status when the trainer is found gone; nothing reads it but a shell that ran the worker by hand.
EXIT_ORPHANED = 3


def _leave() -> None:
    sys.stderr.write("sculpt_torch: the trainer is gone (stdin closed); leaving\n")
    sys.stderr.flush()
    os._exit(EXIT_ORPHANED)


def watch_parent(stream: BinaryIO, on_gone: Callable[[], None] = _leave) -> threading.Thread:
    """Read `stream` on a daemon thread until end-of-file, then call `on_gone` (which, by default, exits)."""

    def run() -> None:
        try:
            while stream.read(4096):
                pass  # nothing is meant to arrive; whatever does is dropped
        except (OSError, ValueError):
            pass  # a closed or broken pipe says the same as end-of-file
        on_gone()

    thread = threading.Thread(target=run, name="sculpt-parent-watch", daemon=True)
    thread.start()
    return thread


def watch_parent_if_asked(environ: dict[str, str] = os.environ) -> threading.Thread | None:
    if environ.get(ENV) != "1":
        return None
    return watch_parent(sys.stdin.buffer)
