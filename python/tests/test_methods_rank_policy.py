"""The rank policies' k against hand computations, the cases of test/unit/rank-policy.test.ts (fixed with PEFT
OSF's effectiveRank and rankPattern, authors-schedule, energy, schedule, adaptive), their warnings and error
paths word for word, and the ranks a run reports at each boundary."""
from __future__ import annotations

import json
import math
import re
import unittest

from sculpt_torch.methods.adaptive_svd import AdaptiveSvd
from sculpt_torch.methods.rank_policy import (
    MatrixDims,
    choose_ranks,
    constrained_matrices,
    energy_rank,
    js_exponential,
    js_number,
    js_round,
    rank_pattern_file,
    rank_pattern_issues,
    rank_pattern_of,
    sigma_stats,
)
from sculpt_torch.targets import ConfigError

from tests.test_methods_support import LLAMA_TINY, adaptive_svd_config, context, load_model, rank_policy


def matrix(name: str, d_out: int, d_in: int) -> MatrixDims:
    """A target stored as nn.Linear, [d_out, d_in]."""
    return MatrixDims(name, d_out, d_in)


def ks(policy, targets, t=0, spectra=None):
    return choose_ranks(policy, targets, t, None, "methods[0].rank", spectra)


def k_list(decision) -> list[int]:
    return [c.k for c in decision.choices]


