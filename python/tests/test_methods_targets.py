"""The target matrices of llama, GPT-2 and T5 models as the TypeScript inventory lists them
(src/engine/models/{llama,gpt2,t5-config}.ts): names, order, layer, role, group, orientation and dimensions; the
parameter groups methods freeze by; and the [out, in] view of GPT-2's Conv1D."""
from __future__ import annotations

import unittest

import torch

from sculpt_torch.methods.base import MethodContext
from sculpt_torch.targets import head_and_embedding_matrices, parameter_groups, target_matrices

from tests.test_methods_support import GPT2_TINY, LLAMA_TINY, T5_TINY, load_model


class TargetInventoryTest(unittest.TestCase):
    def test_llama_targets_in_inventory_order_with_roles_layers_and_dims(self) -> None:
        model = load_model(LLAMA_TINY)
        targets = target_matrices(model)
        want = []
        for i in range(2):
            p = f"model.layers.{i}"
            want += [
                (f"{p}.self_attn.q_proj.weight", i, "q", "attention", 64, 64),
                (f"{p}.self_attn.k_proj.weight", i, "k", "attention", 64, 32),
                (f"{p}.self_attn.v_proj.weight", i, "v", "attention", 64, 32),
                (f"{p}.self_attn.o_proj.weight", i, "o", "attention", 64, 64),
                (f"{p}.mlp.gate_proj.weight", i, "gate", "mlp", 64, 128),
                (f"{p}.mlp.up_proj.weight", i, "up", "mlp", 64, 128),
                (f"{p}.mlp.down_proj.weight", i, "down", "mlp", 128, 64),
            ]
        self.assertEqual([(t.name, t.layer, t.role, t.group, t.d_in, t.d_out) for t in targets], want)
        self.assertTrue(all(t.orientation == "out_in" and t.shape == (t.d_out, t.d_in) for t in targets))
        q = targets[0]
        self.assertEqual(q.module_name, "model.layers.0.self_attn.q_proj")
        self.assertIs(q.parameter, model.model.layers[0].self_attn.q_proj.weight)
        # Unpacks as (name, parameter), which MethodContext.named_targets relies on.
        ctx = MethodContext(model=model, manifest=None, config={}, task=0, seed=0, device=torch.device("cpu"))  # type: ignore[arg-type]
        self.assertEqual([n for n, _ in ctx.named_targets()], [t.name for t in targets])
        # An untied head and the embedding as extra matrices (targets 'head', 'embeddings').
        extra = head_and_embedding_matrices(model)
        self.assertEqual([(t.name, t.layer, t.role, t.shape) for t in extra],
                         [("model.embed_tokens.weight", -1, "embedding", (512, 64)), ("lm_head.weight", -1, "head", (512, 64))])

    def test_gpt2_conv1d_targets_are_stored_in_out_and_viewed_out_in(self) -> None:
        model = load_model(GPT2_TINY)
        targets = target_matrices(model)
        want = []
        for i in range(2):
            p = f"transformer.h.{i}"
            want += [
                (f"{p}.attn.c_attn.weight", i, "qkv", "attention", (64, 192)),
                (f"{p}.attn.c_proj.weight", i, "o", "attention", (64, 64)),
                (f"{p}.mlp.c_fc.weight", i, "fc", "mlp", (64, 256)),
                (f"{p}.mlp.c_proj.weight", i, "proj", "mlp", (256, 64)),
            ]
        self.assertEqual([(t.name, t.layer, t.role, t.group, t.shape) for t in targets], want)
        c_attn = targets[0]
        self.assertEqual((c_attn.orientation, c_attn.d_in, c_attn.d_out, c_attn.min_dim, c_attn.max_dim), ("in_out", 64, 192, 64, 192))
        self.assertEqual(c_attn.bias, "transformer.h.0.attn.c_attn.bias")
        # The [out, in] view is the map x -> W x: Conv1D's forward is x W + b.
        x = torch.randn(3, 64)
        module = model.transformer.h[0].attn.c_attn
        with torch.no_grad():
            self.assertTrue(torch.allclose(module(x), x @ c_attn.as_out_in().T + module.bias, atol=1e-6))
        # The head is tied to wte: only the embedding is an extra matrix.
        self.assertEqual([t.name for t in head_and_embedding_matrices(model)], ["transformer.wte.weight"])
        groups = parameter_groups(model)
        self.assertEqual(groups["transformer.wpe.weight"], "position")
        self.assertEqual(groups["transformer.h.0.ln_1.bias"], "norm")
        self.assertEqual(groups["transformer.h.1.mlp.c_fc.bias"], "bias")
        self.assertEqual(groups["transformer.ln_f.weight"], "norm")
        self.assertEqual(groups["transformer.h.0.attn.c_attn.weight"], "attention")

    def test_t5_encoder_then_decoder_blocks_with_cross_attention_in_its_own_group(self) -> None:
        model = load_model(T5_TINY)
        targets = target_matrices(model)
        self.assertEqual(len(targets), 32)
        enc0 = [(t.name, t.layer, t.role, t.group) for t in targets if t.layer == 0]
        self.assertEqual(enc0, [
            ("encoder.block.0.layer.0.SelfAttention.q.weight", 0, "q", "attention"),
            ("encoder.block.0.layer.0.SelfAttention.k.weight", 0, "k", "attention"),
            ("encoder.block.0.layer.0.SelfAttention.v.weight", 0, "v", "attention"),
            ("encoder.block.0.layer.0.SelfAttention.o.weight", 0, "o", "attention"),
            ("encoder.block.0.layer.1.DenseReluDense.wi.weight", 0, "fc", "mlp"),
            ("encoder.block.0.layer.1.DenseReluDense.wo.weight", 0, "proj", "mlp"),
        ])
        dec1 = [(t.name.replace("decoder.block.1.layer.", ""), t.layer, t.role, t.group) for t in targets if t.layer == 3]
        self.assertEqual(dec1, [
            ("0.SelfAttention.q.weight", 3, "q", "attention"),
            ("0.SelfAttention.k.weight", 3, "k", "attention"),
            ("0.SelfAttention.v.weight", 3, "v", "attention"),
            ("0.SelfAttention.o.weight", 3, "o", "attention"),
            ("1.EncDecAttention.q.weight", 3, "q", "cross-attention"),
            ("1.EncDecAttention.k.weight", 3, "k", "cross-attention"),
            ("1.EncDecAttention.v.weight", 3, "v", "cross-attention"),
            ("1.EncDecAttention.o.weight", 3, "o", "cross-attention"),
            ("2.DenseReluDense.wi.weight", 3, "fc", "mlp"),
            ("2.DenseReluDense.wo.weight", 3, "proj", "mlp"),
        ])
        groups = parameter_groups(model)
        self.assertEqual(groups["shared.weight"], "embedding")
        self.assertEqual(groups["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"], "position")
        self.assertEqual(groups["decoder.final_layer_norm.weight"], "norm")
        self.assertNotIn("lm_head.weight", groups, "the head is tied to shared")


if __name__ == "__main__":
    unittest.main()
