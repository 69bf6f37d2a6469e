"""The model as the worker loads it against the reference fixtures (test/fixtures/hf-reference: logits, loss and
gradients computed by PyTorch + transformers on tiny LLaMA, GPT-2 and T5 checkpoints), and the worker's loss against
HF's own loss on batches built by the worker."""
import json
import os
import shutil
import tempfile
import unittest

import torch
from safetensors.torch import load_file

from sculpt_torch.data import Example, make_batch, make_seq2seq_batch
from sculpt_torch.methods.base import Batch
from sculpt_torch.model import load_model, logits, mean_loss, token_loss_sum

from .core_fixtures import HF_REFERENCE, TINY_LLAMA, TINY_T5



def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Norm-wise relative difference."""
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


class ReferenceFixtureTest(unittest.TestCase):
    """Each fixture folder is itself a saved model; the worker loads it and reproduces the reference numbers."""

    def check(self, name: str, kind: str):
        folder = os.path.join(HF_REFERENCE, name)
        ref = load_file(os.path.join(folder, "reference.safetensors"))
        model = load_model(folder, kind)
        ids = ref["input.input_ids"].long()
        labels = ref["input.labels"].long()
        # Causal fixtures label every token (HF shifts inside): every position but the first is predicted.
        labelled = int(labels[:, 1:].numel()) if kind == "causal" else int(labels.numel())
        batch = Batch(ids, labels, torch.ones_like(ids), labelled, int(ids.numel()))
        out = logits(model, batch, kind, pad=0)
        self.assertEqual(tuple(out.shape), tuple(ref["logits"].shape))
        self.assertLessEqual(rel(out.detach(), ref["logits"]), 1e-4, f"{name} logits")
        loss = mean_loss(model, batch, kind, pad=0)
        self.assertLessEqual(abs(loss.item() - ref["loss"].item()) / ref["loss"].item(), 1e-5, f"{name} loss")
        with open(os.path.join(folder, "reference.json")) as f:
            self.assertAlmostEqual(json.load(f)["loss"], ref["loss"].item(), places=5)
        loss.backward()
        checked = 0
        for pname, p in model.named_parameters():
            key = f"grad.{pname}"
            if key in ref:
                self.assertLessEqual(rel(p.grad, ref[key]), 1e-4, f"{name} gradient of {pname}")
                checked += 1
        self.assertGreater(checked, 10)

    def test_llama_tiny(self):
        self.check("llama-tiny", "causal")

    def test_gpt2_tiny(self):
        self.check("gpt2-tiny", "causal")

    def test_t5_tiny(self):
        self.check("t5-tiny", "seq2seq")


class LossTest(unittest.TestCase):
    def test_causal_loss_equals_hf_loss(self):
        model = load_model(TINY_LLAMA, "causal")
        batch = make_batch([Example((1, 5, 6, 7), (20, 2)), Example((1, 5), (21, 22, 2)),
                            Example((1, 30, 31, 32, 33, 34, 35), (23, 2))], pad=0)
        ours = token_loss_sum(model, batch, "causal", 0) / batch.labelled
        theirs = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
        self.assertLessEqual(abs(ours.item() - theirs.item()), 1e-6 * abs(theirs.item()))

    def test_seq2seq_loss_equals_hf_loss(self):
        model = load_model(TINY_T5, "seq2seq")
        batch = make_seq2seq_batch([Example((5, 6, 7, 2), (20, 2)), Example((5, 2), (21, 22, 2))], pad=0)
        ours = token_loss_sum(model, batch, "seq2seq", 0) / batch.labelled
        theirs = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
        self.assertLessEqual(abs(ours.item() - theirs.item()), 1e-6 * abs(theirs.item()))

    def test_shares_of_a_batch_add_up_to_its_loss(self):
        model = load_model(TINY_LLAMA, "causal")
        items = [Example((1, 5, 6, 7), (20, 2)), Example((1, 5), (21, 22, 2)), Example((1, 8, 9), (23, 2))]
        whole = make_batch(items, 0)
        parts = [make_batch(items[r::2], 0) for r in range(2)]
        summed = sum(token_loss_sum(model, p, "causal", 0) for p in parts) / whole.labelled
        single = token_loss_sum(model, whole, "causal", 0) / whole.labelled
        self.assertLessEqual(abs(summed.item() - single.item()), 1e-6 * single.item())

    def test_int_where_a_float_is_declared_loads(self):
        # "initializer_factor": 1 (as some writers emit 1.0), which transformers' strict config classes refuse.
        with tempfile.TemporaryDirectory() as d:
            for name in os.listdir(TINY_T5):
                shutil.copy(os.path.join(TINY_T5, name), d)
            with open(os.path.join(d, "config.json"), encoding="utf-8") as f:
                raw = json.load(f)
            raw["initializer_factor"] = 1
            with open(os.path.join(d, "config.json"), "w", encoding="utf-8") as f:
                json.dump(raw, f)
            model = load_model(d, "seq2seq")
            self.assertFalse(model.training)


if __name__ == "__main__":
    unittest.main()
