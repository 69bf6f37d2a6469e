#!/usr/bin/env python3
"""PyTorch twin of Sculpt's evaluation, for side-by-side throughput (`npm run bench -- eval`).

Reads a LLaMA-family checkpoint folder (config.json, model.safetensors) and a job file written by the suite
with the token ids Sculpt evaluates, then times, in fp32 on the CPU:
  rank      the runner's rank scoring over the same batches: `next` = one forward per prompt (right-padded),
            log-softmax of the last prompt position, the label tokens picked (labels of one token each);
            `cont` = Σ log p(label tokens | prompt) per prompt x label pair; the head runs only on the rows
            that are scored, as Sculpt's does;
  generate  greedy decoding of left-padded prompts with a key/value cache (positions from the padding mask,
            as Sculpt's generate), a fixed number of new tokens per prompt (no EOS stop).
Prints one JSON line: {"rank_s": [...], "gen_s": [...], "rank_scores": [...], "gen_tokens": [...], ...}.

  python3 scripts/bench/eval_twin.py --model assets/models/sculpt-base --job job.json --reps 3 --threads 2
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_twin import rms, rotate_half  # noqa: E402

MASKED = -1e9
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=DTYPES[h["dtype"]]).view(*h["shape"]) if b > a else torch.zeros(h["shape"])
        out[name] = t.float()
    return out


class Llama:
    def __init__(self, P, c):
        self.P, self.c = P, c
        self.d, self.L = c["hidden_size"], c["num_hidden_layers"]
        self.H = c["num_attention_heads"]
        self.KV = c.get("num_key_value_heads", self.H)
        self.hd = c.get("head_dim", self.d // self.H)
        self.eps = c.get("rms_norm_eps", 1e-6)
        theta = c.get("rope_theta", (c.get("rope_parameters") or {}).get("rope_theta", 10000.0))
        self.inv = 1.0 / (theta ** (torch.arange(0, self.hd, 2).float() / self.hd))
        self.head = P.get("lm_head.weight", P["model.embed_tokens.weight"])

    def hidden(self, ids, positions, bias, cache=None):
        """Final normed hidden states [B, T, d] of ids [B, T] at positions [B, T]; bias [B, 1, T, past+T]."""
        P, B, T = self.P, ids.shape[0], ids.shape[1]
        H, KV, hd = self.H, self.KV, self.hd
        ang = positions.float()[..., None] * self.inv
        cos, sin = torch.cat((ang, ang), -1).cos()[:, None], torch.cat((ang, ang), -1).sin()[:, None]
        h = F.embedding(ids, P["model.embed_tokens.weight"])
        for i in range(self.L):
            pre = f"model.layers.{i}."
            x = rms(h, P[pre + "input_layernorm.weight"], self.eps)
            q = (x @ P[pre + "self_attn.q_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
            k = (x @ P[pre + "self_attn.k_proj.weight"].T).view(B, T, KV, hd).transpose(1, 2)
            v = (x @ P[pre + "self_attn.v_proj.weight"].T).view(B, T, KV, hd).transpose(1, 2)
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            if cache is not None:
                if cache[i] is not None:
                    k, v = torch.cat((cache[i][0], k), 2), torch.cat((cache[i][1], v), 2)
                cache[i] = (k, v)
            if KV != H:
                k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
            a = ((q @ k.transpose(-1, -2)) / math.sqrt(hd) + bias).softmax(-1) @ v
            h = h + a.transpose(1, 2).reshape(B, T, -1) @ P[pre + "self_attn.o_proj.weight"].T
            x = rms(h, P[pre + "post_attention_layernorm.weight"], self.eps)
            h = h + (F.silu(x @ P[pre + "mlp.gate_proj.weight"].T) * (x @ P[pre + "mlp.up_proj.weight"].T)) @ P[pre + "mlp.down_proj.weight"].T
        return rms(h, P["model.norm.weight"], self.eps)


def right_padded(m, seqs):
    """Right-padded batch: positions 0..T-1 and the causal mask suffice (padding only follows real tokens)."""
    B, T = len(seqs), max(len(s) for s in seqs)
    ids = torch.zeros(B, T, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s)
    pos = torch.arange(T)[None].expand(B, T)
    bias = torch.zeros(T, T).masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), MASKED)[None, None]
    return m.hidden(ids, pos, bias).reshape(B * T, -1), T


def rank_next(m, prompts, candidates, bs):
    out = []
    cand = torch.tensor(candidates)
    for s in range(0, len(prompts), bs):
        P = prompts[s : s + bs]
        h, T = right_padded(m, P)
        last = h[torch.tensor([b * T + len(p) - 1 for b, p in enumerate(P)])]
        out += F.log_softmax(last @ m.head.T, -1)[:, cand].tolist()
    return out


def rank_cont(m, prompts, conts, bs):
    out = []
    for s in range(0, len(prompts), bs):
        P, C = prompts[s : s + bs], conts[s : s + bs]
        h, T = right_padded(m, [p + c for p, c in zip(P, C)])
        rows, toks, owner = [], [], []
        for b, c in enumerate(C):
            for j, t in enumerate(c):
                rows.append(b * T + len(P[b]) + j - 1)
                toks.append(t)
                owner.append(b)
        lp = F.log_softmax(h[torch.tensor(rows)] @ m.head.T, -1).gather(1, torch.tensor(toks)[:, None])[:, 0]
        sums = torch.zeros(len(P)).index_add_(0, torch.tensor(owner), lp)
        out += sums.tolist()
    return out


def generate(m, prompts, new_tokens):
    B, L = len(prompts), max(len(p) for p in prompts)
    rows = torch.zeros(B, L, dtype=torch.long)
    mask = torch.zeros(B, L)
    for b, p in enumerate(prompts):
        rows[b, L - len(p) :] = torch.tensor(p)
        mask[b, L - len(p) :] = 1
    cache = [None] * m.L
    out = []
    feed = rows
    for step in range(new_tokens):
        T, total = feed.shape[1], mask.shape[1]
        past = total - T
        pos = (mask.cumsum(1) - 1).clamp(min=0)[:, past:].long()
        bias = ((1 - mask) * MASKED)[:, None, None, :]
        if T > 1:
            bias = bias + torch.zeros(T, total).masked_fill(torch.ones(T, total, dtype=torch.bool).triu(past + 1), MASKED)[None, None]
        h = m.hidden(feed, pos, bias, cache)
        nxt = (h[:, -1] @ m.head.T).argmax(-1)
        out.append(nxt)
        feed = nxt[:, None]
        mask = torch.cat((mask, torch.ones(B, 1)), 1)
    return torch.stack(out, 1).tolist()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    c = json.load(open(os.path.join(a.model, "config.json")))
    m = Llama(read_safetensors(os.path.join(a.model, "model.safetensors")), c)
    job = json.load(open(a.job))
    r, g = job["rank"], job["generate"]

    def run_rank():
        if r["mode"] == "next":
            return rank_next(m, r["prompts"], r["candidates"], r["batchSize"])
        return rank_cont(m, r["prompts"], r["continuations"], r["batchSize"])

    def timed(f):
        times, result = [], None
        for i in range(a.warmup + a.reps):
            t0 = time.perf_counter()
            result = f()
            if i >= a.warmup:
                times.append(time.perf_counter() - t0)
        return times, result

    with torch.inference_mode():
        rank_s, scores = timed(run_rank)
        gen_s, tokens = timed(lambda: generate(m, g["prompts"], g["newTokens"]))
    try:
        maps = open("/proc/self/maps").read()
        blas = next((n for n in ("openblas64-pthread", "openblas-pthread", "openblas", "blis", "mkl", "libblas") if n in maps), "unknown")
    except OSError:
        blas = "unknown"
    print(json.dumps({"rank_s": rank_s, "gen_s": gen_s, "rank_scores": scores, "gen_tokens": tokens, "threads": torch.get_num_threads(), "torch": torch.__version__, "blas": blas}))


if __name__ == "__main__":
    main()
