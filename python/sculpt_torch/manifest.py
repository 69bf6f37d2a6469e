"""`<runDir>/prepared/manifest.json` as dataclasses (the format is in docs/torch-engine.md).

Every check names the file and the field (`tasks[1].epochs[0][3]`) with what was expected and what was found: a
manifest is written by the trainer process, so a bad one is a bug or a hand edit, and the message must say where.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

MANIFEST_FORMAT = 1
PREPARED = "prepared"
MANIFEST_FILE = "manifest.json"


class ManifestError(ValueError):
    def __init__(self, path: str, where: str, expected: str, actual: Any = None, found: bool = True):
        self.path = path
        self.where = where
        got = f", found {describe(actual)}" if found else ", which is missing"
        super().__init__(f"{path}: {where} must be {expected}{got}")


def describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class ModelInfo:
    dir: str
    arch: str
    kind: str  # causal | seq2seq
    vocab_size: int


@dataclass
class Tokens:
    pad: int
    bos: int | None
    eos: int | None


@dataclass
class TrainSet:
    file: str
    examples: int


@dataclass
class Evaluation:
    split: str  # test | validation
    file: str
    mode: str  # next | cont | generate
    candidates: list[int] | None = None
    continuations: list[list[int]] | None = None
    max_new_tokens: int | None = None
    #: Prompts in the file, when the manifest says (checked when the file is read).
    examples: int | None = None


@dataclass
class TaskSpec:
    index: int
    name: str
    labels: list[str]
    train: TrainSet
    #: epochs[e][b]: indices into the train file of batch b of epoch e.
    epochs: list[list[list[int]]]
    #: lr[s - 1]: the learning rate of the task's optimizer step s (1-based).
    lr: list[float]
    steps: int
    calibration: str | None
    evaluations: list[Evaluation]


@dataclass
class Training:
    optimizer: str
    weight_decay: float
    grad_clip: float
    step_event_interval: int
    eval_batch_size: int
    batch_size: int
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckpointPolicy:
    every: str | int  # task | epoch | never | N steps
    keep: int


@dataclass
class TorchSettings:
    shard: str  # auto | fsdp2 | ddp | none
    precision: str  # fp32 | bf16
    device: str  # auto | cuda | cpu
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalSettings:
    zero_shot: bool
    batch_size: int
    max_new_tokens: int


@dataclass
class Manifest:
    path: str
    prepared: str
    run_dir: str
    model: ModelInfo
    tokens: Tokens
    seed: int
    method_index: int
    method: dict[str, Any]
    training: Training
    checkpoint: CheckpointPolicy
    torch: TorchSettings
    eval: EvalSettings
    tasks: list[TaskSpec]
    sha256: str
    #: `checkpoint.final`: the folder (absolute) that rank 0 writes the fine-tuned model.safetensors into after the
    #: last task's evaluation, before `done`; None: no final model.
    final_model: str | None = None

    def file(self, name: str) -> str:
        """A file of the prepared folder by its manifest name."""
        return os.path.join(self.prepared, name)


class _Reader:
    """Typed access to one JSON object, with the field path kept for messages."""

    def __init__(self, path: str, obj: Any, where: str):
        self.path = path
        self.where = where
        if not isinstance(obj, dict):
            raise ManifestError(path, where or "the manifest", "a JSON object", obj)
        self.obj = obj

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.obj and self.obj[key] is not None

    def raw(self, key: str, default: Any = ..., expected: str = "present") -> Any:
        if key not in self.obj:
            if default is ...:
                raise ManifestError(self.path, self.at(key), expected, found=False)
            return default
        return self.obj[key]

    def child(self, key: str, default: Any = ...) -> "_Reader":
        value = self.raw(key, default, "a JSON object")
        return _Reader(self.path, value, self.at(key))

    def int(self, key: str, default: Any = ..., minimum: int | None = None, nullable: bool = False) -> Any:
        what = "an integer" + (f" >= {minimum}" if minimum is not None else "") + (" or null" if nullable else "")
        value = self.raw(key, default, what)
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
            raise ManifestError(self.path, self.at(key), what, value)
        return value

    def number(self, key: str, default: Any = ..., minimum: float | None = None) -> float:
        what = "a finite number" + (f" >= {minimum}" if minimum is not None else "")
        value = self.raw(key, default, what)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ManifestError(self.path, self.at(key), what, value)
        if minimum is not None and value < minimum:
            raise ManifestError(self.path, self.at(key), what, value)
        return float(value)

    def string(self, key: str, default: Any = ..., choices: tuple[str, ...] | None = None) -> str:
        what = " | ".join(repr(c) for c in choices) if choices else "a non-empty string"
        value = self.raw(key, default, what)
        if not isinstance(value, str) or not value or (choices and value not in choices):
            raise ManifestError(self.path, self.at(key), what, value)
        return value

    def boolean(self, key: str, default: Any = ...) -> bool:
        value = self.raw(key, default, "true or false")
        if not isinstance(value, bool):
            raise ManifestError(self.path, self.at(key), "true or false", value)
        return value

    def array(self, key: str, default: Any = ...) -> list:
        value = self.raw(key, default, "an array")
        if not isinstance(value, list):
            raise ManifestError(self.path, self.at(key), "an array", value)
        return value


def _int_list(
    path: str, where: str, value: Any, below: int | None = None, what: tuple[str, str] = ("a token id", "token ids")
) -> list[int]:
    bound = f" in [0, {below})" if below is not None else " >= 0"
    if not isinstance(value, list):
        raise ManifestError(path, where, f"an array of {what[1]}{bound}", value)
    for i, x in enumerate(value):
        if isinstance(x, bool) or not isinstance(x, int) or x < 0 or (below is not None and x >= below):
            raise ManifestError(path, f"{where}[{i}]", f"{what[0]}{bound}", x)
    return value


def _evaluation(path: str, r: _Reader, vocab: int) -> Evaluation:
    mode = r.string("mode", choices=("next", "cont", "generate"))
    ev = Evaluation(split=r.string("split", choices=("test", "validation")), file=r.string("file"), mode=mode,
                    examples=r.int("examples", None, minimum=0, nullable=True))
    if mode == "next":
        ev.candidates = _int_list(path, r.at("candidates"), r.raw("candidates", expected="an array of token ids"), vocab)
        if not ev.candidates:
            raise ManifestError(path, r.at("candidates"), "at least one token id", ev.candidates)
    elif mode == "cont":
        conts = r.array("continuations")
        if not conts:
            raise ManifestError(path, r.at("continuations"), "at least one continuation", conts)
        ev.continuations = []
        for k, c in enumerate(conts):
            ids = _int_list(path, f"{r.at('continuations')}[{k}]", c, vocab)
            if not ids:
                raise ManifestError(path, f"{r.at('continuations')}[{k}]", "at least one token id", ids)
            ev.continuations.append(ids)
    else:
        ev.max_new_tokens = r.int("maxNewTokens", None, minimum=1, nullable=True)
    return ev


def _task(path: str, r: _Reader, position: int, vocab: int) -> TaskSpec:
    index = r.int("index", minimum=0)
    if index != position:
        raise ManifestError(path, r.at("index"), f"{position} (tasks are listed in the run's order)", index)
    train_r = r.child("train")
    train = TrainSet(file=train_r.string("file"), examples=train_r.int("examples", minimum=0))
    epochs_raw = r.array("epochs")
    epochs: list[list[list[int]]] = []
    for e, batches in enumerate(epochs_raw):
        where_e = f"{r.at('epochs')}[{e}]"
        if not isinstance(batches, list):
            raise ManifestError(path, where_e, "an array of batches", batches)
        epoch: list[list[int]] = []
        for b, idx in enumerate(batches):
            where_b = f"{where_e}[{b}]"
            ids = _int_list(path, where_b, idx, train.examples, ("an example index", "example indices"))
            if not ids:
                raise ManifestError(path, where_b, "a non-empty batch of example indices", ids)
            epoch.append(ids)
        epochs.append(epoch)
    steps = r.int("steps", minimum=0)
    planned = sum(len(e) for e in epochs)
    if planned != steps:
        raise ManifestError(path, r.at("steps"), f"the number of batches in {r.at('epochs')} ({planned})", steps)
    lr_raw = r.array("lr")
    if len(lr_raw) != steps:
        raise ManifestError(path, r.at("lr"), f"one learning rate per step ({steps} entries)", f"{len(lr_raw)} entries")
    lr: list[float] = []
    for s, value in enumerate(lr_raw):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ManifestError(path, f"{r.at('lr')}[{s}]", "a finite number >= 0", value)
        lr.append(float(value))
    labels = r.array("labels", [])
    evals = [
        _evaluation(path, _Reader(path, ev, f"{r.at('evaluations')}[{j}]"), vocab)
        for j, ev in enumerate(r.array("evaluations", []))
    ]
    calibration = r.string("calibration") if r.has("calibration") else None
    return TaskSpec(
        index=index,
        name=r.string("name"),
        labels=[str(x) for x in labels],
        train=train,
        epochs=epochs,
        lr=lr,
        steps=steps,
        calibration=calibration,
        evaluations=evals,
    )


def load_manifest(run_dir: str) -> Manifest:
    prepared = os.path.join(run_dir, PREPARED)
    path = os.path.join(prepared, MANIFEST_FILE)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ManifestError(path, "the file", "present (the trainer process writes it before starting the worker)",
                            found=False) from None
    try:
        obj = json.loads(data)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    return parse_manifest(obj, path, prepared, hashlib.sha256(data).hexdigest())


def parse_manifest(obj: Any, path: str, prepared: str, sha256: str = "") -> Manifest:
    r = _Reader(path, obj, "")
    fmt = r.int("format")
    if fmt != MANIFEST_FORMAT:
        raise ManifestError(path, "format", f"{MANIFEST_FORMAT} (this worker's manifest format)", fmt)
    m = r.child("model")
    model = ModelInfo(
        dir=m.string("dir"),
        arch=m.string("arch"),
        kind=m.string("kind", choices=("causal", "seq2seq")),
        vocab_size=m.int("vocabSize", minimum=1),
    )
    t = r.child("tokens")
    tokens = Tokens(
        pad=t.int("pad", minimum=0),
        bos=t.int("bos", None, minimum=0, nullable=True),
        eos=t.int("eos", None, minimum=0, nullable=True),
    )
    method = r.child("method").obj
    if not isinstance(method.get("method"), str):
        raise ManifestError(path, "method.method", "the method's name", method.get("method"), "method" in method)
    tr = r.child("training")
    training = Training(
        optimizer=tr.string("optimizer", "adamw", choices=("adamw", "adam", "sgd")),
        weight_decay=tr.number("weightDecay", 0.0, minimum=0),
        grad_clip=tr.number("gradClip", 1.0, minimum=0),
        step_event_interval=tr.int("stepEventInterval", 10, minimum=1),
        eval_batch_size=tr.int("evalBatchSize", 32, minimum=1),
        batch_size=tr.int("batchSize", 16, minimum=1),
        raw=tr.obj,
    )
    cp = r.child("checkpoint", {})
    every = cp.raw("every", "task")
    if not (every in ("task", "epoch", "never") or (isinstance(every, int) and not isinstance(every, bool) and every >= 1)):
        raise ManifestError(path, "checkpoint.every", "'task' | 'epoch' | 'never' | an integer >= 1", every)
    checkpoint = CheckpointPolicy(every=every, keep=cp.int("keep", 2, minimum=1))
    to = r.child("torch", {})
    torch_settings = TorchSettings(
        shard=to.string("shard", "auto", choices=("auto", "fsdp2", "ddp", "none")),
        precision=to.string("precision", "fp32", choices=("fp32", "bf16")),
        device=to.string("device", "auto", choices=("auto", "cuda", "cpu")),
        raw=to.obj,
    )
    ev = r.child("eval", {})
    eval_settings = EvalSettings(
        zero_shot=ev.boolean("zeroShot", True),
        batch_size=ev.int("batchSize", training.eval_batch_size, minimum=1),
        max_new_tokens=ev.int("maxNewTokens", 16, minimum=1),
    )
    tasks = [
        _task(path, _Reader(path, task, f"tasks[{i}]"), i, model.vocab_size) for i, task in enumerate(r.array("tasks"))
    ]
    if not tasks:
        raise ManifestError(path, "tasks", "at least one task", [])
    final_model = r.raw("finalModel", None)
    if final_model is not None and (not isinstance(final_model, str) or not os.path.isabs(final_model)):
        raise ManifestError(path, "finalModel", "an absolute folder path or null", final_model)
    for i, task in enumerate(tasks):
        files = [("train.file", task.train.file)]
        files += [("calibration", task.calibration)] if task.calibration else []
        files += [(f"evaluations[{j}].file", ev.file) for j, ev in enumerate(task.evaluations)]
        for where, name in files:
            if os.path.basename(name) != name or not os.path.isfile(os.path.join(prepared, name)):
                raise ManifestError(path, f"tasks[{i}].{where}", f"a file in {prepared}", name)
    return Manifest(
        path=path,
        prepared=prepared,
        run_dir=r.string("runDir", os.path.dirname(prepared)),
        model=model,
        tokens=tokens,
        seed=r.int("seed", 0),
        method_index=r.int("methodIndex", 0, minimum=0),
        method=method,
        training=training,
        checkpoint=checkpoint,
        torch=torch_settings,
        eval=eval_settings,
        tasks=tasks,
        sha256=sha256,
        final_model=final_model,
    )
