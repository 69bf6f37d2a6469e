"""prepared/manifest.json: read into dataclasses; a bad field is named with what was expected."""
import copy
import json
import os
import tempfile
import unittest

from sculpt_torch.manifest import ManifestError, load_manifest

from .core_fixtures import make_prepared


class ManifestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.prepared = make_prepared(cls.tmp.name, tasks=2, schedule="linear")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def write(self, change):
        manifest = copy.deepcopy(self.prepared.manifest)
        change(manifest)
        path = os.path.join(self.prepared.run_dir, "prepared", "manifest.json")
        with open(path, "w") as f:
            json.dump(manifest, f)
        self.addCleanup(self.prepared.write)
        return path

    def test_reads_every_section(self):
        m = load_manifest(self.prepared.run_dir)
        self.assertEqual(m.model.kind, "causal")
        self.assertEqual((m.tokens.pad, m.tokens.bos, m.tokens.eos), (0, 1, 2))
        self.assertEqual(len(m.tasks), 2)
        t = m.tasks[1]
        self.assertEqual(t.steps, len(t.lr))
        self.assertEqual(t.lr, self.prepared.manifest["tasks"][1]["lr"])
        self.assertEqual([e.mode for e in t.evaluations], ["next", "cont", "next", "cont"])
        self.assertEqual(m.training.step_event_interval, 2)
        self.assertEqual(m.checkpoint.every, "task")
        self.assertEqual(len(m.sha256), 64)

    def assertRefused(self, change, *fragments):
        path = self.write(change)
        with self.assertRaises(ManifestError) as cm:
            load_manifest(self.prepared.run_dir)
        text = str(cm.exception)
        self.assertIn(path, text)
        for f in fragments:
            self.assertIn(f, text)

    def test_errors_name_the_field(self):
        self.assertRefused(lambda m: m["tasks"][1]["epochs"][0][2].append(99), "tasks[1].epochs[0][2][", "[0, 12)")
        self.assertRefused(lambda m: m["tasks"][0]["lr"].pop(), "tasks[0].lr", "one learning rate per step")
        self.assertRefused(lambda m: m["tasks"][0].__setitem__("steps", 5), "tasks[0].steps", "found 5")
        self.assertRefused(lambda m: m["model"].pop("kind"), "model.kind", "missing")
        self.assertRefused(lambda m: m["checkpoint"].__setitem__("every", 0), "checkpoint.every")
        self.assertRefused(lambda m: m["tasks"][0]["evaluations"][0].__setitem__("candidates", [70]),
                           "tasks[0].evaluations[0].candidates[0]", "[0, 68)")
        self.assertRefused(lambda m: m.__setitem__("format", 2), "format", "found 2")

    def test_missing_manifest_names_the_file(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(ManifestError) as cm:
                load_manifest(d)
            self.assertIn(os.path.join(d, "prepared", "manifest.json"), str(cm.exception))


if __name__ == "__main__":
    unittest.main()
