"""The weight matrices the continual-learning methods act on, found in a Hugging Face model by module path.

Mirrors src/engine/models/inventory.ts (and the architectures' inventories in llama.ts, gpt2.ts, t5-config.ts):
every attention and MLP projection is a target, named by its Hugging Face state-dict key, with the block it sits
in (`layer`, counted over the encoder and then the decoder of an encoder-decoder model), its role and its
group. Besides the targets, every parameter gets a group (embedding, position, norm, head, bias), so that
methods can freeze "the norms" or "the biases" without knowing the architecture.

Orientation: nn.Linear stores W as [out, in] and computes y = x Wᵀ ('out_in'); GPT-2's Conv1D stores [in, out]
and computes y = x W ('in_out'). Methods that decompose a weight do so as it is stored (as the TypeScript engine
does, so `shape`, U_k and V_k mean the same in both engines); `as_out_in` gives the [out, in] view where the
math needs the direction of the map (importance: W x).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

import torch
from torch import nn

Orientation = Literal["out_in", "in_out"]

#: Prefixes that wrappers put in front of a model's own names (DDP's `module.`, torch.compile's `_orig_mod.`).
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class ConfigError(ValueError):
    """An option of the experiment config does not fit this model: each issue names its JSON path.

    The same shape as the TypeScript ConfigError (src/protocol/errors.ts): issues with `path`, `message`,
    `expected` and `actual`; the message lists `path: message` per issue. `where` and `hint` are what the
    worker's `error` message carries.
    """

    where = "config"
    hint = "Fix the config and start a new run."

    def __init__(self, issues: list[dict[str, Any]]):
        self.issues = issues
        super().__init__("\n".join(f"{i.get('path') or '(root)'}: {i['message']}" for i in issues))


@dataclass(eq=False)
class TargetMatrix:
    """One weight matrix a method may act on.

    Unpacks as `(name, parameter)`, so `for name, p in target_matrices(model)` reads like named_parameters().
    """

    #: Hugging Face key of the weight, e.g. 'model.layers.0.self_attn.q_proj.weight'.
    name: str
    #: The module path (the key without '.weight'), as PEFT and the reference fixtures name it.
    module_name: str
    #: Block index (encoder blocks first, then decoder blocks); -1 for the head and the embeddings.
    layer: int
    #: q k v o | qkv (GPT-2's fused c_attn) | gate up down (SwiGLU, T5 gated) | fc proj (GPT-2, T5 plain) |
    #: 'head' and 'embedding' for those matrices when a method targets them.
    role: str
    #: attention | mlp | cross-attention | head | embedding
    group: str
    orientation: Orientation
    #: The module that owns the weight (nn.Linear, Conv1D, nn.Embedding).
    module: nn.Module = field(repr=False)
    #: HF key of the projection's bias, or None.
    bias: str | None = None

    @property
    def parameter(self) -> nn.Parameter:
        # Read through the module: a method that wraps the module keeps the same Parameter object, and a
        # loader that replaces parameters is seen as it is now.
        return self.module.weight

    @property
    def shape(self) -> tuple[int, int]:
        """As stored (Conv1D: [in, out])."""
        s = self.parameter.shape
        return int(s[0]), int(s[1])

    @property
    def d_in(self) -> int:
        return self.shape[1] if self.orientation == "out_in" else self.shape[0]

    @property
    def d_out(self) -> int:
        return self.shape[0] if self.orientation == "out_in" else self.shape[1]

    @property
    def min_dim(self) -> int:
        return min(self.d_in, self.d_out)

    @property
    def max_dim(self) -> int:
        return max(self.d_in, self.d_out)

    def as_out_in(self, t: torch.Tensor | None = None) -> torch.Tensor:
        """`t` (default: the weight) viewed as [out, in], the matrix of x -> W x."""
        t = self.parameter if t is None else t
        return t if self.orientation == "out_in" else t.transpose(0, 1)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.name, self.parameter))


# Module paths of the target projections, per family. Each pattern gives the block index; the role table maps
# the last name to (role, group). T5's `wo` is 'down' after a gated pair and 'proj' after a plain `wi`.
_LLAMA = re.compile(r"^model\.layers\.(\d+)\.(self_attn|mlp)\.(q|k|v|o|gate|up|down)_proj$")
_GPT2 = re.compile(r"^transformer\.h\.(\d+)\.(attn|mlp)\.(c_attn|c_proj|c_fc)$")
_T5 = re.compile(
    r"^(encoder|decoder)\.block\.(\d+)\.layer\.(\d+)\.(SelfAttention|EncDecAttention|DenseReluDense)\.(q|k|v|o|wi_0|wi_1|wi|wo)$"
)
_BLOCK = re.compile(r"^(model\.layers|transformer\.h|encoder\.block|decoder\.block)\.(\d+)$")


def _strip(name: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in _WRAPPER_PREFIXES:
            if name.startswith(p):
                name, changed = name[len(p):], True
    return name


def model_family(model: nn.Module) -> str:
    """'llama' (llama, mistral, qwen2), 'gpt2' or 't5' (t5, mt5), from the config's model_type or the names."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type in ("llama", "mistral", "qwen2"):
        return "llama"
    if model_type in ("gpt2",):
        return "gpt2"
    if model_type in ("t5", "mt5"):
        return "t5"
    names = [_strip(n) for n, _ in model.named_modules()]
    if any(_LLAMA.match(n) for n in names):
        return "llama"
    if any(_GPT2.match(n) for n in names):
        return "gpt2"
    if any(_T5.match(n) for n in names):
        return "t5"
    raise ValueError(
        f"no attention or MLP projections found in {type(model).__name__} (model_type {model_type!r}); "
        "supported: llama, mistral, qwen2, gpt2, t5, mt5"
    )