class RankPolicyTest(unittest.TestCase):
    def test_authors_schedule_floor_of_max_dim_capped_at_min_dim(self) -> None:
        targets = [matrix("tall", 64, 32), matrix("wide", 16, 100), matrix("square", 40, 40), matrix("small", 8, 4)]
        p = rank_policy(policy="authors-schedule")
        self.assertEqual(p, {"policy": "authors-schedule", "start": 0.07, "step": 0.07})
        t0 = ks(p, targets, 0)  # f = 0.07: floor(4.48), floor(7), floor(2.8), floor(0.56) -> 1
        self.assertEqual(k_list(t0), [4, 7, 2, 1])
        self.assertEqual([c.clamped for c in t0.choices], [False, False, False, True])
        self.assertEqual(t0.warnings, [], "a k raised to 1 is flagged, not warned about")
        self.assertEqual(k_list(ks(p, targets, 1)), [8, 14, 5, 1])
        t2 = ks(p, targets, 2)  # f = 0.21: floor(13.44), floor(21) capped at 16, floor(8.4), floor(1.68)
        self.assertEqual(k_list(t2), [13, 16, 8, 1])
        self.assertEqual([c.clamped for c in t2.choices], [False, True, False, False])
        self.assertEqual(len(t2.warnings), 1)
        self.assertRegex(t2.warnings[0], r"^f = 0\.21 of max\(d_out, d_in\) reaches min\(d_out, d_in\) in 1 of 4 matrices \(e\.g\. wide\)")
        self.assertEqual([k_list(ks(p, [matrix("sq", 100, 100)], t))[0] for t in range(4)], [7, 14, 21, 28])
        custom = rank_policy(policy="authors-schedule", start=0.25, step=0.5)
        self.assertEqual(k_list(ks(custom, targets, 1)), [32, 16, 30, 4])

    def test_energy_smallest_k_reaching_the_threshold_stepped_and_capped(self) -> None:
        a = [4.0, 3.0, 2.0, 1.0]  # sigma² = 16, 9, 4, 1 of 30: cumulative 0.533, 0.833, 0.967, 1
        b = [10.0, 1.0, 1.0, 1.0, 1.0]  # 100, 1, 1, 1, 1 of 104
        zero = [0.0, 0.0, 0.0]
        targets = [matrix("a", 4, 6), matrix("b", 5, 5), matrix("zero", 3, 3)]
        spectra = [a, b, zero]
        p = rank_policy(policy="energy")
        self.assertEqual(p, {"policy": "energy", "threshold": 0.9, "thresholdStep": 0, "maxThreshold": 0.99})
        self.assertEqual(k_list(ks(p, targets, 0, spectra)), [3, 1, 1])
        self.assertEqual(k_list(ks(p, targets, 5, spectra)), [3, 1, 1])
        stepped = rank_policy(policy="energy", threshold=0.5, thresholdStep=0.2, maxThreshold=0.95)
        self.assertEqual([k_list(ks(stepped, targets, t, spectra))[0] for t in range(5)], [1, 2, 3, 3, 3])
        high = rank_policy(policy="energy", threshold=0.5, thresholdStep=0.2, maxThreshold=0.99)
        self.assertEqual(k_list(ks(high, targets, 3, spectra)), [4, 4, 1])
        for tau in (0.1, 0.5, 0.8, 0.9, 0.96, 0.99, 1):
            for S in (a, b):
                k = energy_rank(S, tau)
                self.assertGreaterEqual(sigma_stats(S, k)["retainedEnergy"], tau)
                if k > 1:
                    self.assertLess(sigma_stats(S, k - 1)["retainedEnergy"], tau)
        with self.assertRaisesRegex(ValueError, "singular values are missing"):
            ks(p, targets, 0, None)

    def test_fixed_rank_pattern_precedes_effective_rank_and_the_first_match_wins(self) -> None:
        targets = [
            matrix("model.layers.0.self_attn.q_proj.weight", 32, 32),
            matrix("model.layers.0.self_attn.k_proj.weight", 16, 32),
            matrix("model.layers.0.mlp.up_proj.weight", 64, 32),
            matrix("model.layers.1.self_attn.q_proj.weight", 32, 32),
        ]
        p = rank_policy(policy="fixed", effectiveRank=0.25, rankPattern={"layers\\.1\\.": 5, "q_proj$": 0.5, "k_proj": 3})
        self.assertNotIn("ratio", p)
        d = ks(p, targets)
        self.assertEqual(k_list(d), [16, 3, 8, 5])
        self.assertEqual(d.warnings, [])
        self.assertEqual(k_list(ks(rank_policy(policy="fixed", rankPattern={"k_proj": 3}), targets)), [16, 3, 16, 16])
        self.assertEqual(k_list(ks(rank_policy(policy="fixed", ratio=0.3), targets)),
                         k_list(ks(rank_policy(policy="fixed", effectiveRank=0.3), targets)))
        self.assertEqual(k_list(ks(rank_policy(policy="fixed", k=7), targets)),
                         k_list(ks(rank_policy(policy="fixed", effectiveRank=7), targets)))
        self.assertEqual(k_list(ks(rank_policy(policy="fixed", k=20, rankPattern={"k_proj": 4}), targets)), [20, 4, 20, 20])
        with self.assertRaises(ConfigError) as e:
            ks(rank_policy(policy="fixed", k=20), targets)
        self.assertEqual(e.exception.issues[0]["path"], "methods[0].rank.k")
        # JavaScript orders whole-number keys first: "3" is tried before "q_proj".
        self.assertEqual(k_list(ks(rank_policy(policy="fixed", rankPattern={"q_proj": 2, "3": 1}),
                                   [matrix("model.layers.3.self_attn.q_proj.weight", 32, 32)])), [1])

    def test_fixed_integer_ranks_are_clamped_flagged_and_warned_once_per_option(self) -> None:
        targets = [
            matrix("model.layers.0.self_attn.q_proj.weight", 32, 32),
            matrix("model.layers.0.self_attn.k_proj.weight", 16, 32),
            matrix("model.layers.0.self_attn.v_proj.weight", 16, 32),
            matrix("model.layers.0.mlp.down_proj.weight", 8, 64),
        ]
        d = ks(rank_policy(policy="fixed", effectiveRank=20, rankPattern={"down_proj": 100}), targets)
        self.assertEqual(k_list(d), [20, 16, 16, 8])
        self.assertEqual([c.clamped for c in d.choices], [False, True, True, True])
        self.assertEqual(d.warnings, [
            "effectiveRank = 20 exceeds min(d_out, d_in) of 2 of 4 matrices (e.g. model.layers.0.self_attn.k_proj): k is clamped to min(d_out, d_in) there",
            'rankPattern["down_proj"] = 100 exceeds min(d_out, d_in) of 1 of 4 matrices (e.g. model.layers.0.mlp.down_proj): k is clamped to min(d_out, d_in) there',
        ])
        small = ks(rank_policy(policy="fixed", effectiveRank=0.1), [matrix("m", 8, 8)])
        self.assertEqual([(c.k, c.ratio, c.clamped) for c in small.choices], [(1, 0.1, True)])
        self.assertEqual(small.warnings, [])
        self.assertFalse(ks(rank_policy(policy="fixed", effectiveRank=16), [targets[1]]).choices[0].clamped)

    def test_schedule_and_adaptive_round_half_up_and_clamp(self) -> None:
        targets = [matrix("a", 64, 32), matrix("b", 16, 100), matrix("c", 3, 3)]
        s = rank_policy(policy="schedule")
        for t in (0, 1, 2, 10):
            ratio = min(0.9, 0.3 + 0.1 * t)
            self.assertEqual(k_list(ks(s, targets, t)),
                             [math.floor(ratio * 32 + 0.5), math.floor(ratio * 16 + 0.5), max(1, math.floor(ratio * 3 + 0.5))])
        a = rank_policy(policy="adaptive", normalisation="mean")
        d = choose_ranks(a, targets, 0, [2, 0.5, 0.01], "methods[0].rank")
        mean = (2 + 0.5 + 0.01) / 3
        ratios = [0.1 + (v / mean) * (0.8 - 0.1) for v in (2, 0.5, 0.01)]
        self.assertEqual([c.ratio for c in d.choices], ratios)
        self.assertEqual(k_list(d), [32, math.floor(ratios[1] * 16 + 0.5), 1])
        self.assertEqual([c.clamped for c in d.choices], [True, False, True])
        self.assertEqual([c.importance for c in d.choices], [2, 0.5, 0.01])
        self.assertEqual(d.warnings, ["2 of 3 matrices hit a clamp (k = 1 or k = min_dim): their ranks carry little information about importance"])
        # Math.round halves up where Python's round halves to even: 0.5 * 5 = 2.5 -> 3, 0.5 * 9 = 4.5 -> 5.
        half = rank_policy(policy="schedule", start=0.5, step=0, max=0.9)
        self.assertEqual(k_list(ks(half, [matrix("five", 5, 5), matrix("nine", 9, 9)])), [3, 5])
        # minmax: the least important matrix gets mrr, the most important trr.
        mm = choose_ranks(rank_policy(policy="adaptive"), [matrix("x", 100, 100)] * 3, 0, [-1.0, 0.5, 2.0], "r")
        self.assertEqual([c.ratio for c in mm.choices], [0.1, 0.1 + 0.5 * (0.8 - 0.1), 0.8])
        # The paper's normalisation with a non-positive mean importance warns.
        neg = choose_ranks(a, targets, 0, [-0.002, 0.001, -0.001], "r")
        self.assertEqual(neg.warnings[0],
                         'mean importance is -6.667e-4 (<= 0): the paper\'s I / mean(I) normalisation inverts or explodes the ranks; '
                         'consider "normalisation": "minmax" or "importance": "block"')

    def test_numbers_print_as_javascript_prints_them(self) -> None:
        self.assertEqual([js_number(v) for v in (20, 20.0, 0.25, 0.21000000000000002, 1e-7, 1.5e21, 123456789012.5, -0.5)],
                         ["20", "20", "0.25", "0.21000000000000002", "1e-7", "1.5e+21", "123456789012.5", "-0.5"])
        self.assertEqual(js_exponential(-0.000666666, 3), "-6.667e-4")
        self.assertEqual(js_exponential(12.0, 3), "1.200e+1")
        self.assertEqual([js_round(v) for v in (2.5, -2.5, 0.49999999999999994, 3.5)], [3, -2, 0, 4])


class RankPatternOnModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.model = load_model(LLAMA_TINY)

    def test_a_pattern_matching_no_target_is_refused_by_name_and_at_setup(self) -> None:
        targets = constrained_matrices(self.model, ["attention", "mlp"])
        self.assertEqual(len(targets), 14)
        rank = {"rankPattern": {"q_proj$": 4, "lm_head": 8, "layers\\.7\\.": 2}}
        issues = rank_pattern_issues(rank, targets, "methods[1].rank")
        self.assertEqual([i["path"] for i in issues],
                         ['methods[1].rank.rankPattern["lm_head"]', 'methods[1].rank.rankPattern["layers\\\\.7\\\\."]'])
        self.assertRegex(issues[0]["message"], r"^matches none of the 14 target matrices of this model \(module names such as model\.layers\.0\.self_attn\.q_proj, ")
        with_head = constrained_matrices(self.model, ["attention", "mlp", "head"])
        self.assertEqual([i["path"] for i in rank_pattern_issues(rank, with_head, "r")], ['r.rankPattern["layers\\\\.7\\\\."]'])
        cfg = adaptive_svd_config(rank={"policy": "fixed", "rankPattern": {"nothing_here": 3}})
        method = AdaptiveSvd(cfg, "methods[3]")
        with self.assertRaises(ConfigError) as e:
            method.setup(context(self.model, cfg)[0])
        self.assertEqual(len(e.exception.issues), 1)
        self.assertEqual(e.exception.issues[0]["path"], 'methods[3].rank.rankPattern["nothing_here"]')
        self.assertRegex(str(e.exception), "matches none of the 14 target matrices")
        # A pattern that is no regular expression at all.
        bad = rank_pattern_issues({"rankPattern": {"q_proj(": 4}}, targets, "m")
        self.assertEqual(bad[0]["path"], 'm.rankPattern["q_proj("]')
        self.assertRegex(bad[0]["message"], "^is not a valid JavaScript regular expression")
        # JavaScript's named groups are read too.
        self.assertEqual(rank_pattern_issues({"rankPattern": {"(?<which>q|k)_proj": 4}}, targets, "m"), [])

    def test_the_exported_rank_pattern_read_back_as_a_fixed_policy_gives_the_same_k(self) -> None:
        targets = constrained_matrices(self.model, ["attention", "mlp", "head", "embeddings"])
        self.assertEqual(len(targets), 16)
        chosen = []
        for i, t in enumerate(targets):
            d = t.min_dim
            chosen.append({"name": t.name, "k": 1 if i == 0 else d if i == 1 else 1 + (i * 7) % d})
        file = json.loads(json.dumps(rank_pattern_of(chosen)))
        self.assertEqual(file["^model\\.layers\\.0\\.self_attn\\.q_proj$"], chosen[0]["k"])
        self.assertEqual(file["^lm_head$"], next(c["k"] for c in chosen if c["name"] == "lm_head.weight"))
        back = rank_policy(policy="fixed", rankPattern=file)
        self.assertEqual(rank_pattern_issues(back, targets, "r"), [])
        d = ks(back, targets)
        self.assertEqual(k_list(d), [c["k"] for c in chosen])
        self.assertEqual(d.warnings, [])
        self.assertFalse(any(c.clamped for c in d.choices))
        for key in file:
            self.assertEqual(sum(1 for t in targets if re.search(key, t.module_name)), 1, key)
        self.assertEqual(rank_pattern_file(1), "ranks/before-task-2.rank_pattern.json")

    def test_energy_policy_decides_after_the_svd_at_each_boundary(self) -> None:
        cfg = adaptive_svd_config(rank={"policy": "energy", "threshold": 0.6, "thresholdStep": 0.2})
        method = AdaptiveSvd(cfg, "methods[0]")
        ctx, rec = context(self.model, cfg, tasks=[[], [], []])
        method.setup(ctx)
        for task in (1, 2):
            ctx.task = task
            method.before_task(ctx)
        self.assertEqual(len(rec.ranks), 2)
        targets = constrained_matrices(self.model, ["attention", "mlp"])
        for b, r in enumerate(rec.ranks):
            tau = 0.6 + 0.2 * b
            self.assertEqual(r["policy"], "energy")
            for m in r["matrices"]:
                self.assertGreaterEqual(m["retainedEnergy"], tau - 1e-12)
                self.assertTrue(1 <= m["k"] < m["minDim"])
            back = ks(rank_policy(policy="fixed", rankPattern=rank_pattern_of(r["matrices"])), targets)
            self.assertEqual(k_list(back), [m["k"] for m in r["matrices"]])
        self.assertGreater(sum(m["k"] for m in rec.ranks[1]["matrices"]), sum(m["k"] for m in rec.ranks[0]["matrices"]))
        first = rec.ranks[1]["matrices"][0]
        self.assertEqual(method.state_dict()["tensors"][f"Uh/{first['name']}"].shape[1], first["k"])

    def test_clamped_ranks_and_the_policy_warnings_travel_in_the_ranks_message(self) -> None:
        cfg = adaptive_svd_config(rank={"policy": "fixed", "effectiveRank": 40, "rankPattern": {"layers\\.1\\.mlp": 0.25}})
        method = AdaptiveSvd(cfg, "methods[0]")
        ctx, rec = context(self.model, cfg, tasks=[[], []])
        method.setup(ctx)
        self.assertEqual((rec.ranks, rec.warnings), ([], []), "setup checks the policy without reporting")
        ctx.task = 1
        method.before_task(ctx)
        r = rec.ranks[0]
        by_name = {m["name"]: m for m in r["matrices"]}
        self.assertEqual(by_name["model.layers.0.self_attn.k_proj.weight"]["k"], 32)
        self.assertIs(by_name["model.layers.0.self_attn.k_proj.weight"]["clamped"], True)
        self.assertEqual(by_name["model.layers.0.self_attn.q_proj.weight"]["k"], 40)
        self.assertNotIn("clamped", by_name["model.layers.0.self_attn.q_proj.weight"])
        self.assertEqual(by_name["model.layers.1.mlp.up_proj.weight"]["k"], 16)
        expected = ["effectiveRank = 40 exceeds min(d_out, d_in) of 4 of 14 matrices (e.g. model.layers.0.self_attn.k_proj): k is clamped to min(d_out, d_in) there"]
        self.assertEqual(r["warnings"], expected)
        self.assertEqual(rec.warnings, [(expected[0], "rank-policy")])
        # The MatrixRank fields of src/protocol/events.ts, in its order, plain JSON values.
        q = by_name["model.layers.0.self_attn.q_proj.weight"]
        self.assertEqual(list(q), ["name", "layer", "role", "shape", "k", "minDim", "ratio", "sigmaMax", "sigmaMin",
                                   "sigmaMean", "effectiveRank", "retainedEnergy"])
        self.assertEqual((q["layer"], q["role"], q["shape"], q["minDim"], q["ratio"]), (0, "q", [64, 64], 64, 40 / 64))
        json.dumps(r)


if __name__ == "__main__":
    unittest.main()
