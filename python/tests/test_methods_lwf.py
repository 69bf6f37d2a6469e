"""LwF: the distillation term by hand on a tiny example (the numbers of test/unit/methods-lwf.test.ts), zero when
teacher and student agree, positive once the student moved, and taken at the answer positions only, for a
causal and an encoder-decoder model (against a frozen copy of the model as the teacher)."""
from __future__ import annotations

import copy
import math
import unittest

import torch

from sculpt_torch.methods.lwf import Lwf, answer_positions, distillation_loss

from tests.test_methods_support import (
    ASSET_LLAMA,
    T5_TINY,
    causal_batch,
    context,
    load_model,
    lwf_config,
    run_task,
    seq2seq_batch,
    synthetic_task,
    train_step,
)


def softmax(z: list[float], T: float) -> list[float]:
    m = max(x / T for x in z)
    e = [math.exp(x / T - m) for x in z]
    s = sum(e)
    return [x / s for x in e]


def kl_rows(z_old: torch.Tensor, z_new: torch.Tensor, T: float) -> float:
    """Σ over rows of KL(softmax(z_old / T) ‖ softmax(z_new / T)), in float64 from the definition."""
    total = 0.0
    for a, b in zip(z_old.double().tolist(), z_new.double().tolist()):
        p, q = softmax(a, T), softmax(b, T)
        total += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    return total


class DistillationLossTest(unittest.TestCase):
    def test_t_squared_mean_over_answer_positions_of_kl_by_hand(self) -> None:
        z_old = [[[1, 2, 0.5, -1], [0, 0, 3, 1], [2, -2, 0, 0.3]]]
        z_new = [[[0.2, 1, 1.5, -0.5], [1, -1, 2, 0], [0, 0, 0, 0]]]
        labels = torch.tensor([[-100, 3, 1]])
        mask = answer_positions(labels)
        self.assertEqual(mask.tolist(), [[1, 1, 0]], "positions 0 and 1 predict the answer tokens 1 and 2")
        T = 2
        want = 0.0
        for p in (0, 1):
            po, pn = softmax(z_old[0][p], T), softmax(z_new[0][p], T)
            want += sum(q * math.log(q / pn[i]) for i, q in enumerate(po))
        want = want / 2 * T * T
        got = float(distillation_loss(torch.tensor(z_old), torch.tensor(z_new), mask, T))
        self.assertLessEqual(abs(got - want), 1e-6 * want, f"{got} vs {want}")
        self.assertEqual(float(distillation_loss(torch.tensor(z_old), torch.tensor(z_old), mask, T)), 0.0)
        none = distillation_loss(torch.tensor(z_old), torch.tensor(z_new), torch.zeros(1, 3), T)
        self.assertEqual(float(none), 0.0, "no answer position, no loss (not NaN)")


class LwfTest(unittest.TestCase):
    def test_zero_while_the_student_is_the_teacher_positive_once_it_moved_and_only_at_answer_positions(self) -> None:
        model = load_model(ASSET_LLAMA)
        tasks = [synthetic_task(s, 16, model.config.vocab_size) for s in range(2)]
        cfg = lwf_config(alpha=0.5)
        m = Lwf(cfg, "methods[0]")
        ctx, _ = context(model, cfg, tasks)
        m.setup(ctx)
        batches = [[causal_batch(t[i : i + 8]) for i in range(0, 16, 8)] for t in tasks]
        run_task(model, m, ctx, 0, batches[0], lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.0), 0.01)
        self.assertFalse(m.has_teacher, "no teacher during the first task")
        self.assertIsNone(m.extra_loss(batches[0][0], ctx))
        ctx.task = 1
        m.before_task(ctx)
        teacher = copy.deepcopy(model)
        self.assertTrue(m.has_teacher)
        x = batches[1][0]
        total, terms = m.extra_loss(x, ctx)
        self.assertEqual(list(terms), ["distillation"])
        self.assertLessEqual(abs(float(total.detach())), 1e-7)
        params = m.trainable(ctx)
        opt = torch.optim.AdamW(list(params.values()), lr=0.01, weight_decay=0.0)
        for b in batches[1]:
            train_step(model, m, ctx, b, params, opt, 0.01)
        moved = float(m.extra_loss(x, ctx)[0].detach())
        self.assertGreater(moved, 0)
        # By hand: the frozen copy's and the student's logits at the positions predicting answer tokens.
        with torch.no_grad():
            keep = x.labels[:, 1:] != -100
            z_old = teacher(input_ids=x.input_ids, attention_mask=x.attention_mask).logits[:, :-1][keep]
            z_new = model(input_ids=x.input_ids, attention_mask=x.attention_mask).logits[:, :-1][keep]
        want = 0.5 * 4 * kl_rows(z_old, z_new, 2) / int(keep.sum())
        self.assertLessEqual(abs(moved - want), 1e-5 * want, f"{moved} vs {want}")
        # The teacher survives a checkpoint.
        other = Lwf(cfg, "methods[0]")
        other.load_state_dict(m.state_dict(), ctx)
        self.assertEqual(float(other.extra_loss(x, ctx)[0].detach()), moved)

    def test_encoder_decoder_positions_are_the_labelled_decoder_positions(self) -> None:
        model = load_model(T5_TINY)
        cfg = lwf_config(temperature=3.0)
        m = Lwf(cfg, "methods[0]")
        ctx, _ = context(model, cfg, [[], []], seq2seq=True)
        ctx.task = 1
        m.before_task(ctx)
        teacher = copy.deepcopy(model)
        g = torch.Generator().manual_seed(2)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
        x = seq2seq_batch([([5, 9, 13, 1], [17, 23, 1]), ([40, 41, 1], [7, 1])])
        got = float(m.extra_loss(x, ctx)[0].detach())
        with torch.no_grad():
            keep = x.labels != -100
            z_old = teacher(input_ids=x.input_ids, attention_mask=x.attention_mask, labels=x.labels).logits[keep]
            z_new = model(input_ids=x.input_ids, attention_mask=x.attention_mask, labels=x.labels).logits[keep]
        want = 9 * kl_rows(z_old, z_new, 3.0) / 5
        self.assertGreater(want, 0)
        self.assertLessEqual(abs(got - want), 1e-5 * want, f"{got} vs {want}")


if __name__ == "__main__":
    unittest.main()
