#!/usr/bin/env python3
"""PyTorch twin of Sculpt's training step, for side-by-side speed ratios (`npm run bench -- train`).

Builds the same model as the engine from an HF config.json (LLaMA family or GPT-2, fp32, random weights),
runs AdamW steps on a fixed batch, optionally with adaptive SVD's dense two-sided projection of every
attention/MLP matrix (k = floor(ratio * min_dim), gradient projected before the step, weight change re-projected
after it), and prints one JSON line: {"step_s": [...], "loss0": first step's loss, "threads": n, "torch": version,
"blas": "..."}.

The batch is --batch-file's (JSON {"ids": [B*T], "labels": [B*T]}, row-major, -100 = unlabelled; the bench writes
the batch Sculpt trains on), or random tokens labelled everywhere. --loss picks the loss:
  lm      cross-entropy of every position's logits against the next id (a language-model step; the default)
  hf      what LlamaForCausalLM(labels=...) does: logits at every position, labels shifted left and padded with
          -100, F.cross_entropy(..., ignore_index=-100)
  gather  what Sculpt does: the hidden states of the positions whose next token is labelled, then the head and the
          cross-entropy on those rows alone (the positions are found once, as a data collator would)

  python3 scripts/bench/torch_twin.py --config path/config.json --batch 8 --seq 64 --steps 5 [--svd 0.5]
      [--batch-file batch.json --loss hf]
"""
import argparse
import json
import math
import re
import time

import torch
import torch.nn.functional as F


