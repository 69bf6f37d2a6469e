"""O-LoRA: the orthogonality term by hand, frozen base and earlier adapters, plain LoRA by hand (LLaMA and GPT-2's
fused c_attn), T5's cross-attention, the TypeScript engine's initial A, option errors with their JSON path, and a
checkpoint round trip (as test/unit/methods-olora.test.ts)."""
from __future__ import annotations

import unittest
from unittest import mock

import numpy as np
import torch

from sculpt_torch.methods import olora as olora_module
from sculpt_torch.methods.olora import OLora, OLoraProjection, method_seed, pair_key, resolve_slots
from sculpt_torch.targets import ConfigError, target_matrices

from tests.test_methods_support import (
    ASSET_LLAMA,
    GPT2_TINY,
    T5_TINY,
    causal_batch,
    context,
    load_model,
    model_loss,
    olora_config,
    run_task,
    synthetic_task,
    train_step,
)


def adamw(params):
    return torch.optim.AdamW(params, lr=0.01, weight_decay=0.01)


def batches_of(model, seed: int) -> list:
    rows = synthetic_task(seed, 16, model.config.vocab_size)
    return [causal_batch(rows[i : i + 8]) for i in range(0, 16, 8)]


def at_second_task(cfg: dict):
    """The asset LLaMA with O-LoRA set up for two tasks, task 0 trained (two steps), task 1 started."""
    model = load_model(ASSET_LLAMA)
    m = OLora(cfg, "methods[0]")
    ctx, _ = context(model, cfg, [[], []])
    m.setup(ctx)
    run_task(model, m, ctx, 0, batches_of(model, 0), adamw, 0.01)
    ctx.task = 1
    m.before_task(ctx)
    return model, m, ctx


