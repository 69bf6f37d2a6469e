"""Scores as the tfjs engine computes them: `next` and `cont` independent of how prompts are batched and padded,
`cont` of a one-token continuation equal to `next`, and greedy generation with the cache equal to recomputing
the whole sequence at every step (causal and seq2seq)."""
import random
import unittest

import torch

from sculpt_torch.evaluate import Scorer
from sculpt_torch.model import load_model

from .core_fixtures import EOS, TINY_LLAMA, TINY_T5



def prompts_for(kind: str, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    rows = [[rng.randrange(4, 68) for _ in range(n)] for n in (3, 7, 5, 9, 2)]
    return [[1, *r] for r in rows] if kind == "causal" else [[*r, EOS] for r in rows]


def greedy_without_cache(model, kind: str, prompt: list[int], n: int) -> list[int]:
    out: list[int] = []
    with torch.no_grad():
        for _ in range(n):
            if kind == "causal":
                logits = model(input_ids=torch.tensor([prompt + out])).logits[0, -1]
            else:
                logits = model(input_ids=torch.tensor([prompt]), decoder_input_ids=torch.tensor([[0, *out]])).logits[0, -1]
            tok = int(logits.argmax())
            out.append(tok)
            if tok == EOS:
                break
    return out


class ScorerTest(unittest.TestCase):
    def check(self, kind: str, folder: str):
        model = load_model(folder, kind)
        scorer = Scorer(model, kind, pad=0, eos=EOS)
        prompts = prompts_for(kind)
        cands = [5, 9, 12]
        batched = scorer.next_token(prompts, cands, 3)
        alone = [scorer.next_token([p], cands, 1)[0] for p in prompts]
        for a, b in zip(batched, alone):
            for x, y in zip(a, b):
                self.assertAlmostEqual(x, y, delta=1e-5)
        conts = [[5, EOS], [9, 10, EOS], [12, EOS]]
        P = [p for p in prompts for _ in conts]
        C = [c for _ in prompts for c in conts]
        batched = scorer.continuation_sums(P, C, 4)
        alone = [scorer.continuation_sums([p], [c], 1)[0] for p, c in zip(P, C)]
        for x, y in zip(batched, alone):
            self.assertAlmostEqual(x, y, delta=1e-5)
        nxt = scorer.next_token(prompts, [5], 8)
        one = scorer.continuation_sums(prompts, [[5]] * len(prompts), 8)
        for row, s in zip(nxt, one):
            self.assertAlmostEqual(row[0], s, delta=1e-5)
        generated = scorer.generate(prompts, 6, 3)
        self.assertEqual(generated, [greedy_without_cache(model, kind, p, 6) for p in prompts])
        self.assertEqual(generated, [scorer.generate([p], 6, 1)[0] for p in prompts])

    def test_causal(self):
        self.check("causal", TINY_LLAMA)

    def test_seq2seq(self):
        self.check("seq2seq", TINY_T5)


if __name__ == "__main__":
    unittest.main()
