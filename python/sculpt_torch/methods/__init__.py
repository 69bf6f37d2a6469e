"""The method registry: a resolved method config (`{"method": "<name>", ...}`) -> a Method instance.

SeqFT, replay and MTL are the base Method: what sets them apart is their training set (replay's buffer, MTL's
union of all tasks), which the trainer process writes into the prepared data, so the worker trains them alike.
The other methods live in their own modules and are imported only when a run asks for them.
"""
from __future__ import annotations

import importlib
from typing import Any

from .base import Batch, Method, MethodContext

__all__ = ["Batch", "Method", "MethodContext", "MethodError", "available_methods", "create_method"]

_PLAIN = ("seqft", "replay", "mtl")

# name -> (module under sculpt_torch.methods, class)
_MODULES: dict[str, tuple[str, str]] = {
    "per-task": ("per_task", "PerTask"),
    "adaptive-svd": ("adaptive_svd", "AdaptiveSvd"),
    "ewc": ("ewc", "Ewc"),
    "lwf": ("lwf", "Lwf"),
    "o-lora": ("olora", "OLora"),
}


class MethodError(ValueError):
    pass


def available_methods() -> list[str]:
    return [*_PLAIN, *_MODULES]


def method_class(name: str) -> type[Method]:
    if name in _PLAIN:
        return Method
    if name not in _MODULES:
        raise MethodError(f"method '{name}' is unknown to the torch worker (expected one of {', '.join(available_methods())})")
    module_name, class_name = _MODULES[name]
    full = f"{__name__}.{module_name}"
    try:
        module = importlib.import_module(full)
    except ModuleNotFoundError as e:
        if e.name != full:
            raise
        raise MethodError(f"method '{name}' is not available in this torch worker: {full} is missing") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise MethodError(f"method '{name}': {full} defines no class {class_name}")
    return cls


def create_method(config: dict[str, Any]) -> Method:
    name = config.get("method")
    if not isinstance(name, str):
        raise MethodError(f"the method config names no method: {config!r}")
    method = method_class(name)(config)
    if type(method) is Method:
        method.name = name
    return method
