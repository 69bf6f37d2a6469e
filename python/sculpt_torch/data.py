"""Prepared examples and the batches built from them, as src/engine/data/batches.ts (makeBatch) and
src/engine/data/seq2seq.ts (makeSeq2SeqBatch) build them.

A causal batch is prompt then answer, right-padded with the pad id to the longest row; labels are the answer
tokens at their positions and -100 elsewhere; the mask is 1 on tokens. A seq2seq batch keeps the prompt (encoder
input) and the answer (decoder target) apart: inputs [B, T] right-padded, labels [B, L] with -100 after each answer.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import torch

from .methods.base import Batch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Example:
    """One training example: `prompt` (causal: with BOS, truncated; seq2seq: the encoder input) and `answer`."""

    prompt: tuple[int, ...]
    answer: tuple[int, ...]


class DataError(ValueError):
    pass


def _ids(path: str, line: int, obj: dict, key: str, vocab: int | None, allow_empty: bool = False) -> tuple[int, ...]:
    value = obj.get(key)
    if not isinstance(value, list) or (not value and not allow_empty):
        raise DataError(f"{path}:{line}: '{key}' must be a non-empty array of token ids, found {json.dumps(value)[:60]}")
    for x in value:
        if isinstance(x, bool) or not isinstance(x, int) or x < 0 or (vocab is not None and x >= vocab):
            bound = f" in [0, {vocab})" if vocab is not None else ""
            raise DataError(f"{path}:{line}: '{key}' holds {json.dumps(x)}, expected token ids{bound}")
    return tuple(value)


def _lines(path: str):
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: missing (the manifest names it)") from None
    with f:
        for n, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not valid JSON ({e})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{n}: expected a JSON object per line")
            yield n, obj


def read_examples(path: str, kind: str, vocab: int | None = None, expected: int | None = None) -> list[Example]:
    """Training or calibration examples: causal `{prompt, answer}`, seq2seq `{input, target}`."""
    src, tgt = ("prompt", "answer") if kind == "causal" else ("input", "target")
    out = [Example(_ids(path, n, obj, src, vocab), _ids(path, n, obj, tgt, vocab)) for n, obj in _lines(path)]
    if expected is not None and len(out) != expected:
        raise DataError(f"{path}: {len(out)} examples, but the manifest says {expected}")
    return out


def read_prompts(path: str, kind: str, vocab: int | None = None) -> list[tuple[int, ...]]:
    """Evaluation prompts: `{prompt}` per line (a seq2seq file may call it `input`)."""
    out = []
    for n, obj in _lines(path):
        key = "prompt" if "prompt" in obj or kind == "causal" else "input"
        out.append(_ids(path, n, obj, key, vocab))
    return out


def make_batch(items: Sequence[Example], pad: int, device: torch.device | str = "cpu") -> Batch:
    if not items:
        raise ValueError("make_batch: no examples")
    B = len(items)
    T = max(len(e.prompt) + len(e.answer) for e in items)
    input_ids = torch.full((B, T), pad, dtype=torch.int64)
    labels = torch.full((B, T), IGNORE_INDEX, dtype=torch.int64)
    mask = torch.zeros((B, T), dtype=torch.int64)
    labelled = tokens = 0
    for b, e in enumerate(items):
        p, a = len(e.prompt), len(e.answer)
        input_ids[b, : p + a] = torch.tensor(e.prompt + e.answer, dtype=torch.int64)
        mask[b, : p + a] = 1
        labels[b, p : p + a] = torch.tensor(e.answer, dtype=torch.int64)
        labelled += a
        tokens += p + a
    return Batch(input_ids.to(device), labels.to(device), mask.to(device), labelled, tokens)


def make_seq2seq_batch(items: Sequence[Example], pad: int, device: torch.device | str = "cpu") -> Batch:
    if not items:
        raise ValueError("make_seq2seq_batch: no examples")
    B = len(items)
    T = max(1, max(len(e.prompt) for e in items))
    L = max(1, max(len(e.answer) for e in items))
    input_ids = torch.full((B, T), pad, dtype=torch.int64)
    mask = torch.zeros((B, T), dtype=torch.int64)
    labels = torch.full((B, L), IGNORE_INDEX, dtype=torch.int64)
    labelled = tokens = 0
    for b, e in enumerate(items):
        if e.prompt:
            input_ids[b, : len(e.prompt)] = torch.tensor(e.prompt, dtype=torch.int64)
            mask[b, : len(e.prompt)] = 1
        if e.answer:
            labels[b, : len(e.answer)] = torch.tensor(e.answer, dtype=torch.int64)
        labelled += len(e.answer)
        tokens += len(e.prompt) + len(e.answer)
    return Batch(input_ids.to(device), labels.to(device), mask.to(device), labelled, tokens)


def build_batch(kind: str, items: Sequence[Example], pad: int, device: torch.device | str = "cpu") -> Batch:
    return (make_batch if kind == "causal" else make_seq2seq_batch)(items, pad, device)


def placeholder_batch(kind: str, pad: int, device: torch.device | str = "cpu") -> Batch:
    """One unlabelled row for a rank whose share of a batch is empty: it still runs the forward and backward
    (FSDP2's collectives and the gradient all-reduce need every rank), and contributes nothing (labelled 0)."""
    ids = torch.full((1, 1), pad, dtype=torch.int64, device=device)
    return Batch(ids, torch.full((1, 1), IGNORE_INDEX, dtype=torch.int64, device=device),
                 torch.ones((1, 1), dtype=torch.int64, device=device), 0, 0)


def rank_share(indices: Sequence[int], rank: int, world: int) -> list[int]:
    """This rank's rows of a global batch: every world-th row from its own rank on."""
    return list(indices[rank::world])


def chunks(n: int, size: int) -> list[range]:
    return [range(i, min(n, i + size)) for i in range(0, n, max(1, size))]
