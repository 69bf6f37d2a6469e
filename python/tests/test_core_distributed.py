"""Two processes under torchrun on CPU (gloo) against one process: the global batch is split over the ranks, the
loss divided by the whole batch's labelled count and the gradients summed, so both take the same steps. Step
losses agree within 1e-5 relative and scores within 1e-4 (float summation order differs, nothing else).

FSDP2 (fully_shard) runs on CPU with gloo in this torch (2.13) once reductions are plain sums, so it is tested
here too, with its torch.distributed.checkpoint checkpoint and a resume from it.
"""
import os
import socket
import subprocess
import sys
import tempfile
import unittest

import torch

from .core_fixtures import REPO, make_prepared, of_type, parse_messages, run_inprocess, run_subprocess, worker_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# 10 examples in batches of 3: the last batch has one row, so rank 1 trains on an empty share (a placeholder).
SETUP = dict(tasks=2, train=10, batch_size=3, epochs=1, step_event_interval=1, eval_examples=4,
             modes=("next", "cont", "generate"))


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


class TwoProcessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.one = make_prepared(os.path.join(cls.tmp.name, "one"), **SETUP)
        rc, cls.reference = run_inprocess(cls.one.run_dir)
        assert rc == 0, of_type(cls.reference, "error")
        cls.fsdp2 = None

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def launch(self, name: str, shard: str, *args: str, run_dir: str | None = None):
        if run_dir is None:
            run_dir = make_prepared(os.path.join(self.tmp.name, name), torch_settings={"shard": shard}, **SETUP).run_dir
        rc, messages, proc = run_subprocess(run_dir, *args, nproc=2, timeout=300)
        self.assertEqual(rc, 0, proc.stderr[-4000:])
        return run_dir, messages

    def assertSameAsOneProcess(self, messages, shard: str, resumed: bool = False):
        hello = messages[0]
        self.assertEqual((hello["world"], hello["shard"]), (2, shard))
        ref_steps = {(m["task"], m["step"]): m["loss"] for m in of_type(self.reference, "step")}
        steps = {(m["task"], m["step"]): m["loss"] for m in of_type(messages, "step")}
        if not resumed:
            self.assertEqual(steps.keys(), ref_steps.keys())
        for k, v in steps.items():
            self.assertLessEqual(rel(v, ref_steps[k]), 1e-5, f"loss at {k}: {v} vs {ref_steps[k]}")
        ref_scores = {(m["afterTask"], m["task"], m["split"], m["mode"]): m for m in of_type(self.reference, "scores")}
        for m in of_type(messages, "scores"):
            ref = ref_scores[(m["afterTask"], m["task"], m["split"], m["mode"])]
            if m["mode"] == "generate":
                self.assertEqual(m["outputs"], ref["outputs"])
                continue
            for row, ref_row in zip(m["scores"], ref["scores"]):
                for x, y in zip(row, ref_row):
                    self.assertAlmostEqual(x, y, delta=1e-4)
        self.assertEqual(messages[-1]["type"], "done")

    def test_ddp(self):
        run_dir, messages = self.launch("ddp", "ddp")
        self.assertSameAsOneProcess(messages, "ddp")
        from safetensors.torch import load_file

        cp = of_type(messages, "checkpoint")[0]["path"]
        ours = load_file(os.path.join(run_dir, cp, "model.safetensors"))
        ref_cp = of_type(self.reference, "checkpoint")[0]["path"]
        theirs = load_file(os.path.join(self.one.run_dir, ref_cp, "model.safetensors"))
        self.assertEqual(ours.keys(), theirs.keys())
        for k in theirs:
            self.assertLessEqual((ours[k] - theirs[k]).abs().max().item(), 1e-5, k)

    def fsdp2_run(self):
        """One FSDP2 run, shared by the tests below (whichever runs first starts it)."""
        if TwoProcessTest.fsdp2 is None:
            TwoProcessTest.fsdp2 = self.launch("fsdp2", "fsdp2")
        return TwoProcessTest.fsdp2

    def test_fsdp2(self):
        run_dir, messages = self.fsdp2_run()
        self.assertSameAsOneProcess(messages, "fsdp2")
        cp = of_type(messages, "checkpoint")[0]
        folder = os.path.join(run_dir, cp["path"])
        self.assertTrue(os.path.isdir(os.path.join(folder, "dcp")))
        self.assertTrue(os.path.exists(os.path.join(folder, "method-rank1.pt")))
        # The sharded weights, gathered back, are the one-process checkpoint's.
        from safetensors.torch import load_file
        from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

        whole = os.path.join(self.tmp.name, "fsdp2-whole.pt")
        dcp_to_torch_save(os.path.join(folder, "dcp"), whole)
        ours = torch.load(whole, weights_only=True)["model"]
        ref_cp = of_type(self.reference, "checkpoint")[0]["path"]
        theirs = load_file(os.path.join(self.one.run_dir, ref_cp, "model.safetensors"))
        self.assertEqual(set(ours), set(theirs))
        for k in theirs:
            self.assertLessEqual((ours[k] - theirs[k]).abs().max().item(), 1e-5, k)

    def test_fsdp2_resume_from_its_checkpoint(self):
        run_dir, messages = self.fsdp2_run()
        cp = of_type(messages, "checkpoint")[0]
        _, resumed = self.launch("fsdp2", "fsdp2", "--resume", cp["path"], run_dir=run_dir)
        self.assertEqual([m["type"] for m in resumed[:2]], ["hello", "task-started"])
        self.assertSameAsOneProcess(resumed, "fsdp2", resumed=True)

    def test_ranks_given_different_checkpoints_fail_naming_them(self):
        # Machines are launched separately, so two ranks can be given different --resume: each fails at once
        # instead of hanging in a collective. Two processes by hand (as two machines' torchruns would start them).
        run_dir = self.one.run_dir
        port = free_port()
        procs = []
        for rank, resume in enumerate(["checkpoints/torch-4", "checkpoints/torch-2-stop"]):
            env = worker_env(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1",
                             MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
            procs.append(subprocess.Popen([sys.executable, "-m", "sculpt_torch", run_dir, "--resume", resume],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO))
        outs = [p.communicate(timeout=120) for p in procs]
        self.assertEqual([p.returncode for p in procs], [1, 1], outs[0][1][-2000:])
        errors = of_type(parse_messages(outs[0][0]), "error")
        self.assertEqual(len(errors), 1, outs[0][1][-2000:])
        self.assertIn("different checkpoints", errors[0]["message"])
        self.assertIn("rank 0: checkpoints/torch-4", errors[0]["message"])
        self.assertIn("rank 1: checkpoints/torch-2-stop", errors[0]["message"])


if __name__ == "__main__":
    unittest.main()


class TwoProcessLwfTest(unittest.TestCase):
    """LwF's distillation is a mean over the answer positions of the whole batch. The shares of the processes hold
    different numbers of them (3 rows over 2 processes, and a last batch of one row), so a mean of each share's
    mean would differ from one process; the global count makes them equal."""

    def test_ddp_equals_one_process(self):
        lwf = {"method": "lwf", "temperature": 2, "alpha": 1}
        with tempfile.TemporaryDirectory() as tmp:
            one = make_prepared(os.path.join(tmp, "one"), method=lwf, **SETUP)
            rc, reference = run_inprocess(one.run_dir)
            self.assertEqual(rc, 0, of_type(reference, "error"))
            two = make_prepared(os.path.join(tmp, "two"), method=lwf, torch_settings={"shard": "ddp"}, **SETUP)
            rc, messages, proc = run_subprocess(two.run_dir, nproc=2, timeout=300)
            self.assertEqual(rc, 0, proc.stderr[-4000:])
        ref = {(m["task"], m["step"]): m for m in of_type(reference, "step")}
        steps = of_type(messages, "step")
        self.assertEqual({(m["task"], m["step"]) for m in steps}, ref.keys())
        distilled = 0
        for m in steps:
            r = ref[(m["task"], m["step"])]
            self.assertLessEqual(rel(m["loss"], r["loss"]), 1e-5, f"loss at task {m['task']} step {m['step']}")
            if "distillation" in (r.get("terms") or {}):
                distilled += 1
        self.assertGreater(distilled, 0, "the second task's steps carry the distillation term")
