"""Online EWC: the diagonal Fisher against per-example gradients of log p(answer | prompt) computed here from the
logits, its accumulation over tasks, the anchor, and the penalty's value and gradient against hand computations
(tolerances as test/unit/methods-ewc.test.ts)."""
from __future__ import annotations

import unittest

import torch

from sculpt_torch.methods.ewc import Ewc, diagonal_fisher

from tests.test_methods_support import (
    ASSET_LLAMA,
    T5_TINY,
    causal_batch,
    context,
    ewc_config,
    load_model,
    run_task,
    seq2seq_batch,
    synthetic_task,
)


def neg_log_likelihood(model, batch) -> torch.Tensor:
    """-log p(answer | prompt) of a one-example causal batch, straight from the logits."""
    logp = torch.log_softmax(model(input_ids=batch.input_ids).logits[0, :-1].double(), dim=-1)
    labels = batch.labels[0, 1:].tolist()
    return -sum(logp[t, y] for t, y in enumerate(labels) if y != -100)


def reference_fisher(model, batches) -> dict[str, torch.Tensor]:
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    acc = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in zip(names, params)}
    for b in batches:
        grads = torch.autograd.grad(neg_log_likelihood(model, b), params, allow_unused=True)
        for n, g in zip(names, grads):
            if g is not None:
                acc[n] += g.double() ** 2 / len(batches)
    return acc


def adamw(params):
    return torch.optim.AdamW(params, lr=0.01, weight_decay=0.0)


class EwcTest(unittest.TestCase):
    def setUp(self) -> None:
        self.model = load_model(ASSET_LLAMA)
        self.tasks = [synthetic_task(s, 16, self.model.config.vocab_size) for s in range(2)]

    def batches(self, task: int) -> list:
        rows = self.tasks[task]
        return [causal_batch(rows[i : i + 8]) for i in range(0, 16, 8)]

    def test_the_fisher_is_the_mean_of_squared_per_example_gradients_accumulated_as_gamma_f_plus_f(self) -> None:
        cfg = ewc_config(fisherSamples=6, gamma=0.5)
        m = Ewc(cfg, "methods[0]")
        ctx, _ = context(self.model, cfg, self.tasks)
        m.setup(ctx)
        run_task(self.model, m, ctx, 0, self.batches(0), adamw, 0.01)
        calibration = ctx.calibration_batches(0, 6, 1)
        self.assertEqual(len(calibration), 6)
        want0 = reference_fisher(self.model, calibration)
        F0 = {n: f.clone() for n, f in m.fisher.items()}
        self.assertEqual(set(F0), {n for n, _ in self.model.named_parameters()})
        for n, f in F0.items():
            scale = float(want0[n].abs().max())
            self.assertGreater(scale, 0, f"{n} has a non-zero Fisher")
            self.assertLessEqual(float((f.double() - want0[n]).abs().max()), 1e-4 * scale, n)
        # θ* is the weights at the end of the task.
        for n, p in self.model.named_parameters():
            self.assertTrue(torch.equal(m.anchor[n], p), n)
        # Task 1: F_acc = 0.5 F_0 + F_1.
        run_task(self.model, m, ctx, 1, self.batches(1), adamw, 0.01)
        F1 = diagonal_fisher(self.model, ctx.calibration_batches(1, 6, 1), dict(self.model.named_parameters()))
        for n, f in m.fisher.items():
            want = 0.5 * F0[n] + F1[n]
            self.assertLessEqual(float((f - want).abs().max()), 1e-5 * float(want.abs().max()), n)
        # The Fisher pass leaves the gradients and every requires_grad as it found them.
        params = dict(self.model.named_parameters())
        next(iter(params.values())).requires_grad_(False)
        grads = {n: p.grad for n, p in params.items()}
        flags = {n: p.requires_grad for n, p in params.items()}
        F2 = diagonal_fisher(self.model, ctx.calibration_batches(1, 2, 1), params)
        self.assertTrue(all(p.grad is grads[n] and p.requires_grad == flags[n] for n, p in params.items()))
        self.assertGreater(float(F2[next(iter(params))].abs().max()), 0, "a frozen parameter still gets its Fisher")

    def test_the_penalty_is_zero_at_the_anchor_and_its_gradient_is_lambda_f_times_the_distance(self) -> None:
        cfg = ewc_config(fisherSamples=4, **{"lambda": 250})
        m = Ewc(cfg, "methods[0]")
        ctx, _ = context(self.model, cfg, self.tasks)
        m.setup(ctx)
        self.assertIsNone(m.extra_loss(self.batches(0)[0], ctx), "no term before the first boundary")
        run_task(self.model, m, ctx, 0, self.batches(0)[:1], lambda ps: torch.optim.SGD(ps, lr=0.01), 0.01)
        total, terms = m.extra_loss(self.batches(0)[0], ctx)
        self.assertEqual(float(total.detach()), 0.0)
        self.assertEqual(list(terms), ["ewc"])
        g = torch.Generator().manual_seed(11)
        with torch.no_grad():
            for p in self.model.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
        params = dict(self.model.named_parameters())
        total, _ = m.extra_loss(self.batches(0)[0], ctx)
        grads = torch.autograd.grad(total, list(params.values()))
        hand = 0.0
        for (n, p), grad in zip(params.items(), grads):
            want = m.fisher[n] * (p.detach() - m.anchor[n]) * 250
            scale = max(float(want.abs().max()), 1e-12)
            self.assertLessEqual(float((grad - want).abs().max()), 1e-5 * scale, n)
            hand += float((125 * m.fisher[n].double() * (p.detach().double() - m.anchor[n].double()) ** 2).sum())
        self.assertGreater(float(total.detach()), 0)
        self.assertLessEqual(abs(float(total.detach()) - hand), 1e-4 * hand)

    def test_state_round_trip_and_the_seq2seq_fisher(self) -> None:
        cfg = ewc_config(fisherSamples=3, gamma=0.9)
        m = Ewc(cfg, "methods[0]")
        ctx, _ = context(self.model, cfg, self.tasks)
        m.setup(ctx)
        run_task(self.model, m, ctx, 0, self.batches(0)[:1], adamw, 0.01)
        with torch.no_grad():
            next(self.model.parameters()).add_(0.01)
        state = m.state_dict()
        names = [n for n, _ in self.model.named_parameters()]
        self.assertEqual(set(state["tensors"]), {f"F/{n}" for n in names} | {f"theta/{n}" for n in names})
        other = Ewc(cfg, "methods[0]")
        other.load_state_dict(state, ctx)
        self.assertEqual(other.boundaries, 1)
        b = self.batches(0)[0]
        self.assertEqual(float(other.extra_loss(b, ctx)[0].detach()), float(m.extra_loss(b, ctx)[0].detach()))
        # Encoder-decoder: per example, the Fisher is the squared gradient of the summed answer loss.
        t5 = load_model(T5_TINY)
        example = seq2seq_batch([([5, 9, 13, 40, 1], [17, 23, 1])])
        F = diagonal_fisher(t5, [example], dict(t5.named_parameters()))
        loss = t5(input_ids=example.input_ids, attention_mask=example.attention_mask, labels=example.labels).loss * example.labelled
        names = [n for n, _ in t5.named_parameters()]
        grads = torch.autograd.grad(loss, [p for _, p in t5.named_parameters()], allow_unused=True)
        for n, grad in zip(names, grads):
            want = torch.zeros_like(F[n]) if grad is None else grad ** 2
            self.assertLessEqual(float((F[n] - want).abs().max()), 1e-5 * max(float(want.abs().max()), 1e-12), n)


if __name__ == "__main__":
    unittest.main()
