"""The worker end to end on a hand-written prepared/ folder: in this process and as `python -m sculpt_torch`,
messages in the documented order (docs/torch-engine.md), accuracies computable from the scores, learning rates
from the manifest, checkpoints by the policy, errors as `error` messages."""
import contextlib
import io
import json
import os
import tempfile
import unittest
from unittest import mock

import torch

from sculpt_torch.optim import Optimizer

from .core_fixtures import accuracy, make_prepared, of_type, run_inprocess, run_subprocess



def check_order(test: unittest.TestCase, messages: list[dict], manifest: dict, resumed_at: dict | None = None):
    """Asserts the order of a run: hello; zero-shot scores; per task task-started, steps, scores, checkpoint; done."""
    kinds = [m["type"] for m in messages]
    test.assertEqual(kinds[0], "hello", kinds)
    test.assertEqual(kinds[-1], "done", kinds)
    test.assertEqual(kinds.count("done"), 1)
    tasks = manifest["tasks"]
    evaluations = [(t["index"], e["split"], e["mode"]) for t in tasks for e in t["evaluations"]]
    i = 1
    if manifest["eval"]["zeroShot"] and resumed_at is None:
        got = [(m["task"], m["split"], m["mode"]) for m in messages[i : i + len(evaluations)]]
        test.assertTrue(all(m["type"] == "scores" and m["afterTask"] == -1 for m in messages[i : i + len(evaluations)]))
        test.assertEqual(got, evaluations)
        i += len(evaluations)
    first = resumed_at["task"] if resumed_at else 0
    every = manifest["checkpoint"]["every"]
    for t in range(first, len(tasks)):
        if not (resumed_at and t == first and resumed_at["step"] > 0):
            test.assertEqual((messages[i]["type"], messages[i]["task"]), ("task-started", t), messages[i])
            i += 1
        steps = []
        while messages[i]["type"] in ("step", "checkpoint", "ranks", "warning"):
            if messages[i]["type"] == "step":
                test.assertEqual(messages[i]["task"], t)
                steps.append(messages[i]["step"])
            elif messages[i]["type"] == "checkpoint":
                test.assertIn(messages[i]["reason"], ("steps", "epoch"))
            i += 1
        test.assertEqual(steps, sorted(steps))
        if tasks[t]["steps"]:
            test.assertEqual(steps[-1], tasks[t]["steps"])
        block = messages[i : i + len(evaluations)]
        test.assertEqual([(m["type"], m["afterTask"]) for m in block], [("scores", t)] * len(evaluations))
        test.assertEqual([(m["task"], m["split"], m["mode"]) for m in block], evaluations)
        i += len(evaluations)
        if t < len(tasks) - 1 and every != "never":
            test.assertEqual((messages[i]["type"], messages[i]["reason"], messages[i]["task"], messages[i]["step"]),
                             ("checkpoint", "task", t + 1, 0))
            i += 1
    test.assertEqual(i, len(messages) - 1, kinds[i:])


class EndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.prepared = make_prepared(cls.tmp.name, tasks=2, schedule="linear", modes=("next", "cont"))
        lrs: list[float] = []
        original = Optimizer.apply

        def recording(self, grads, params, lr):
            lrs.append(lr)
            return original(self, grads, params, lr)

        with mock.patch.object(Optimizer, "apply", recording):
            cls.rc, cls.messages = run_inprocess(cls.prepared.run_dir)
        cls.lrs = lrs

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_exits_0_in_the_documented_order(self):
        self.assertEqual(self.rc, 0, of_type(self.messages, "error"))
        check_order(self, self.messages, self.prepared.manifest)

    def test_hello(self):
        hello = self.messages[0]
        for key in ("torch", "transformers", "device", "deviceName", "isGpu", "world", "shard", "precision",
                    "parameters", "layers", "targets"):
            self.assertIn(key, hello)
        self.assertEqual((hello["device"], hello["isGpu"], hello["world"], hello["shard"]), ("cpu", False, 1, "none"))
        self.assertEqual((hello["parameters"], hello["layers"]), (20768, 2))

    def test_learning_rates_come_from_the_manifest(self):
        planned = [lr for t in self.prepared.manifest["tasks"] for lr in t["lr"]]
        self.assertEqual(self.lrs, planned)
        for m in of_type(self.messages, "step"):
            self.assertEqual(m["lr"], self.prepared.manifest["tasks"][m["task"]]["lr"][m["step"] - 1])

    def test_steps(self):
        steps = of_type(self.messages, "step")
        self.assertEqual([m["step"] for m in steps if m["task"] == 0], [2, 4, 6])
        self.assertEqual([m["globalStep"] for m in steps], [2, 4, 6, 8, 10, 12])
        self.assertEqual([m["progress"] for m in steps if m["task"] == 1], [2 / 6, 4 / 6, 1.0])
        for m in steps:
            # Every step's loss since the previous message, and their mean.
            self.assertEqual(len(m["losses"]), 2)
            self.assertAlmostEqual(m["loss"], sum(m["losses"]) / 2, places=12)
            self.assertGreater(m["tokensPerSecond"], 0)
            self.assertGreater(m["memoryBytes"], 0)
        self.assertLess(steps[2]["loss"], steps[0]["loss"])  # it learns
        started = of_type(self.messages, "task-started")
        self.assertEqual([m["trainableParameters"] for m in started], [20768, 20768])

    def test_accuracies_are_computable_from_scores(self):
        expected = self.prepared.expected
        matrix = {}
        for m in of_type(self.messages, "scores"):
            rows = m["scores"]
            n_labels = 2
            self.assertTrue(all(len(r) == n_labels for r in rows))
            self.assertEqual(len(rows), len(expected[m["task"]][m["split"]]))
            acc = accuracy(rows, expected[m["task"]][m["split"]])
            self.assertTrue(0 <= acc <= 100)
            matrix[(m["afterTask"], m["task"], m["split"], m["mode"])] = acc
        self.assertEqual(len(matrix), 3 * 2 * 2 * 2)
        # Training moves the scores: task 0's after task 0 differ from zero-shot.
        zero = [m for m in of_type(self.messages, "scores") if m["afterTask"] == -1][0]["scores"]
        after = [m for m in of_type(self.messages, "scores") if m["afterTask"] == 0][0]["scores"]
        self.assertNotEqual(zero, after)

    def test_task_checkpoint_folder(self):
        cp = of_type(self.messages, "checkpoint")
        self.assertEqual([(m["path"], m["task"], m["step"], m["reason"]) for m in cp],
                         [("checkpoints/torch-6-task", 1, 0, "task")])
        folder = os.path.join(self.prepared.run_dir, cp[0]["path"])
        self.assertEqual(sorted(os.listdir(folder)),
                         ["meta.json", "method.pt", "model.safetensors", "optimizer.safetensors", "rng-rank0.pt"])
        with open(os.path.join(folder, "meta.json")) as f:
            meta = json.load(f)
        self.assertEqual(meta["position"], {"task": 1, "epoch": 0, "batch": 0, "taskStep": 0, "globalStep": 6})
        self.assertEqual((meta["world"], meta["shard"], meta["reason"], meta["engine"]), (1, "none", "task", "torch"))
        self.assertEqual(meta["optimizer"]["name"], "adamw")
        self.assertFalse([n for n in os.listdir(os.path.dirname(folder)) if n.startswith(".tmp")])


