"""The model: a Hugging Face checkpoint folder loaded with the Auto classes, in fp32, and its training loss.

The loss is returned as a SUM of token cross-entropies over the answer tokens; the training loop divides by the
labelled count of the whole (global) batch, so that ranks holding parts of one batch add up to the loss of the
batch, and one process computes the mean over answer tokens exactly as src/engine (and HF's own loss) do.

Models always run in eval mode: the tfjs engine has no dropout, and both engines must train the same function.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import os
import torch
import torch.nn.functional as F

from .methods.base import Batch

CAUSAL = "causal"
SEQ2SEQ = "seq2seq"


class ModelError(ValueError):
    pass


def _quiet_transformers() -> None:
    # Progress bars and advice on stderr would fill trainer.log at every start.
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def load_config(model_dir: str):
    """The folder's config.json as a transformers config. Integers stored where the config class declares a
    float (`"initializer_factor": 1`, as some writers emit) are accepted: recent transformers refuse them."""
    from transformers import CONFIG_MAPPING

    path = os.path.join(model_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise ModelError(f"{path}: missing; a model folder holds config.json and the weights") from None
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}: not valid JSON ({e})") from None
    model_type = raw.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ModelError(f"{path}: model_type {json.dumps(model_type)} is not one transformers knows")
    cls = CONFIG_MAPPING[model_type]
    if dataclasses.is_dataclass(cls):
        floats = {f.name for f in dataclasses.fields(cls) if f.type is float or f.type == "float"}
        for key in floats & raw.keys():
            if isinstance(raw[key], int) and not isinstance(raw[key], bool):
                raw[key] = float(raw[key])
    return cls.from_dict(raw)


def load_model(model_dir: str, kind: str, device: torch.device | str = "cpu"):
    """The checkpoint in `model_dir` as an fp32 model on `device`, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    _quiet_transformers()
    if kind not in (CAUSAL, SEQ2SEQ):
        raise ModelError(f"model kind {json.dumps(kind)}: expected 'causal' or 'seq2seq'")
    config = load_config(model_dir)
    auto = AutoModelForCausalLM if kind == CAUSAL else AutoModelForSeq2SeqLM
    try:
        model = auto.from_pretrained(model_dir, config=config, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise ModelError(f"{model_dir}: cannot be loaded as a {kind} model: {e}") from e
    model.to(device)
    model.eval()
    return model


def parameter_count(model: torch.nn.Module) -> int:
    # named_parameters drops tied duplicates (embeddings shared with the head), as the tfjs inventory counts.
    return sum(p.numel() for _, p in model.named_parameters())


def layer_count(model: torch.nn.Module) -> int:
    """Transformer blocks: decoder layers, or encoder + decoder layers of an encoder-decoder (as tfjs counts)."""
    cfg = model.config
    if getattr(cfg, "is_encoder_decoder", False):
        enc = getattr(cfg, "num_layers", None) or getattr(cfg, "encoder_layers", 0)
        dec = getattr(cfg, "num_decoder_layers", None) or getattr(cfg, "decoder_layers", None) or enc
        return int(enc + dec)
    for key in ("num_hidden_layers", "n_layer", "num_layers"):
        if getattr(cfg, key, None):
            return int(getattr(cfg, key))
    return 0


def decoder_start(model) -> int:
    cfg = model.config
    start = getattr(cfg, "decoder_start_token_id", None)
    if start is None:
        start = getattr(cfg, "pad_token_id", None)
    if start is None:
        raise ModelError("the seq2seq model's config has neither decoder_start_token_id nor pad_token_id")
    return int(start)


def shift_right(labels: torch.Tensor, start: int, pad: int) -> torch.Tensor:
    """Decoder inputs for seq2seq targets: the start token, then the labels but the last, -100 read as pad."""
    dec = labels.new_full(labels.shape, pad)
    dec[:, 1:] = labels[:, :-1]
    dec[:, 0] = start
    return dec.masked_fill(dec == -100, pad)


def logits(model, batch: Batch, kind: str, pad: int) -> torch.Tensor:
    """Logits of every position: [B, T, V] (causal) or of every decoder position [B, L, V] (seq2seq)."""
    if kind == CAUSAL:
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
    else:
        dec = shift_right(batch.labels, decoder_start(model), pad)
        out = model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, decoder_input_ids=dec, use_cache=False
        )
    return out.logits


def token_loss_sum(model, batch: Batch, kind: str, pad: int) -> torch.Tensor:
    """Σ cross-entropy over the answer tokens of the batch (fp32 scalar). An unlabelled batch (a rank's empty
    share) gives 0 through the whole graph, so that its backward still reaches every parameter."""
    out = logits(model, batch, kind, pad)
    if kind == CAUSAL:
        out, targets = out[:, :-1], batch.labels[:, 1:]
    else:
        targets = batch.labels
    if batch.labelled == 0:
        return out.float().sum() * 0.0
    keep = targets != -100
    return F.cross_entropy(out[keep].float(), targets[keep], reduction="sum")


def mean_loss(model, batch: Batch, kind: str, pad: int) -> torch.Tensor:
    """The batch's mean loss over answer tokens, on one process (methods' calibration passes, tests)."""
    total = token_loss_sum(model, batch, kind, pad)
    return total / batch.labelled if batch.labelled else total


def forward_accepts(model, name: str) -> bool:
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