def rms(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def llama_params(c):
    d, ff, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    H, KV = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    hd = c.get("head_dim", d // H)
    p = {"model.embed_tokens.weight": (V, d), "model.norm.weight": (d,)}
    for i in range(L):
        pre = f"model.layers.{i}."
        p.update({pre + "self_attn.q_proj.weight": (H * hd, d), pre + "self_attn.k_proj.weight": (KV * hd, d),
                  pre + "self_attn.v_proj.weight": (KV * hd, d), pre + "self_attn.o_proj.weight": (d, H * hd),
                  pre + "mlp.gate_proj.weight": (ff, d), pre + "mlp.up_proj.weight": (ff, d), pre + "mlp.down_proj.weight": (d, ff),
                  pre + "input_layernorm.weight": (d,), pre + "post_attention_layernorm.weight": (d,)})
    if not c.get("tie_word_embeddings", False):
        p["lm_head.weight"] = (V, d)
    return p


def llama_hidden(P, c, ids):
    """Final-norm hidden states [B, T, d]."""
    B, T = ids.shape
    d, L = c["hidden_size"], c["num_hidden_layers"]
    H, KV = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    hd = c.get("head_dim", d // H)
    eps = c.get("rms_norm_eps", 1e-6)
    theta = c.get("rope_theta", (c.get("rope_parameters") or {}).get("rope_theta", 10000.0))
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, device=ids.device).float() / hd))
    ang = torch.outer(torch.arange(T, device=ids.device).float(), inv)
    cos, sin = torch.cat((ang, ang), -1).cos()[None, None], torch.cat((ang, ang), -1).sin()[None, None]
    mask = torch.ones(T, T, dtype=torch.bool, device=ids.device).triu(1)
    h = F.embedding(ids, P["model.embed_tokens.weight"])
    for i in range(L):
        pre = f"model.layers.{i}."
        x = rms(h, P[pre + "input_layernorm.weight"], eps)
        q = (x @ P[pre + "self_attn.q_proj.weight"].T).view(B, T, H, hd).transpose(1, 2)
        k = (x @ P[pre + "self_attn.k_proj.weight"].T).view(B, T, KV, hd).transpose(1, 2)
        v = (x @ P[pre + "self_attn.v_proj.weight"].T).view(B, T, KV, hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if KV != H:
            k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        a = ((q @ k.transpose(-1, -2)) / math.sqrt(hd)).masked_fill(mask, float("-inf")).softmax(-1) @ v
        h = h + a.transpose(1, 2).reshape(B, T, -1) @ P[pre + "self_attn.o_proj.weight"].T
        x = rms(h, P[pre + "post_attention_layernorm.weight"], eps)
        h = h + (F.silu(x @ P[pre + "mlp.gate_proj.weight"].T) * (x @ P[pre + "mlp.up_proj.weight"].T)) @ P[pre + "mlp.down_proj.weight"].T
    return rms(h, P["model.norm.weight"], eps)


def llama_head(P):
    return P.get("lm_head.weight", P["model.embed_tokens.weight"])


def gpt2_params(c):
    d, L, V, n = c["n_embd"], c["n_layer"], c["vocab_size"], c["n_positions"]
    ff = c.get("n_inner") or 4 * d
    p = {"transformer.wte.weight": (V, d), "transformer.wpe.weight": (n, d), "transformer.ln_f.weight": (d,), "transformer.ln_f.bias": (d,)}
    for i in range(L):
        pre = f"transformer.h.{i}."
        p.update({pre + "ln_1.weight": (d,), pre + "ln_1.bias": (d,), pre + "attn.c_attn.weight": (d, 3 * d), pre + "attn.c_attn.bias": (3 * d,),
                  pre + "attn.c_proj.weight": (d, d), pre + "attn.c_proj.bias": (d,), pre + "ln_2.weight": (d,), pre + "ln_2.bias": (d,),
                  pre + "mlp.c_fc.weight": (d, ff), pre + "mlp.c_fc.bias": (ff,), pre + "mlp.c_proj.weight": (ff, d), pre + "mlp.c_proj.bias": (d,)})
    return p


def gpt2_hidden(P, c, ids):
    """Final-norm hidden states [B, T, d]."""
    B, T = ids.shape
    d, L, H = c["n_embd"], c["n_layer"], c["n_head"]
    hd, eps = d // H, c.get("layer_norm_epsilon", 1e-5)
    mask = torch.ones(T, T, dtype=torch.bool, device=ids.device).triu(1)
    h = F.embedding(ids, P["transformer.wte.weight"]) + P["transformer.wpe.weight"][:T]
    for i in range(L):
        pre = f"transformer.h.{i}."
        x = F.layer_norm(h, (d,), P[pre + "ln_1.weight"], P[pre + "ln_1.bias"], eps)
        q, k, v = (x @ P[pre + "attn.c_attn.weight"] + P[pre + "attn.c_attn.bias"]).split(d, -1)
        q, k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in (q, k, v))
        a = ((q @ k.transpose(-1, -2)) / math.sqrt(hd)).masked_fill(mask, float("-inf")).softmax(-1) @ v
        h = h + a.transpose(1, 2).reshape(B, T, d) @ P[pre + "attn.c_proj.weight"] + P[pre + "attn.c_proj.bias"]
        x = F.layer_norm(h, (d,), P[pre + "ln_2.weight"], P[pre + "ln_2.bias"], eps)
        h = h + F.gelu(x @ P[pre + "mlp.c_fc.weight"] + P[pre + "mlp.c_fc.bias"], approximate="tanh") @ P[pre + "mlp.c_proj.weight"] + P[pre + "mlp.c_proj.bias"]
    return F.layer_norm(h, (d,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps)


def gpt2_head(P):
    return P["transformer.wte.weight"]


def is_target(name):
    return any(s in name for s in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "c_attn.weight", "c_proj.weight", "c_fc.weight"))



