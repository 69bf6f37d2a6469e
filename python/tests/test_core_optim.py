"""The optimizers and clipping of src/engine/optim.ts, checked against the formulas computed by hand."""
import math
import unittest

import torch

from sculpt_torch.optim import Optimizer, clip_by_global_norm



def adam_by_hand(p, grads, lr, wd=0.0, b1=0.9, b2=0.999, eps=1e-8):
    """optim.ts's update on Python floats (double), step by step."""
    m = v = 0.0
    for t, g in enumerate(grads, 1):
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - (lr / (1 - b1**t)) * m / (math.sqrt(v / (1 - b2**t)) + eps)
    return p


class OptimizerTest(unittest.TestCase):
    def run_steps(self, name, p0, grads, lrs, wd=0.0):
        p = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float32))
        opt = Optimizer(name, weight_decay=wd)
        for g, lr in zip(grads, lrs):
            opt.apply({"w": torch.tensor(g, dtype=torch.float32)}, {"w": p}, lr)
        return p.detach().tolist(), opt

    def test_adamw_matches_the_formula(self):
        p0 = [0.5, -1.25, 2.0]
        grads = [[0.1, -0.2, 0.3], [0.05, 0.4, -0.3], [-0.2, 0.1, 0.0]]
        got, opt = self.run_steps("adamw", p0, grads, [0.01, 0.02, 0.005], wd=0.1)
        self.assertEqual(opt.step, 3)
        for i in range(3):
            # Every step's own lr, also in the decay: p (1 - lr_t wd).
            p = p0[i]
            m = v = 0.0
            for t, (g, lr) in enumerate(zip([gs[i] for gs in grads], [0.01, 0.02, 0.005]), 1):
                p = p * (1 - lr * 0.1)
                m = 0.9 * m + 0.1 * g
                v = 0.999 * v + 0.001 * g * g
                p = p - (lr / (1 - 0.9**t)) * m / (math.sqrt(v / (1 - 0.999**t)) + 1e-8)
            self.assertAlmostEqual(got[i], p, delta=1e-6)

    def test_first_adam_step_is_lr_times_sign(self):
        got, _ = self.run_steps("adamw", [1.0, 1.0], [[0.3, -2.0]], [0.1])
        self.assertAlmostEqual(got[0], 0.9, delta=1e-6)
        self.assertAlmostEqual(got[1], 1.1, delta=1e-6)

    def test_adam_ignores_weight_decay(self):
        got, _ = self.run_steps("adam", [0.5], [[0.1], [0.2]], [0.01, 0.01], wd=0.5)
        self.assertAlmostEqual(got[0], adam_by_hand(0.5, [0.1, 0.2], 0.01), delta=1e-6)

    def test_sgd(self):
        got, _ = self.run_steps("sgd", [0.5, -0.5], [[1.0, 2.0], [0.5, -1.0]], [0.1, 0.2])
        self.assertAlmostEqual(got[0], 0.5 - 0.1 - 0.1, delta=1e-6)
        self.assertAlmostEqual(got[1], -0.5 - 0.2 + 0.2, delta=1e-6)

    def test_state_round_trip_and_reset(self):
        p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
        opt = Optimizer("adamw")
        opt.apply({"w": torch.tensor([0.1, 0.2])}, {"w": p}, 0.01)
        slots = {k: v.clone() for k, v in opt.slots().items()}
        self.assertEqual(sorted(slots), ["m/w", "v/w"])
        other = Optimizer("adamw")
        other.load("adamw", opt.step, slots)
        q = torch.nn.Parameter(p.detach().clone())
        opt.apply({"w": torch.tensor([0.3, -0.1])}, {"w": p}, 0.01)
        other.apply({"w": torch.tensor([0.3, -0.1])}, {"w": q}, 0.01)
        self.assertTrue(torch.equal(p, q))
        opt.reset()
        self.assertEqual((opt.step, opt.slots()), (0, {}))
        with self.assertRaises(ValueError):
            other.load("sgd", 1, {})

    def test_clip_by_global_norm(self):
        grads = {"a": torch.tensor([3.0]), "b": torch.tensor([[4.0]])}
        norm = clip_by_global_norm(grads, 1.0)
        self.assertAlmostEqual(norm.item(), 5.0, places=6)
        scale = 1.0 / (5.0 + 1e-6)
        self.assertAlmostEqual(grads["a"].item(), 3.0 * scale, delta=1e-7)
        self.assertAlmostEqual(grads["b"].item(), 4.0 * scale, delta=1e-7)
        # Below the limit nothing changes; a limit of 0 computes nothing.
        small = {"a": torch.tensor([0.3])}
        clip_by_global_norm(small, 1.0)
        self.assertEqual(small["a"].item(), torch.tensor(0.3).item())
        self.assertIsNone(clip_by_global_norm({"a": torch.tensor([30.0])}, 0))


if __name__ == "__main__":
    unittest.main()