def _encoder_layers(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    n = getattr(config, "num_layers", None)
    if isinstance(n, int):
        return n
    return sum(1 for name, _ in model.named_modules() if re.match(r"^encoder\.block\.\d+$", _strip(name)))


def _is_gated_t5(model: nn.Module) -> bool:
    return any(_strip(n).endswith("DenseReluDense.wi_0") for n, _ in model.named_modules())


def target_matrices(model: nn.Module) -> list[TargetMatrix]:
    """Every attention and MLP projection (cross-attention included), in the TypeScript inventory's order."""
    family = model_family(model)
    out: list[TargetMatrix] = []
    enc = _encoder_layers(model) if family == "t5" else 0
    gated = _is_gated_t5(model) if family == "t5" else False
    for raw, module in model.named_modules():
        name = _strip(raw)
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            continue
        has_bias = isinstance(getattr(module, "bias", None), torch.Tensor)
        if family == "llama" and (m := _LLAMA.match(name)):
            layer, part, r = int(m.group(1)), m.group(2), m.group(3)
            group = "attention" if part == "self_attn" else "mlp"
            out.append(TargetMatrix(f"{name}.weight", name, layer, r, group, "out_in", module,
                                    f"{name}.bias" if has_bias else None))
        elif family == "gpt2" and (m := _GPT2.match(name)):
            layer, part, leaf = int(m.group(1)), m.group(2), m.group(3)
            role = {("attn", "c_attn"): "qkv", ("attn", "c_proj"): "o", ("mlp", "c_fc"): "fc",
                    ("mlp", "c_proj"): "proj"}.get((part, leaf))
            if role is None:
                continue
            group = "attention" if part == "attn" else "mlp"
            out.append(TargetMatrix(f"{name}.weight", name, layer, role, group, "in_out", module,
                                    f"{name}.bias" if has_bias else None))
        elif family == "t5" and (m := _T5.match(name)):
            stack, block, sub, leaf = m.group(1), int(m.group(2)), m.group(4), m.group(5)
            layer = block if stack == "encoder" else enc + block
            if sub == "DenseReluDense":
                role = {"wi_0": "gate", "wi_1": "up", "wi": "fc", "wo": "down" if gated else "proj"}[leaf]
                group = "mlp"
            else:
                role = leaf
                group = "attention" if sub == "SelfAttention" else "cross-attention"
            out.append(TargetMatrix(f"{name}.weight", name, layer, role, group, "out_in", module,
                                    f"{name}.bias" if has_bias else None))
    return out


def _tied_head(model: nn.Module) -> bool:
    head, emb = _output_embeddings(model), _input_embeddings(model)
    return head is None or emb is None or head.weight is emb.weight


def _input_embeddings(model: nn.Module) -> nn.Module | None:
    get = getattr(model, "get_input_embeddings", None)
    try:
        return get() if callable(get) else None
    except (NotImplementedError, AttributeError):
        return None


def _output_embeddings(model: nn.Module) -> nn.Module | None:
    get = getattr(model, "get_output_embeddings", None)
    try:
        return get() if callable(get) else None
    except (NotImplementedError, AttributeError):
        return None


def _module_path(model: nn.Module, module: nn.Module | None) -> str | None:
    if module is None:
        return None
    for raw, m in model.named_modules():
        if m is module:
            return _strip(raw)
    return None


def head_and_embedding_matrices(model: nn.Module) -> list[TargetMatrix]:
    """The token embedding and, when not tied to it, the output head, as [vocab, d] matrices (read as
    nn.Linear: y = h Eᵀ), layer -1 and the group as role, as src/engine/methods/rank-pattern.ts adds them."""
    out: list[TargetMatrix] = []
    emb = _input_embeddings(model)
    emb_path = _module_path(model, emb)
    head = _output_embeddings(model)
    head_path = _module_path(model, head)
    # Checkpoint order: the embedding comes first in every supported architecture, the head last.
    if emb is not None and emb_path is not None:
        out.append(TargetMatrix(f"{emb_path}.weight", emb_path, -1, "embedding", "embedding", "out_in", emb))
    if head is not None and head_path is not None and not _tied_head(model):
        out.append(TargetMatrix(f"{head_path}.weight", head_path, -1, "head", "head", "out_in", head))
    return out


def parameter_groups(model: nn.Module) -> dict[str, str]:
    """The inventory group of every parameter (named_parameters keys, tied duplicates left out): 'attention',
    'mlp', 'cross-attention' (target weights), 'bias' (any projection bias), 'norm' (norm weights and
    biases), 'embedding', 'position' (GPT-2's wpe, T5's relative attention bias), 'head' (an untied head)."""
    targets = target_matrices(model)
    by_key: dict[str, str] = {t.name: t.group for t in targets}
    for t in targets:
        if t.bias:
            by_key[t.bias] = "bias"
    emb_path = _module_path(model, _input_embeddings(model))
    head_path = _module_path(model, _output_embeddings(model))
    out: dict[str, str] = {}
    for raw, _ in model.named_parameters():
        name = _strip(raw)
        if name in by_key:
            out[name] = by_key[name]
        elif emb_path is not None and name == f"{emb_path}.weight":
            out[name] = "embedding"
        elif head_path is not None and name == f"{head_path}.weight":
            out[name] = "head"
        elif re.search(r"(^|\.)wpe\.weight$|relative_attention_bias\.weight$", name):
            out[name] = "position"
        elif re.search(r"(norm|ln_\d|ln_f|layer_norm|layernorm)[^.]*\.(weight|bias)$", name, re.IGNORECASE):
            out[name] = "norm"
        elif name.endswith(".bias"):
            out[name] = "bias"
        else:
            out[name] = "other"
    return out


def named_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The model's parameters by Hugging Face key (wrapper prefixes removed, tied duplicates once)."""
    return {_strip(n): p for n, p in model.named_parameters()}


def block_modules(model: nn.Module) -> list[tuple[int, nn.Module]]:
    """The transformer blocks with their layer index (encoder blocks first, then decoder blocks)."""
    family = model_family(model)
    enc = _encoder_layers(model) if family == "t5" else 0
    out: list[tuple[int, nn.Module]] = []
    for raw, module in model.named_modules():
        m = _BLOCK.match(_strip(raw))
        if not m:
            continue
        index = int(m.group(2))
        out.append((enc + index if m.group(1) == "decoder.block" else index, module))
    return out


def module_slots(model: nn.Module, module: nn.Module) -> list[tuple[nn.Module, str]]:
    """Every (parent, attribute) that holds `module`: a module registered at several paths (T5's stacks share
    the embedding module in some versions) is listed once per path."""
    out: list[tuple[nn.Module, str]] = []
    for parent in model.modules():
        for attr, child in parent.named_children():
            if child is module:
                out.append((parent, attr))
    return out


def replace_module(model: nn.Module, module: nn.Module, new: nn.Module) -> None:
    """Puts `new` wherever `module` sits in the model."""
    slots = module_slots(model, module)
    if not slots:
        raise KeyError(f"the model does not hold the module {type(module).__name__} to replace")
    for parent, attr in slots:
        setattr(parent, attr, new)


def manifest_value(manifest: Any, key: str, default: Any = None) -> Any:
    """A field of the prepared-data manifest (docs/torch-engine.md), whether the training loop hands the parsed
    JSON or an object with attributes (camelCase or snake_case names)."""
    if manifest is None:
        return default
    if isinstance(manifest, dict):
        return manifest.get(key, default)
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
    for name in (key, snake):
        if hasattr(manifest, name):
            return getattr(manifest, name)
    return default


def method_path(ctx: Any, given: str | None) -> str:
    """The JSON path of the method's config entry (`methods[i]`), for errors: as given to the method, else from
    the manifest's methodIndex."""
    if given:
        return given
    index = manifest_value(getattr(ctx, "manifest", None), "methodIndex")
    return f"methods[{index}]" if isinstance(index, int) else "method"
