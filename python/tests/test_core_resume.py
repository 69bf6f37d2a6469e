"""Stop and resume: a run stopped by `<runDir>/stop-request` and resumed from its `stop` checkpoint, or killed
with SIGKILL mid-task and resumed from its last checkpoint, ends as the uninterrupted run does (same weights,
losses and scores; bitwise on this CPU, asserted within 1e-6)."""
import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
import unittest


from sculpt_torch.protocol import Channel, parse_line
from sculpt_torch.train import STOP_FILE, Worker

from .core_fixtures import REPO, make_prepared, of_type, one_thread, worker_env
from .test_core_worker import check_order


SETUP = dict(tasks=2, train=12, batch_size=4, epochs=2, schedule="linear", step_event_interval=2, modes=("next",))


def run_worker(run_dir, resume=None, on_message=None):
    messages = []

    def sink(m):
        messages.append(m)
        if on_message:
            on_message(m)

    one_thread()
    worker = Worker(run_dir, resume, Channel(sink=sink))
    rc = worker.run()
    return rc, messages, worker


def max_weight_difference(a, b) -> float:
    pa, pb = dict(a.model.named_parameters()), dict(b.model.named_parameters())
    assert pa.keys() == pb.keys()
    return max((pa[k].detach() - pb[k].detach()).abs().max().item() for k in pa)


def step_losses(messages):
    return {(m["task"], m["step"]): m["loss"] for m in of_type(messages, "step")}


def final_scores(messages, task):
    return [m["scores"] for m in of_type(messages, "scores") if m["afterTask"] == task]


class ResumeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.base = make_prepared(os.path.join(cls.tmp.name, "base"), **SETUP)
        cls.rc, cls.messages, cls.worker = run_worker(cls.base.run_dir)
        assert cls.rc == 0, of_type(cls.messages, "error")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def assertSameRun(self, resumed_messages, worker, earlier_messages=()):
        self.assertLessEqual(max_weight_difference(worker, self.worker), 1e-6)
        ours = step_losses(earlier_messages) | step_losses(resumed_messages)
        theirs = step_losses(self.messages)
        self.assertEqual(ours.keys(), theirs.keys())
        for k in theirs:
            self.assertAlmostEqual(ours[k], theirs[k], delta=1e-6 * abs(theirs[k]), msg=f"loss at {k}")
        last = len(self.base.manifest["tasks"]) - 1
        for a, b in zip(final_scores(resumed_messages, last), final_scores(self.messages, last)):
            for ra, rb in zip(a, b):
                for x, y in zip(ra, rb):
                    self.assertAlmostEqual(x, y, delta=1e-6)

    def stop_when(self, run_dir, condition):
        def on_message(m):
            if condition(m):
                open(os.path.join(run_dir, STOP_FILE), "w").close()

        return on_message

    def test_stop_mid_task_then_resume(self):
        p = make_prepared(os.path.join(self.tmp.name, "stop-mid"), **SETUP)
        rc, first, _ = run_worker(p.run_dir, on_message=self.stop_when(
            p.run_dir, lambda m: m["type"] == "step" and m["globalStep"] == 4))
        self.assertEqual(rc, 0)
        self.assertEqual([m["type"] for m in first[-3:]], ["step", "checkpoint", "stopped"])
        cp, stopped = first[-2], first[-1]
        self.assertEqual((cp["reason"], cp["path"], cp["task"], cp["step"]), ("stop", "checkpoints/torch-4-stop", 0, 4))
        self.assertEqual(stopped, {"type": "stopped", "task": 0, "step": 4, "checkpoint": cp["path"]})
        os.remove(os.path.join(p.run_dir, STOP_FILE))
        rc, resumed, worker = run_worker(p.run_dir, cp["path"])
        self.assertEqual(rc, 0, of_type(resumed, "error"))
        check_order(self, resumed, p.manifest, resumed_at={"task": 0, "step": 4})
        self.assertSameRun(resumed, worker, first)

    def test_stop_between_tasks_then_resume(self):
        p = make_prepared(os.path.join(self.tmp.name, "stop-between"), **SETUP)
        rc, first, _ = run_worker(p.run_dir, on_message=self.stop_when(
            p.run_dir, lambda m: m["type"] == "scores" and m["afterTask"] == 0))
        self.assertEqual(rc, 0)
        cp, stopped = first[-2], first[-1]
        self.assertEqual((cp["reason"], cp["task"], cp["step"]), ("stop", 1, 0))
        self.assertEqual((stopped["task"], stopped["step"]), (1, 0))
        os.remove(os.path.join(p.run_dir, STOP_FILE))
        rc, resumed, worker = run_worker(p.run_dir, cp["path"])
        self.assertEqual(rc, 0, of_type(resumed, "error"))
        check_order(self, resumed, p.manifest, resumed_at={"task": 1, "step": 0})
        self.assertSameRun(resumed, worker, first)

    def test_sigkill_mid_task_then_resume_from_the_last_checkpoint(self):
        p = make_prepared(os.path.join(self.tmp.name, "kill"), checkpoint_every=2, **SETUP)
        proc = subprocess.Popen([sys.executable, "-m", "sculpt_torch", p.run_dir], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=worker_env(OMP_NUM_THREADS="1"), cwd=REPO)
        first, last_checkpoint = [], None
        try:
            for line in proc.stdout:
                m = parse_line(line)
                if m is None:
                    continue
                first.append(m)
                if m["type"] == "checkpoint":
                    last_checkpoint = m
                    if m["task"] == 1 and m["step"] == 2:
                        proc.send_signal(signal.SIGKILL)
                        break
        finally:
            proc.stdout.close()
            proc.wait(timeout=60)
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        self.assertEqual(last_checkpoint["path"], "checkpoints/torch-8-steps")
        # Whatever folder exists is whole (only a .tmp-* folder may be partial).
        root = os.path.join(p.run_dir, "checkpoints")
        for name in os.listdir(root):
            if name.startswith("torch-"):
                self.assertTrue(os.path.exists(os.path.join(root, name, "meta.json")), name)
        with contextlib.redirect_stderr(io.StringIO()):
            rc, resumed, worker = run_worker(p.run_dir, last_checkpoint["path"])
        self.assertEqual(rc, 0, of_type(resumed, "error"))
        # The killed process's losses up to its checkpoint, then the resumed ones: the uninterrupted run's.
        self.assertSameRun(resumed, worker, first)