def twin_blas() -> str:
    """The BLAS behind torch's CPU products. A PyPI wheel is built against MKL (its build settings say
    BLAS_INFO=mkl), while numpy may load OpenBLAS into the same process, so the loaded libraries alone mislead;
    Debian's torch calls whatever libblas.so.3 the alternatives system points at: then name the loaded library."""
    info = re.search(r"BLAS_INFO=([A-Za-z0-9_]+)", torch.__config__.show())
    if info and info.group(1) not in ("generic", "open"):
        return info.group(1)
    try:
        maps = open("/proc/self/maps").read()
    except OSError:
        return info.group(1) if info else "unknown"
    return next((n for n in ("openblas64-pthread", "openblas-pthread", "openblas", "blis", "mkl", "libblas") if n in maps), "unknown")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--svd", type=float, default=0.0, help="protected ratio; 0 = plain AdamW (seqft)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (fp32, TF32 off: the engine computes in plain fp32)")
    ap.add_argument("--batch-file", default=None, help='JSON {"ids": [B*T], "labels": [B*T]}; default: random ids, all labelled')
    ap.add_argument("--loss", choices=("lm", "hf", "gather"), default="lm", help="see the header")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = json.load(open(a.config))
    gpt2 = c.get("model_type") == "gpt2"
    shapes = gpt2_params(c) if gpt2 else llama_params(c)
    P = {n: torch.nn.Parameter((torch.randn(*s) * 0.02 if len(s) > 1 else torch.ones(*s)).to(dev)) for n, s in shapes.items()}
    hidden, head = (gpt2_hidden, gpt2_head) if gpt2 else (llama_hidden, llama_head)
    opt = torch.optim.AdamW(P.values(), lr=1e-4, weight_decay=0.0)
    bases = {}
    if a.svd > 0:
        for n, p in P.items():
            if p.dim() == 2 and is_target(n):
                U, S, Vh = torch.linalg.svd(p.detach(), full_matrices=False)
                k = int(a.svd * min(p.shape))
                bases[n] = (U[:, :k].contiguous(), Vh[:k].T.contiguous())

    def project(n, G):
        U, V = bases[n]
        G = G - U @ (U.T @ G)
        return G - (G @ V) @ V.T

    V = c["vocab_size"]
    if a.batch_file:
        b = json.load(open(a.batch_file))
        ids = torch.tensor(b["ids"], dtype=torch.long).view(a.batch, a.seq).to(dev)
        labels = torch.tensor(b["labels"], dtype=torch.long).view(a.batch, a.seq).to(dev)
    else:
        ids = torch.randint(0, V, (a.batch, a.seq)).to(dev)
        labels = ids
    if a.loss == "hf":
        # transformers' ForCausalLMLoss: shift the labels left, pad the last position with -100.
        shift_labels = F.pad(labels, (0, 1), value=-100)[:, 1:].reshape(-1)
    elif a.loss == "gather":
        nxt = labels[:, 1:]
        keep = (nxt != -100).nonzero()
        rows = keep[:, 0] * a.seq + keep[:, 1]  # flat position b*T + t whose next token is labelled
        targets = nxt[keep[:, 0], keep[:, 1]]

    def step_loss():
        h = hidden(P, c, ids)
        if a.loss == "gather":
            return F.cross_entropy(h.reshape(-1, h.shape[-1]).index_select(0, rows) @ head(P).T, targets)
        logits = h @ head(P).T
        if a.loss == "hf":
            return F.cross_entropy(logits.reshape(-1, V), shift_labels, ignore_index=-100)
        return F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))

    times = []
    loss0 = None
    for step in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        loss = step_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if bases:
            for n in bases:
                P[n].grad = project(n, P[n].grad)
            before = {n: P[n].detach().clone() for n in bases}
        opt.step()
        if bases:
            with torch.no_grad():
                for n in bases:
                    P[n].copy_(before[n] + project(n, P[n] - before[n]))
        sync()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
        if step == 0:
            loss0 = loss.item()  # outside the timed span
    blas = twin_blas()
    if dev.type == "cuda":
        blas = torch.cuda.get_device_name(dev)
    print(json.dumps({"step_s": times, "loss0": loss0, "threads": torch.get_num_threads(), "torch": torch.__version__, "blas": blas, "device": str(dev),
                      "peak_bytes": torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None}))


if __name__ == "__main__":
    main()