class SubprocessTest(unittest.TestCase):
    def test_module_entry_point_and_generate_mode(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = make_prepared(tmp, tasks=1, train=8, epochs=1, modes=("next", "generate"), checkpoint_every="never")
            rc, messages, proc = run_subprocess(p.run_dir)
            self.assertEqual(rc, 0, proc.stderr[-3000:])
            check_order(self, messages, p.manifest)
            rc2, inproc = run_inprocess(p.run_dir)
            self.assertEqual(rc2, 0)
            gen = [m for m in messages if m["type"] == "scores" and m["mode"] == "generate"]
            self.assertTrue(gen and all(len(o) <= 3 for m in gen for o in m["outputs"]))
            for a, b in zip(of_type(messages, "scores"), of_type(inproc, "scores")):
                if a["mode"] == "generate":
                    self.assertEqual(a["outputs"], b["outputs"])
                else:
                    for ra, rb in zip(a["scores"], b["scores"]):
                        for x, y in zip(ra, rb):
                            self.assertAlmostEqual(x, y, delta=1e-5)
            self.assertNotIn("Traceback", proc.stderr)

    def test_a_failure_is_an_error_message_and_exit_1(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = make_prepared(tmp, tasks=1)
            os.remove(os.path.join(p.run_dir, "prepared", "train-0.jsonl"))
            log = io.StringIO()
            with contextlib.redirect_stderr(log):
                rc, messages = run_inprocess(p.run_dir)
            self.assertEqual(rc, 1)
            self.assertEqual([m["type"] for m in messages], ["error"])
            self.assertIn("tasks[0].train.file", messages[0]["message"])
            self.assertIn("train-0.jsonl", messages[0]["message"])
            self.assertIn("Traceback", log.getvalue())

    def test_a_failure_during_training_names_the_step(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = make_prepared(tmp, tasks=1, zero_shot=False, lr=1e30, grad_clip=0, optimizer="sgd")
            with contextlib.redirect_stderr(io.StringIO()):
                rc, messages = run_inprocess(p.run_dir)
            self.assertEqual(rc, 1)
            err = messages[-1]
            self.assertEqual(err["type"], "error")
            self.assertIn("task 0 (task0), step", err["where"])
            # The step message before it carries the non-finite loss as null, for the trainer's checks.
            last_step = of_type(messages, "step")[-1]
            self.assertIsNone(last_step["loss"])
            self.assertIn(None, last_step["losses"])
            self.assertNotIn("terms", last_step)
            self.assertIn("is not finite", err["message"])
            self.assertIn("gradient clipping", err["hint"])


class PolicyTest(unittest.TestCase):
    def run_policy(self, every, **kw):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        p = make_prepared(tmp.name, tasks=2, checkpoint_every=every, zero_shot=False, modes=("next",), **kw)
        rc, messages = run_inprocess(p.run_dir)
        self.assertEqual(rc, 0, of_type(messages, "error"))
        check_order(self, messages, p.manifest)
        return p, messages

    def test_every_n_steps_and_keep(self):
        p, messages = self.run_policy(4, keep=2)
        cps = [(m["reason"], m["path"]) for m in of_type(messages, "checkpoint")]
        self.assertEqual(cps, [("steps", "checkpoints/torch-4-steps"), ("task", "checkpoints/torch-6-task"),
                               ("steps", "checkpoints/torch-8-steps"), ("steps", "checkpoints/torch-12-steps")])
        # The newest `keep` survive the run.
        left = sorted(n for n in os.listdir(os.path.join(p.run_dir, "checkpoints")))
        self.assertEqual(left, ["torch-12-steps", "torch-8-steps"])

    def test_every_epoch(self):
        _, messages = self.run_policy("epoch")
        cps = [(m["reason"], m["task"], m["step"]) for m in of_type(messages, "checkpoint")]
        self.assertEqual(cps, [("epoch", 0, 3), ("task", 1, 0), ("epoch", 1, 3)])

    def test_never(self):
        _, messages = self.run_policy("never")
        self.assertEqual(of_type(messages, "checkpoint"), [])

    def test_a_task_without_steps(self):
        # MTL's later tasks train nothing: task-started, no step, scores.
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        p = make_prepared(tmp.name, tasks=2, zero_shot=False, modes=("next",), method={"method": "mtl"})
        p.manifest["tasks"][1].update(epochs=[[], []], lr=[], steps=0)
        p.write()
        rc, messages = run_inprocess(p.run_dir)
        self.assertEqual(rc, 0, of_type(messages, "error"))
        check_order(self, messages, p.manifest)
        self.assertEqual({m["task"] for m in of_type(messages, "step")}, {0})


if __name__ == "__main__":
    unittest.main()


class VariantsTest(unittest.TestCase):
    def test_seq2seq_run(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = make_prepared(tmp, tasks=2, train=8, epochs=1, kind="seq2seq", modes=("next", "cont", "generate"))
            rc, messages = run_inprocess(p.run_dir)
            self.assertEqual(rc, 0, of_type(messages, "error"))
            check_order(self, messages, p.manifest)
            self.assertEqual(messages[0]["layers"], 4)

    def test_bf16_autocast(self):
        with tempfile.TemporaryDirectory() as tmp:
            p32 = make_prepared(os.path.join(tmp, "a"), tasks=1, epochs=1, zero_shot=False, modes=("next",))
            p16 = make_prepared(os.path.join(tmp, "b"), tasks=1, epochs=1, zero_shot=False, modes=("next",),
                                torch_settings={"precision": "bf16"})
            _, fp32 = run_inprocess(p32.run_dir)
            rc, bf16 = run_inprocess(p16.run_dir)
            self.assertEqual(rc, 0, of_type(bf16, "error"))
            self.assertEqual(bf16[0]["precision"], "bf16")
            for a, b in zip(of_type(bf16, "step"), of_type(fp32, "step")):
                self.assertAlmostEqual(a["loss"], b["loss"], delta=0.05 * b["loss"])

    def test_per_task_starts_every_task_from_the_loaded_weights(self):
        from sculpt_torch.methods import create_method
        from sculpt_torch.methods.base import MethodContext
        from sculpt_torch.model import load_model

        from .core_fixtures import TINY_LLAMA

        model = load_model(TINY_LLAMA, "causal")
        method = create_method({"method": "per-task"})
        ctx = MethodContext(model=model, manifest=None, config={}, task=0, seed=0, device=torch.device("cpu"))
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        method.setup(ctx)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        ctx.task = 1
        method.before_task(ctx)
        for n, p in model.named_parameters():
            self.assertTrue(torch.equal(p, before[n]), n)
        self.assertEqual(method.state_dict(), {})

    def test_registry(self):
        from sculpt_torch.methods import MethodError, available_methods, create_method
        from sculpt_torch.methods.base import Method

        for name in ("seqft", "replay", "mtl"):
            m = create_method({"method": name})
            self.assertIs(type(m), Method)
            self.assertEqual(m.name, name)
        self.assertEqual(set(available_methods()),
                         {"seqft", "replay", "mtl", "per-task", "adaptive-svd", "ewc", "lwf", "o-lora"})
        with self.assertRaises(MethodError) as cm:
            create_method({"method": "nope"})
        self.assertIn("nope", str(cm.exception))
