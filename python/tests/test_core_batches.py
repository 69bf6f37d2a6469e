"""Batches as src/engine/data/batches.ts makeBatch and seq2seq.ts makeSeq2SeqBatch build them, and the split of a
global batch over ranks."""
import unittest

import torch

from sculpt_torch.data import (
    Example,
    make_batch,
    make_seq2seq_batch,
    placeholder_batch,
    rank_share,
)



def reference_make_batch(items, pad):
    """makeBatch transcribed from TypeScript: flat row-major arrays."""
    B = len(items)
    T = max(len(e.prompt) + len(e.answer) for e in items)
    ids, labels, mask = [pad] * (B * T), [-100] * (B * T), [0] * (B * T)
    labelled = tokens = 0
    for b, e in enumerate(items):
        row = b * T
        seq = list(e.prompt) + list(e.answer)
        for t, tok in enumerate(seq):
            ids[row + t] = tok
            mask[row + t] = 1
        for i, tok in enumerate(e.answer):
            labels[row + len(e.prompt) + i] = tok
        labelled += len(e.answer)
        tokens += len(seq)
    return ids, labels, mask, B, T, labelled, tokens


def reference_make_seq2seq_batch(items, pad):
    B = len(items)
    T = max(1, *[len(e.prompt) for e in items])
    L = max(1, *[len(e.answer) for e in items])
    ids, mask, labels = [pad] * (B * T), [0] * (B * T), [-100] * (B * L)
    labelled = tokens = 0
    for b, e in enumerate(items):
        for t, tok in enumerate(e.prompt):
            ids[b * T + t] = tok
            mask[b * T + t] = 1
        for t, tok in enumerate(e.answer):
            labels[b * L + t] = tok
        labelled += len(e.answer)
        tokens += len(e.prompt) + len(e.answer)
    return ids, labels, mask, B, T, L, labelled, tokens


ITEMS = [
    Example((1, 5, 6, 7), (9, 2)),
    Example((1, 5), (10, 11, 2)),
    Example((1, 8, 8, 8, 8, 8), (12, 2)),
]


class BatchTest(unittest.TestCase):
    def test_causal_batch_equals_make_batch(self):
        for pad in (0, 3):
            b = make_batch(ITEMS, pad)
            ids, labels, mask, B, T, labelled, tokens = reference_make_batch(ITEMS, pad)
            self.assertEqual(tuple(b.input_ids.shape), (B, T))
            self.assertEqual(b.input_ids.flatten().tolist(), ids)
            self.assertEqual(b.labels.flatten().tolist(), labels)
            self.assertEqual(b.attention_mask.flatten().tolist(), mask)
            self.assertEqual((b.labelled, b.tokens), (labelled, tokens))
            self.assertEqual(b.input_ids.dtype, torch.int64)

    def test_seq2seq_batch_equals_make_seq2seq_batch(self):
        items = [Example((5, 6, 7, 2), (9, 2)), Example((5, 2), (10, 11, 2))]
        b = make_seq2seq_batch(items, 0)
        ids, labels, mask, B, T, L, labelled, tokens = reference_make_seq2seq_batch(items, 0)
        self.assertEqual(tuple(b.input_ids.shape), (B, T))
        self.assertEqual(tuple(b.labels.shape), (B, L))
        self.assertEqual(b.input_ids.flatten().tolist(), ids)
        self.assertEqual(b.labels.flatten().tolist(), labels)
        self.assertEqual(b.attention_mask.flatten().tolist(), mask)
        self.assertEqual((b.labelled, b.tokens), (labelled, tokens))

    def test_rank_shares_cover_the_batch_once(self):
        idx = [7, 3, 9, 1, 4]
        for world in (1, 2, 3, 7):
            shares = [rank_share(idx, r, world) for r in range(world)]
            self.assertEqual(sorted(i for s in shares for i in s), sorted(idx))
            self.assertEqual(shares[0][0], 7)

    def test_placeholder_is_unlabelled(self):
        for kind in ("causal", "seq2seq"):
            b = placeholder_batch(kind, 0)
            self.assertEqual((b.labelled, b.tokens), (0, 0))
            self.assertEqual(b.labels.tolist(), [[-100]])


if __name__ == "__main__":
    unittest.main()