class OLoraTest(unittest.TestCase):
    def test_the_orthogonality_term_is_lambda1_times_squared_products_with_earlier_tasks(self) -> None:
        model = load_model(ASSET_LLAMA)
        cfg = olora_config(r=2, lambda1=0.3, lr=0.01)
        m = OLora(cfg, "methods[0]")
        ctx, _ = context(model, cfg, [[], [], []])
        m.setup(ctx)
        # Three tasks of known A's (B zero) through a checkpoint, the current task being the third.
        As: list[list[np.ndarray]] = [[], [], []]
        tensors = {}
        for task in range(3):
            for i, s in enumerate(m.slots):
                j = np.arange(2 * s.d_in)
                a = np.sin(1 + task * 7 + i * 3 + j * 0.37) * np.where(j % 3 == 0, -1, 1)
                As[task].append(a.reshape(2, s.d_in))
                tensors[pair_key(task, s, "A")] = torch.tensor(a, dtype=torch.float32).reshape(2, s.d_in)
                tensors[pair_key(task, s, "B")] = torch.zeros(s.d_out, 2)
        m.load_state_dict({"tensors": tensors, "json": {"tasks": 3, "r": 2, "slots": [s.key for s in m.slots]}}, ctx)
        want = 0.0
        for i in range(len(m.slots)):
            for earlier in (0, 1):
                want += float(((As[earlier][i].astype(np.float32).astype(np.float64) @ As[2][i].astype(np.float32).astype(np.float64).T) ** 2).sum())
        want *= 0.3
        total, terms = m.extra_loss(None, ctx)
        total = total.detach()
        self.assertLessEqual(abs(float(total) - want), 1e-5 * want, f"orthogonality {float(total)} vs hand {want}")
        self.assertEqual(list(terms), ["orthogonality"])
        # λ2 adds the squared norms of the current pair.
        m.lambda2 = 0.1
        _, terms = m.extra_loss(None, ctx)
        l2 = 0.1 * sum(float((A2.astype(np.float32).astype(np.float64) ** 2).sum()) for A2 in As[2])
        self.assertLessEqual(abs(float(terms["l2"]) - l2), 1e-5 * l2)

    def test_a_later_task_trains_only_its_own_pair_and_merged_is_w_plus_scale_sum_b_a(self) -> None:
        model = load_model(ASSET_LLAMA)
        cfg = olora_config(lr=0.01)
        m = OLora(cfg, "methods[0]")
        ctx, _ = context(model, cfg, [[], []])
        m.setup(ctx)
        base = {n: p.detach().clone() for n, p in model.named_parameters() if ".olora." not in n}
        run_task(model, m, ctx, 0, batches_of(model, 0), adamw, 0.01)
        first = {k: v.clone() for k, v in m.state_dict()["tensors"].items()}
        self.assertTrue(any(k.endswith(".B") and bool(v.abs().sum() > 0) for k, v in first.items()), "task 0 trained its B")
        losses = run_task(model, m, ctx, 1, batches_of(model, 1), adamw, 0.01)
        self.assertTrue(all(np.isfinite(losses)))
        after = m.state_dict()["tensors"]
        for k, v in first.items():
            self.assertTrue(torch.equal(after[k], v), f"{k} unchanged by task 1")
        self.assertTrue(any(k.startswith("olora.1.") and k.endswith(".B") and bool(v.abs().sum() > 0) for k, v in after.items()))
        for n, p in model.named_parameters():
            if n in base:
                self.assertTrue(torch.equal(p, base[n]), f"{n} is frozen")
        self.assertTrue(all(k.startswith("olora.1.") for k in m.trainable(ctx)))
        self.assertEqual({n for n, p in model.named_parameters() if p.requires_grad},
                         {n for n, _ in model.named_parameters() if n.endswith(("olora.A_1", "olora.B_1"))})
        # merged() = W + scale Σ_i B_i A_i, by hand on one projection.
        s = m.slots[0]
        hand = base[s.weight].double().clone()
        for i in (0, 1):
            hand += m.scale * after[pair_key(i, s, "B")].double() @ after[pair_key(i, s, "A")].double()
        self.assertLessEqual(float((m.merged()[s.weight].double() - hand).abs().max()), 1e-5)

    def test_with_lambda1_zero_and_one_task_the_loss_is_plain_lora(self) -> None:
        model = load_model(ASSET_LLAMA)
        cfg = olora_config(lambda1=0, r=4, alpha=8, lr=0.01)
        m = OLora(cfg, "methods[0]")
        ctx, _ = context(model, cfg, [[]])
        m.setup(ctx)
        m.before_task(ctx)
        params = m.trainable(ctx)
        opt = adamw(list(params.values()))
        for b in batches_of(model, 0):
            train_step(model, m, ctx, b, params, opt, 0.01)
        x = batches_of(model, 3)[0]
        merged = m.merged()
        self.assertEqual(m.scale, 2)
        # The model without adapters, with the hand-merged weights in place of the adapted ones.
        plain = load_model(ASSET_LLAMA)
        with torch.no_grad():
            for name, W in merged.items():
                plain.get_parameter(name).copy_(W)
        loss, terms = train_step(model, m, ctx, x, params, opt, 0.0)
        self.assertEqual(terms, {})
        with torch.no_grad():
            want = float(model_loss(plain, x))
        self.assertLessEqual(abs(loss - want), 1e-6 * abs(want), f"loss {loss} vs hand {want}")
        # Inactive adapters give the base model back exactly.
        for w in m.wrappers.values():
            w.active = -1
        with torch.no_grad():
            self.assertEqual(float(model_loss(model, x)), float(model_loss(load_model(ASSET_LLAMA), x)))

    def test_gpt2_fused_c_attn_adapts_q_and_v_blocks_and_leaves_k(self) -> None:
        model = load_model(GPT2_TINY)
        cfg = olora_config(r=2, alpha=6, lr=0.01)
        m = OLora(cfg, "methods[0]")
        ctx, _ = context(model, cfg, [[], []])
        m.setup(ctx)
        m.before_task(ctx)
        self.assertEqual([s.key for s in m.slots], [
            "transformer.h.0.attn.c_attn.q", "transformer.h.0.attn.c_attn.v",
            "transformer.h.1.attn.c_attn.q", "transformer.h.1.attn.c_attn.v",
        ])
        tr = m.trainable(ctx)
        g = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for k, v in tr.items():
                if k.endswith(".B"):
                    v.copy_(torch.randn(v.shape, generator=g) * 0.1)
        name = "transformer.h.0.attn.c_attn.weight"
        W = model.get_parameter(name).detach().double()
        eff = m.merged()[name].double()
        d = 64
        hand = W.clone()
        for block, role in ((0, "q"), (2, "v")):
            A = tr[f"olora.0.transformer.h.0.attn.c_attn.{role}.A"].detach().double()
            B = tr[f"olora.0.transformer.h.0.attn.c_attn.{role}.B"].detach().double()
            hand[:, block * d : (block + 1) * d] += 3 * (A.T @ B.T)  # Conv1D: the update is (B A)ᵀ
        self.assertLessEqual(float((eff - hand).abs().max()), 1e-5)
        self.assertTrue(torch.equal(eff[:, d : 2 * d], W[:, d : 2 * d]), "k's block is the base weight")
        self.assertGreater(float((eff - W).abs().max()), 1e-3)
        # The module computes x W_eff + b.
        module = model.transformer.h[0].attn.c_attn
        self.assertIsInstance(module, OLoraProjection)
        x = torch.randn(5, d, generator=g)
        with torch.no_grad():
            self.assertLessEqual(float((module(x).double() - (x.double() @ eff + module.bias.double())).abs().max()), 1e-5)
        self.assertEqual([s.weight for s in resolve_slots(model, ["o"], "m")],
                         ["transformer.h.0.attn.c_proj.weight", "transformer.h.1.attn.c_proj.weight"])
        # The initial A of every task is the TypeScript engine's (values from src/data/rng.ts under node, seed 0).
        self.assertEqual(method_seed(0, "o-lora"), 3260899818)
        A1 = m.wrappers[name].pair(1, m.slots[0])[0]
        self.assertEqual(A1.flatten()[:6].tolist(), [-0.0675133615732193, -0.07274364680051804, 0.09397576004266739,
                                                     -0.06335218995809555, -0.06521341949701309, -0.10701504349708557])
        self.assertTrue(torch.equal(A1, m.initial_pair(m.slots[0], 1)[0]))
        # The model's keys for the base weights are unchanged; the pairs sit under each module's `olora`.
        keys = set(model.state_dict())
        self.assertIn(name, keys)
        self.assertIn("transformer.h.0.attn.c_attn.olora.A_1_q", keys)

    def test_t5_q_and_v_include_the_cross_attention_projections(self) -> None:
        model = load_model(T5_TINY)
        cfg = olora_config(r=4, lr=0.01)
        m = OLora(cfg, "methods[0]")
        ctx, _ = context(model, cfg, [[]], seq2seq=True)
        m.setup(ctx)
        self.assertEqual(len(m.slots), 12)
        self.assertEqual(sum("EncDecAttention" in s.key for s in m.slots), 4)
        m.before_task(ctx)
        params = m.trainable(ctx)
        from tests.test_methods_support import seq2seq_batch

        b = seq2seq_batch([([5, 9, 13, 1], [17, 23, 1]), ([40, 41, 1], [7, 1])])
        opt = torch.optim.AdamW(list(params.values()), lr=0.05, weight_decay=0.0)
        first = train_step(model, m, ctx, b, params, opt, 0.05)[0]
        for _ in range(4):
            last = train_step(model, m, ctx, b, params, opt, 0.05)[0]
        self.assertLess(last, first)

    def test_bad_options_fail_at_setup_with_the_option_path_and_warnings(self) -> None:
        model = load_model(ASSET_LLAMA)

        def fails(over: dict, path: str, message: str, patch_targets=None) -> None:
            cfg = olora_config(lr=0.01, **over)
            ctx, _ = context(model, cfg)
            with self.assertRaises(ConfigError) as e:
                if patch_targets is None:
                    OLora(cfg, "methods[3]").setup(ctx)
                else:
                    with mock.patch.object(olora_module, "target_matrices", patch_targets):
                        OLora(cfg, "methods[3]").setup(ctx)
            self.assertEqual(e.exception.issues[0]["path"], path)
            self.assertRegex(str(e.exception), message)

        fails({"modules": []}, "methods[3].modules", r"methods\[3\]\.modules: is empty")
        fails({"modules": ["q", "v", "q"]}, "methods[3].modules", "names 'q' twice")
        fails({"r": 20}, "methods[3].r", r"rank 20 exceeds min\(d_out, d_in\) = 16 of model\.layers\.0\.self_attn\.v_proj")
        no_o = lambda mdl: [t for t in target_matrices(mdl) if t.role != "o"]  # noqa: E731
        fails({"modules": ["q", "o"]}, "methods[3].modules", r"'o' is not an attention projection of this llama model \(it has q, k, v, mlp\)", no_o)
        attention_only = lambda mdl: [t for t in target_matrices(mdl) if t.group != "mlp"]  # noqa: E731
        fails({"modules": ["q", "mlp"]}, "methods[3].modules",
              r"this llama model has no MLP projection to adapt \(it has q, k, v, o\)", attention_only)
        self.assertFalse(any(isinstance(x, OLoraProjection) for x in model.modules()), "a failed setup changes nothing")
        # Warnings: no lr of its own, and more tasks x r than the input width.
        cfg = {k: v for k, v in olora_config().items()}
        ctx, rec = context(model, cfg, [[]] * 5, method_index=1)
        OLora(cfg).setup(ctx)
        codes = {code: msg for msg, code in rec.warnings}
        self.assertRegex(codes["o-lora-lr"], r"set methods\[1\]\.lr")
        self.assertRegex(codes["o-lora-capacity"], "5 tasks x rank 8 exceed the input width 32")

    def test_a_checkpoint_round_trip_and_a_mismatched_task_are_caught(self) -> None:
        cfg = olora_config(lr=0.01)
        model, m, ctx = at_second_task(cfg)
        state = m.state_dict()
        # Two batches trained task 0: two steps, which seed the dropout masks of a run that has them.
        self.assertEqual(state["json"], {"tasks": 2, "r": 8, "slots": [s.key for s in m.slots], "steps": 2})
        x = batches_of(model, 5)[0]
        with torch.no_grad():
            want = float(model_loss(model, x))
        fresh = load_model(ASSET_LLAMA)
        m2 = OLora(cfg, "methods[0]")
        ctx2, _ = context(fresh, cfg, [[], []])
        m2.setup(ctx2)
        m2.load_state_dict(state, ctx2)
        self.assertEqual(m2.steps, 2)
        with torch.no_grad():
            self.assertEqual(float(model_loss(fresh, x)), want)
        self.assertEqual(set(m2.trainable(ctx2)), set(m.trainable(ctx)))
        ctx2.task = 1
        with self.assertRaisesRegex(ValueError, "asked to start task 1 with adapters for 2 tasks"):
            m2.before_task(ctx2)
        with self.assertRaisesRegex(ValueError, "rank 8 adapters on 4 projections, the config asks for rank 4 on 4"):
            other = OLora(olora_config(r=4, lr=0.01), "methods[0]")
            other.setup(context(load_model(ASSET_LLAMA), cfg, [[], []])[0])
            other.load_state_dict(state, ctx2)

    def test_dropout_masks_every_pair_input_while_training_and_none_in_evaluation(self) -> None:
        p = 0.25
        model, m, ctx = at_second_task(olora_config(lr=0.01, dropout=p))
        with torch.no_grad():
            for name, param in model.named_parameters():
                if ".olora.B_" in name:
                    param.copy_(torch.randn_like(param) * 0.1)
        s = m.slots[0]
        w = m.wrappers[s.weight]
        x = torch.randn(3, 5, s.d_in)
        mask = m.dropout_mask(s.weight, x)
        keep = np.float32(1 / (1 - p))
        values = set(np.unique(mask.numpy()).tolist())
        self.assertEqual(values, {0.0, float(keep)})
        kept = float((mask != 0).float().mean())
        self.assertLess(abs(kept - (1 - p)), 5 * np.sqrt(p * (1 - p) / mask.numel()), f"kept fraction {kept}")
        # With gradients (training): both tasks' pairs on x times the mask; without (evaluation): on x.
        def adapted(inp: torch.Tensor) -> torch.Tensor:
            d = torch.zeros(*inp.shape[:-1], s.width)
            for t in (0, 1):
                A, B = w.pair(t, s)
                d[..., s.offset : s.offset + s.d_out] += (inp @ A.t()) @ B.t() * m.scale
            return w.original(x) + d
        with torch.no_grad():
            want_train, want_eval = adapted(x * mask), adapted(x)
            got_eval = w(x)
        got_train = w(x).detach()
        self.assertLessEqual(float((got_train - want_train).abs().max()), 1e-5)
        self.assertLessEqual(float((got_eval - want_eval).abs().max()), 1e-5)
        self.assertGreater(float((got_train - got_eval).abs().max()), 1e-4, "the mask changes the training output")
        # The same step draws the same mask, the next step another; the step count travels in the state.
        self.assertTrue(torch.equal(m.dropout_mask(s.weight, x), mask))
        m.after_step({}, ctx)
        self.assertFalse(torch.equal(m.dropout_mask(s.weight, x), mask))
        self.assertEqual(m.state_dict()["json"]["steps"], m.steps)


if __name__ == "__main__":
    unittest.main()


class OLoraMlpTest(unittest.TestCase):
    def test_mlp_adapts_every_projection_of_every_mlp_block(self):
        from sculpt_torch.methods.olora import resolve_slots

        model = load_model(ASSET_LLAMA)
        mlp = [t.name for t in target_matrices(model) if t.group == "mlp"]
        self.assertEqual(len(mlp) % 3, 0, "gate, up and down per layer")
        slots = resolve_slots(model, ["q", "mlp"], "methods[0].modules")
        self.assertEqual(sorted(s.weight for s in slots if s.target.group == "mlp"), sorted(mlp))
        self.assertTrue(all(s.d_out == s.target.d_out and s.offset == 0 for s in slots if s.target.group == "mlp"),
                        "an MLP projection is adapted whole")
