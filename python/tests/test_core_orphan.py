"""The worker leaves when the trainer's stdin pipe closes (sculpt_torch.orphan), and only when asked to."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import unittest
from pathlib import Path

from sculpt_torch.orphan import ENV, EXIT_ORPHANED, watch_parent, watch_parent_if_asked

PYTHON_DIR = str(Path(__file__).resolve().parents[1])

# A stand-in worker: watches its stdin as __main__ does, then works for longer than any test waits.
SLEEPER = "from sculpt_torch.orphan import watch_parent_if_asked\nimport time\nwatch_parent_if_asked()\ntime.sleep(60)\n"


def sleeper(asked: bool) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": PYTHON_DIR}
    env.pop(ENV, None)
    if asked:
        env[ENV] = "1"
    return subprocess.Popen([sys.executable, "-c", SLEEPER], stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


class OrphanTest(unittest.TestCase):
    def test_end_of_file_calls_back_once_after_input_is_drained(self):
        r, w = os.pipe()
        gone = threading.Event()
        calls = []
        watch_parent(os.fdopen(r, "rb", buffering=0), lambda: (calls.append(1), gone.set()))
        os.write(w, b"stray bytes are dropped\n")
        time.sleep(0.1)
        self.assertFalse(gone.is_set(), "data on the pipe is not its end")
        os.close(w)
        self.assertTrue(gone.wait(5), "end-of-file reaches the callback")
        self.assertEqual(calls, [1])

    def test_a_worker_asked_to_watch_exits_when_its_stdin_closes(self):
        p = sleeper(asked=True)
        try:
            time.sleep(0.5)
            self.assertIsNone(p.poll(), "alive while the pipe is open")
            p.stdin.close()
            code = p.wait(timeout=10)
            self.assertEqual(code, EXIT_ORPHANED)
            self.assertIn(b"the trainer is gone", p.stderr.read())
        finally:
            p.kill()

    def test_without_the_variable_nothing_is_watched(self):
        self.assertIsNone(watch_parent_if_asked({}))
        p = sleeper(asked=False)
        try:
            p.stdin.close()
            with self.assertRaises(subprocess.TimeoutExpired):
                p.wait(timeout=1.5)
        finally:
            p.kill()
            p.wait()


if __name__ == "__main__":
    unittest.main()
