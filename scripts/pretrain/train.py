#!/usr/bin/env python3
"""Pretrains Sculpt's shipped base model: a small LLaMA-architecture decoder, with the Hugging Face
LlamaForCausalLM computation and parameter names, so the engine loads the result like any HF checkpoint.

PyTorch (the project's Python environment .venv, made by scripts/provision/python.sh) is used here only
because it trains this model an order of magnitude faster on a CPU than the engine does today; the engine
checks the result (scripts/pretrain/finish.ts recomputes the held-out loss and must agree). Inputs come from
scripts/pretrain/prepare.ts:

  <work>/config.json      the HF config of the model to train
  <work>/train.bin        int32 token ids of the pretraining corpus (documents separated by <eos>)
  <work>/heldout.bin      int32 token ids held out for perplexity
  <work>/init-embed.bin   float32 [vocab, hidden] initial (tied) embeddings, from GloVe where words match

  .venv/bin/python scripts/pretrain/train.py <work> --tokens 20000000 --seed 0
writes <work>/model.safetensors and <work>/train-log.json (with the PyTorch version that trained it).
"""
import argparse
import json
import math
import os
import struct
import time

import torch
import torch.nn.functional as F


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Llama(torch.nn.Module):
    """LlamaForCausalLM's forward over a flat dict of parameters named as in HF checkpoints."""

    def __init__(self, cfg, init_embed, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        d, ff, L, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
        self.cfg = cfg
        self.heads = cfg["num_attention_heads"]
        self.kv = cfg["num_key_value_heads"]
        self.hd = d // self.heads
        std = cfg.get("initializer_range", 0.02)
        p = {}

        def normal(*shape):
            return torch.nn.Parameter(torch.randn(*shape, generator=g) * std)

        p["model.embed_tokens.weight"] = torch.nn.Parameter(init_embed.clone())
        for i in range(L):
            pre = f"model.layers.{i}."
            p[pre + "self_attn.q_proj.weight"] = normal(self.heads * self.hd, d)
            p[pre + "self_attn.k_proj.weight"] = normal(self.kv * self.hd, d)
            p[pre + "self_attn.v_proj.weight"] = normal(self.kv * self.hd, d)
            # Scaled residual projections (GPT-2 style) keep deep residual streams stable from the start.
            p[pre + "self_attn.o_proj.weight"] = torch.nn.Parameter(normal(d, self.heads * self.hd).data / math.sqrt(2 * L))
            p[pre + "mlp.gate_proj.weight"] = normal(ff, d)
            p[pre + "mlp.up_proj.weight"] = normal(ff, d)
            p[pre + "mlp.down_proj.weight"] = torch.nn.Parameter(normal(d, ff).data / math.sqrt(2 * L))
            p[pre + "input_layernorm.weight"] = torch.nn.Parameter(torch.ones(d))
            p[pre + "post_attention_layernorm.weight"] = torch.nn.Parameter(torch.ones(d))
        p["model.norm.weight"] = torch.nn.Parameter(torch.ones(d))
        self.p = torch.nn.ParameterDict({k.replace(".", "__"): v for k, v in p.items()})
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, self.hd, 2, dtype=torch.int64).float() / self.hd))
        pos = torch.arange(cfg["max_position_embeddings"]).float()
        ang = torch.outer(pos, inv)
        emb = torch.cat((ang, ang), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)
        n = cfg["max_position_embeddings"]
        self.register_buffer("causal", torch.ones(n, n, dtype=torch.bool).triu(1), persistent=False)

    def w(self, name):
        return self.p[name.replace(".", "__")]

    def named(self):
        return {k.replace("__", "."): v for k, v in self.p.items()}

    def forward(self, ids):
        cfg = self.cfg
        B, T = ids.shape
        eps = cfg["rms_norm_eps"]
        h = F.embedding(ids, self.w("model.embed_tokens.weight"))
        cos, sin = self.cos[:T][None, None], self.sin[:T][None, None]
        for i in range(cfg["num_hidden_layers"]):
            pre = f"model.layers.{i}."
            x = rms_norm(h, self.w(pre + "input_layernorm.weight"), eps)
            q = (x @ self.w(pre + "self_attn.q_proj.weight").T).view(B, T, self.heads, self.hd).transpose(1, 2)
            k = (x @ self.w(pre + "self_attn.k_proj.weight").T).view(B, T, self.kv, self.hd).transpose(1, 2)
            v = (x @ self.w(pre + "self_attn.v_proj.weight").T).view(B, T, self.kv, self.hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if self.kv != self.heads:
                k = k.repeat_interleave(self.heads // self.kv, dim=1)
                v = v.repeat_interleave(self.heads // self.kv, dim=1)
            # Written out, as the engine computes it (finish.ts compares the two).
            att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
            att = att.masked_fill(self.causal[:T, :T], float("-inf"))
            a = att.softmax(-1) @ v
            h = h + a.transpose(1, 2).reshape(B, T, -1) @ self.w(pre + "self_attn.o_proj.weight").T
            x = rms_norm(h, self.w(pre + "post_attention_layernorm.weight"), eps)
            m = F.silu(x @ self.w(pre + "mlp.gate_proj.weight").T) * (x @ self.w(pre + "mlp.up_proj.weight").T)
            h = h + m @ self.w(pre + "mlp.down_proj.weight").T
        h = rms_norm(h, self.w("model.norm.weight"), eps)
        return h @ self.w("model.embed_tokens.weight").T


def read_ids(path):
    with open(path, "rb") as f:
        data = f.read()
    return torch.frombuffer(bytearray(data), dtype=torch.int32).long()


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().to(torch.float32).cpu()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


@torch.no_grad()
def heldout_loss(model, ids, T, batches=16):
    n = (len(ids) - 1) // T
    losses = []
    for b in range(0, min(n, batches * 8), 8):
        x = torch.stack([ids[i * T:(i + 1) * T] for i in range(b, min(b + 8, n))])
        logits = model(x)
        losses.append(F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)).item())
    return sum(losses) / len(losses)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--tokens", type=int, default=20_000_000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda: same fp32 arithmetic (TF32 off), minutes instead of hours")
    args = ap.parse_args()
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = json.load(open(os.path.join(args.work, "config.json")))
    V, d, T = cfg["vocab_size"], cfg["hidden_size"], cfg["max_position_embeddings"]
    raw = open(os.path.join(args.work, "init-embed.bin"), "rb").read()
    init = torch.tensor(struct.unpack(f"<{len(raw) // 4}f", raw)).view(V, d)
    train, held = read_ids(os.path.join(args.work, "train.bin")).to(dev), read_ids(os.path.join(args.work, "heldout.bin")).to(dev)
    model = Llama(cfg, init, args.seed).to(dev)
    offsets = torch.arange(T, device=dev)
    decay = [p for n, p in model.named().items() if p.dim() == 2]
    other = [p for n, p in model.named().items() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    steps = args.tokens // (args.batch * T)
    warm = max(1, steps // 50)
    g = torch.Generator().manual_seed(args.seed)
    log = {"device": str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev), "torch": torch.__version__, "threads": args.threads, "steps": steps, "batch": args.batch, "context": T, "lr": args.lr, "seed": args.seed, "tokens": steps * args.batch * T, "corpus_tokens": len(train), "curve": []}
    start = time.time()
    for step in range(1, steps + 1):
        lr = args.lr * min(step / warm, 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm))))
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(train) - T - 1, (args.batch,), generator=g)
        # The same windows as slicing train[s:s+T] per start, as one gather (the start draws stay on the CPU
        # generator, so a given seed picks the same windows on every device).
        x = train[starts.to(dev)[:, None] + offsets]
        logits = model(x)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == steps or step == 10:
            hl = heldout_loss(model, held, T)
            el = time.time() - start
            log["curve"].append({"step": step, "train_loss": loss.item(), "heldout_loss": hl, "seconds": el})
            print(f"step {step}/{steps} loss {loss.item():.3f} heldout {hl:.3f} ppl {math.exp(hl):.1f} {step * args.batch * T / el:.0f} tok/s", flush=True)
            write_safetensors(os.path.join(args.work, "model.safetensors"), model.named(), {"format": "pt"})
            json.dump(log, open(os.path.join(args.work, "train-log.json"), "w"), indent=1)
    log["heldout_loss"] = heldout_loss(model, held, T, batches=64)
    log["seconds"] = time.time() - start
    write_safetensors(os.path.join(args.work, "model.safetensors"), model.named(), {"format": "pt"})
    json.dump(log, open(os.path.join(args.work, "train-log.json"), "w"), indent=1)
    print(f"done: held-out loss {log['heldout_loss']:.4f} (ppl {math.exp(log['heldout_loss']):.1f}) in {log['seconds']:.0f} s")


if __name__ == "__main__":
    main()
