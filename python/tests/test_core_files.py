"""Files the worker writes: safetensors files get the mode the process's umask gives any other file, so that a
shared run folder's checkpoints and fine-tuned model are readable by the team, as the tfjs engine's are."""

import os
import stat
import tempfile
import unittest

import torch

from sculpt_torch.checkpoint import save_safetensors


class SafetensorsModeTest(unittest.TestCase):
    def test_mode_follows_the_umask(self):
        with tempfile.TemporaryDirectory() as d:
            for mask, mode in ((0o022, 0o644), (0o027, 0o640), (0o077, 0o600)):
                old = os.umask(mask)
                try:
                    path = os.path.join(d, f"w{mask:o}.safetensors")
                    save_safetensors({"w": torch.zeros(2)}, path, metadata={"format": "pt"})
                finally:
                    os.umask(old)
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), mode, f"umask {mask:o}")


if __name__ == "__main__":
    unittest.main()