if __name__ == "__main__":
    unittest.main()


# Resolved method configs as the trainer process writes them (every option filled in; small sample counts).
METHODS = {
    "adaptive-svd": {"method": "adaptive-svd", "targets": ["attention", "mlp"], "nonTargets": "trainable",
                     "rank": {"policy": "fixed", "ratio": 0.5}, "projection": "two-sided",
                     "parametrisation": "dense", "protectPretrained": False, "calibrationSamples": 8},
    "ewc": {"method": "ewc", "lambda": 1000, "gamma": 1, "fisherSamples": 6},
    "lwf": {"method": "lwf", "temperature": 2, "alpha": 1},
    "o-lora": {"method": "o-lora", "r": 8, "alpha": 32, "modules": ["q", "v"], "lambda1": 0.5, "lambda2": 0},
    "per-task": {"method": "per-task"},
    "replay": {"method": "replay", "bufferRatio": 0.1, "mixRatio": 0.25},
}


class MethodResumeTest(unittest.TestCase):
    """Every method's state goes through a checkpoint: a resume inside the second task (after the method's
    boundary work: subspaces, Fisher, teacher, adapters) ends with the uninterrupted run's weights."""

    def test_every_method_resumes_mid_task(self):
        with tempfile.TemporaryDirectory() as tmp:
            for name, cfg in METHODS.items():
                with self.subTest(method=name):
                    p = make_prepared(os.path.join(tmp, name), method=cfg, checkpoint_every=2, keep=10,
                                      zero_shot=False, modes=("next",), **{k: v for k, v in SETUP.items() if k != "modes"})
                    rc, first, whole = run_worker(p.run_dir)
                    self.assertEqual(rc, 0, of_type(first, "error"))
                    self.assertIn("checkpoints/torch-8-steps", [m["path"] for m in of_type(first, "checkpoint")])
                    rc, resumed, worker = run_worker(p.run_dir, "checkpoints/torch-8-steps")
                    self.assertEqual(rc, 0, of_type(resumed, "error"))
                    self.assertLessEqual(max_weight_difference(worker, whole), 1e-6)
                    self.assertEqual(final_scores(resumed, 1), final_scores(first, 1))
