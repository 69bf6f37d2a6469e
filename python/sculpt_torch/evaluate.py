"""Scores of evaluation prompts, as src/engine/evaluate.ts and src/engine/models/{generation,t5-generation}.ts
compute them; the trainer process turns them into predictions and accuracies.

- `next`: log p(candidate | prompt) at the prompt's last position, for every candidate (one forward per prompt).
- `cont`: Σ_j log p(cont_j | prompt, cont_<j) for every label's continuation; prompt/continuation pairs are
  batched example-major, `batch_size` pairs per forward.
- `generate`: greedy decoding of up to max_new_tokens, each row stopping after its first EOS (which it keeps).

Causal prompts are right-padded for scoring (a row's real tokens never see its padding) and left-padded for
generation (every row's next token in the last column; position ids from the mask), as in the tfjs engine. The
head runs only on the positions that are read (`logits_to_keep`) where the model supports it.

Work is split over ranks by batch (batch i on rank i mod world) and gathered; under FSDP2 every forward is a
collective, so ranks with fewer batches run placeholder forwards and generation steps are agreed on.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from .data import chunks
from .distributed import Dist
from .model import CAUSAL, decoder_start, forward_accepts


def _pad(rows: Sequence[Sequence[int]], pad: int, device, left: bool = False, width: int | None = None):
    T = max(width or 0, max(len(r) for r in rows))
    ids = torch.full((len(rows), T), pad, dtype=torch.int64)
    mask = torch.zeros((len(rows), T), dtype=torch.int64)
    for b, r in enumerate(rows):
        if not r:
            continue
        span = slice(T - len(r), T) if left else slice(0, len(r))
        ids[b, span] = torch.tensor(list(r), dtype=torch.int64)
        mask[b, span] = 1
    return ids.to(device), mask.to(device)


class Scorer:
    """Evaluation on one model, with the run's pad/eos ids, precision and ranks."""

    def __init__(self, model, kind: str, pad: int, eos: int | None, dist: Dist | None = None):
        self.model = model
        self.kind = kind
        self.pad = pad
        self.eos = eos
        self.dist = dist or Dist()
        self.device = self.dist.device
        self.keep_positions = forward_accepts(model, "logits_to_keep")
        self.cache_arg = "cache" if forward_accepts(model, "cache") else "past_key_values"

    # ---- distribution of batches over ranks ----

    def _map(self, units: list, run: Callable, placeholder: Callable[[], None]) -> list:
        d = self.dist
        mine = units[d.rank :: d.world]
        results = [run(u) for u in mine]
        if d.shard == "fsdp2":
            rounds = math.ceil(len(units) / d.world) if units else 0
            for _ in range(rounds - len(mine)):
                placeholder()
        if not d.active:
            return results
        per_rank = d.gather(results)
        return [per_rank[i % d.world][i // d.world] for i in range(len(units))]

    def _forward(self, **kwargs):
        with torch.no_grad(), self.dist.autocast():
            return self.model(**kwargs)

    def _causal_logits_at(self, ids, mask, positions: list[list[int]]):
        """Logits [B, K, V] at each row's `positions` (rows padded to the longest list by repeating)."""
        wanted = sorted({p for ps in positions for p in ps})
        kwargs = dict(input_ids=ids, attention_mask=mask, use_cache=False)
        if self.keep_positions:
            kwargs["logits_to_keep"] = torch.tensor(wanted, dtype=torch.int64, device=ids.device)
            column = {p: i for i, p in enumerate(wanted)}
        else:
            column = {p: p for p in wanted}
        logits = self._forward(**kwargs).logits
        K = max(len(ps) for ps in positions)
        index = torch.tensor(
            [[column[ps[min(j, len(ps) - 1)]] for j in range(K)] for ps in positions], dtype=torch.int64, device=ids.device
        )
        return logits.gather(1, index.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))

    # ---- next ----

    def next_token(self, prompts: Sequence[Sequence[int]], candidates: Sequence[int], batch_size: int) -> list[list[float]]:
        cand = torch.tensor(list(candidates), dtype=torch.int64, device=self.device)
        units = chunks(len(prompts), batch_size)

        def run(span: range) -> list[list[float]]:
            P = [prompts[i] for i in span]
            if self.kind == CAUSAL:
                ids, mask = _pad(P, self.pad, self.device)
                logits = self._causal_logits_at(ids, mask, [[len(p) - 1] for p in P])[:, 0]
            else:
                ids, mask = _pad(P, self.pad, self.device)
                start = torch.full((len(P), 1), decoder_start(self.model), dtype=torch.int64, device=self.device)
                logits = self._forward(input_ids=ids, attention_mask=mask, decoder_input_ids=start,
                                       use_cache=False).logits[:, 0]
            return torch.log_softmax(logits.float(), dim=-1)[:, cand].tolist()

        return [row for part in self._map(units, run, lambda: run(units[0])) for row in part]

    # ---- cont ----

    def continuation_sums(self, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]],
                          batch_size: int) -> list[float]:
        if len(prompts) != len(continuations):
            raise ValueError(f"continuation scores: {len(prompts)} prompts but {len(continuations)} continuations")
        units = chunks(len(prompts), batch_size)

        def run(span: range) -> list[float]:
            P = [prompts[i] for i in span]
            C = [continuations[i] for i in span]
            if self.kind == CAUSAL:
                ids, mask = _pad([list(p) + list(c) for p, c in zip(P, C)], self.pad, self.device)
                positions = [[len(p) + j - 1 for j in range(len(c))] for p, c in zip(P, C)]
                logits = self._causal_logits_at(ids, mask, positions)
            else:
                ids, mask = _pad(P, self.pad, self.device)
                start = decoder_start(self.model)
                dec, _ = _pad([[start, *c[:-1]] for c in C], self.pad, self.device)
                logits = self._forward(input_ids=ids, attention_mask=mask, decoder_input_ids=dec,
                                       use_cache=False).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            K = logp.shape[1]
            target = torch.tensor([list(c) + [0] * (K - len(c)) for c in C], dtype=torch.int64, device=self.device)
            picked = logp.gather(2, target.unsqueeze(-1)).squeeze(-1)
            valid = torch.tensor([[True] * len(c) + [False] * (K - len(c)) for c in C], device=self.device)
            return torch.where(valid, picked, torch.zeros_like(picked)).sum(dim=1).tolist()

        return [s for part in self._map(units, run, lambda: run(units[0])) for s in part]

    # ---- generate ----

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, batch_size: int) -> list[list[int]]:
        units = chunks(len(prompts), batch_size)
        if max_new_tokens <= 0:
            return [[] for _ in prompts]

        def run(span: range) -> list[list[int]]:
            return self._greedy([prompts[i] for i in span], max_new_tokens)

        def placeholder() -> None:
            self._greedy([prompts[0]], max_new_tokens, placeholder=True)

        return [row for part in self._map(units, run, placeholder) for row in part]

    def _step_agreed(self, going: bool) -> bool:
        # Under FSDP2 every rank must run the same number of decoder steps.
        return self.dist.any(going) if self.dist.shard == "fsdp2" else going

    def _greedy(self, P: list[Sequence[int]], max_new: int, placeholder: bool = False) -> list[list[int]]:
        B = len(P)
        out: list[list[int]] = [[] for _ in range(B)]
        done = [placeholder] * B
        if self.kind == CAUSAL:
            ids, mask = _pad(P, self.pad, self.device, left=True)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            kwargs = dict(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        else:
            ids, mask = _pad(P, self.pad, self.device)
            first = torch.full((B, 1), decoder_start(self.model), dtype=torch.int64, device=self.device)
            kwargs = dict(input_ids=ids, attention_mask=mask, decoder_input_ids=first, use_cache=True)
        if self.keep_positions:
            kwargs["logits_to_keep"] = 1
        encoded = None
        for step in range(max_new):
            res = self._forward(**kwargs)
            nxt = res.logits[:, -1].float().argmax(-1)
            for b, tok in enumerate(nxt.tolist()):
                if done[b]:
                    continue
                out[b].append(tok)
                if self.eos is not None and tok == self.eos:
                    done[b] = True
            if step == max_new - 1 or not self._step_agreed(not all(done)):
                break
            cache = getattr(res, "cache", None) if self.cache_arg == "cache" else None
            if cache is None:
                cache = getattr(res, "past_key_values", None)
            feed = nxt.unsqueeze(-1)
            if self.kind == CAUSAL:
                mask = torch.cat([mask, torch.ones_like(feed)], dim=1)
                pos = pos[:, -1:] + 1
                kwargs = dict(input_ids=feed, attention_mask=mask, position_ids=pos, use_cache=True)
            else:
                if encoded is None:
                    encoded = (res.encoder_last_hidden_state,)
                kwargs = dict(encoder_outputs=encoded, attention_mask=mask, decoder_input_ids=feed, use_cache=True)
            kwargs[self.cache_arg] = cache
            if self.keep_positions:
                kwargs["logits_to_keep"] = 1
        return out
