"""Worker -> trainer messages: one `@sculpt {json}` line on stdout per message, from rank 0 only.

The TypeScript declaration is src/protocol/torch-worker.ts; the message types and fields are those of the table in
docs/torch-engine.md. JSON has no NaN or infinity: a non-finite number is sent as null (a score that never wins, a loss
that ends the run as diverged), so that every line parses.
"""
from __future__ import annotations

import json
import math
import sys
from typing import Any, Callable, TextIO

PREFIX = "@sculpt "

# The message types, in the order a run sends them (docs/torch-engine.md, "The order of a run").
TYPES = (
    "hello",
    "task-started",
    "ranks",
    "step",
    "scores",
    "checkpoint",
    "warning",
    "stopped",
    "done",
    "error",
)

def finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None (see the module docstring); containers are copied."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def encode(kind: str, fields: dict[str, Any]) -> str:
    if kind not in TYPES:
        raise ValueError(f"protocol: unknown message type '{kind}' (expected one of {', '.join(TYPES)})")
    if "type" in fields:
        raise ValueError("protocol: 'type' is set by the message kind, not a field")
    body = {"type": kind, **fields}
    return PREFIX + json.dumps(finite(body), allow_nan=False, separators=(",", ":"))


class Channel:
    """Sends messages. Only rank 0 writes; other ranks' sends are dropped so callers need not check the rank.

    `sink` replaces stdout (tests collect the decoded messages in-process)."""

    def __init__(self, rank: int = 0, stream: TextIO | None = None, sink: Callable[[dict], None] | None = None):
        self.rank = rank
        self.stream = stream
        self.sink = sink

    def send(self, kind: str, **fields: Any) -> None:
        if self.rank != 0:
            return
        line = encode(kind, fields)
        if self.sink is not None:
            self.sink(json.loads(line[len(PREFIX):]))
            return
        out = self.stream or sys.stdout
        # One write per line, flushed at once: the trainer process reads the pipe line by line, and log output
        # from libraries may interleave between lines but never inside one.
        out.write(line + "\n")
        out.flush()


def parse_line(line: str) -> dict | None:
    """The message of a stdout line, or None for log output (what the trainer process does, for tests)."""
    if not line.startswith(PREFIX):
        return None
    return json.loads(line[len(PREFIX):])
