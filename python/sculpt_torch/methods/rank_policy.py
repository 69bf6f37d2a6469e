"""How many singular directions of each target matrix adaptive SVD protects (k), and PEFT OSF's rank_pattern.

Mirrors src/engine/methods/rank-policy.ts and rank-pattern.ts, numbers, clamping, warnings and error paths
included. For a matrix of min_dim = min(d_out, d_in), max_dim = max(d_out, d_in), at the t-th protected
boundary (t = 0 first):

  adaptive          I = importance of the matrix, I_n = I / mean(I) ('mean', the paper) or (I - min) / (max - min)
                    ('minmax'), ratio = mrr + I_n (trr - mrr), k = clamp(round(ratio * min_dim), 1, min_dim)
  fixed             k = clamp(floor(ratio * min_dim), 1, min_dim), a given k, or PEFT's effective_rank /
                    rank_pattern r: clamp(r, 1, min_dim) for an integer r, clamp(floor(r * min_dim), 1, min_dim)
                    for a fraction; the first matching pattern wins
  schedule          ratio_t = min(max, start + step * t), k as for adaptive
  authors-schedule  f_t = start + step * t, k = clamp(floor(f_t * max_dim), 1, min_dim)
  energy            tau_t = min(maxThreshold, threshold + thresholdStep * t),
                    k = min { k >= 1 : sum_{i<=k} sigma_i² / sum_i sigma_i² >= tau_t }

round() is JavaScript's Math.round (halves up), not Python's round (halves to even), so both engines pick the
same k. Importance, per matrix (the paper): mean over calibration tokens of cos(x[:m], (W x)[:m]),
m = min(d_in, d_out), x the matrix's input activation. Per block (AdaSVD): mean cosine between the block's input
and output hidden states, shared by all matrices of the block.

Rank patterns are JavaScript regular expressions (the config's language); they are translated to Python's `re`
for the few constructs the two spell differently (named groups and their back-references).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping, Protocol, Sequence

import torch
from torch import nn

from ..targets import ConfigError, TargetMatrix, block_modules, head_and_embedding_matrices, target_matrices
from .projection import reshard

# --------------------------------------------------------------------------------------------------------------
# Numbers and keys as JavaScript writes them (warnings and JSON paths are compared across engines)


def js_number(v: float | int) -> str:
    """`${v}` in JavaScript: integers without '.0', the shortest round-trip digits, exponents outside
    [1e-6, 1e21)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "0"
    sign, digits, exp = Decimal(repr(float(v))).normalize().as_tuple()
    s = "".join(map(str, digits))
    n = exp + len(s)  # position of the decimal point relative to the digits
    prefix = "-" if sign else ""
    if len(s) <= n <= 21:
        return prefix + s + "0" * (n - len(s))
    if 0 < n <= 21:
        return prefix + s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return prefix + "0." + "0" * (-n) + s
    e = n - 1
    mantissa = s[0] + ("." + s[1:] if len(s) > 1 else "")
    return f"{prefix}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def js_exponential(v: float, digits: int) -> str:
    """JavaScript's v.toExponential(digits), e.g. -1.234e-3."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    mantissa, exp = f"{v:.{digits}e}".split("e")
    return f"{mantissa}e{'+' if int(exp) >= 0 else '-'}{abs(int(exp))}"


def js_round(x: float) -> float:
    """JavaScript's Math.round: the nearest integer, halves toward +infinity. Not floor(x + 0.5), whose sum
    rounds 0.49999999999999994 up to 1; x - floor(x) is exact."""
    if not math.isfinite(x):
        return x
    r = math.floor(x)
    return float(r + 1 if x - r >= 0.5 else r)


def _round4(v: float) -> float:
    return js_round(v * 1e4) / 1e4


def _is_array_index(key: str) -> bool:
    return key.isdigit() and (key == "0" or not key.startswith("0")) and int(key) < 2**32 - 1


def js_key_order(obj: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """An object's entries in JavaScript's order: array-index keys ascending, then the rest as written."""
    items = list(obj.items())
    index = sorted((kv for kv in items if _is_array_index(kv[0])), key=lambda kv: int(kv[0]))
    return index + [kv for kv in items if not _is_array_index(kv[0])]


def json_string(s: str) -> str:
    """JSON.stringify of a string."""
    return json.dumps(s, ensure_ascii=False)


def is_integer(v: float | int) -> bool:
    """Number.isInteger: JSON does not tell 1.0 from 1, so neither does the rank policy."""
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


# --------------------------------------------------------------------------------------------------------------
# Rank patterns (rank-pattern.ts)


class Dims(Protocol):
    name: str
    d_in: int
    d_out: int


@dataclass
class MatrixDims:
    """A matrix as the rank policy sees it (name and dimensions), for callers without a model."""

    name: str
    d_out: int
    d_in: int
    layer: int = 0
    role: str = "q"

    @property
    def shape(self) -> tuple[int, int]:
        return self.d_out, self.d_in


def min_dim(m: Dims) -> int:
    return min(m.d_in, m.d_out)


def max_dim(m: Dims) -> int:
    return max(m.d_in, m.d_out)


def module_name(name: str) -> str:
    """The module a weight belongs to, as PEFT names modules: the parameter name without `.weight`."""
    return name[: -len(".weight")] if name.endswith(".weight") else name


TARGET_OPTIONS = ("attention", "mlp", "cross-attention", "head", "embeddings")


def constrained_matrices(model: nn.Module, targets: Sequence[str]) -> list[TargetMatrix]:
    """The matrices a `targets` option selects: the projections of the wanted groups, then the head and the
    embeddings when asked for (the head only when it is not tied to the embeddings)."""
    wanted = set(targets)
    out = [t for t in target_matrices(model) if t.group in wanted]
    for t in head_and_embedding_matrices(model):
        if (t.group == "head" and "head" in wanted) or (t.group == "embedding" and "embeddings" in wanted):
            out.append(t)
    return out


@dataclass
class CompiledPattern:
    source: str
    re: re.Pattern[str]
    value: float | int


def js_regex(source: str) -> re.Pattern[str]:
    """A JavaScript regular expression (no flags) as a Python one: `(?<name>` is `(?P<name>` and `\\k<name>`
    is `(?P=name)` in Python; everything a rank pattern needs otherwise reads the same in both."""
    translated = re.sub(r"\(\?<(?![=!])", "(?P<", source)
    translated = re.sub(r"\\k<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P=\1)", translated)
    return re.compile(translated)


def compile_rank_pattern(rank_pattern: Mapping[str, Any] | None) -> tuple[list[CompiledPattern], list[tuple[str, str]]]:
    """The rank pattern's entries in the order they are tried (JavaScript's key order), and those that are not
    regular expressions."""
    patterns: list[CompiledPattern] = []
    invalid: list[tuple[str, str]] = []
    for source, value in js_key_order(rank_pattern or {}):
        try:
            patterns.append(CompiledPattern(source, js_regex(source), value))
        except re.error as e:
            hint = " (Python's (?P<name>...) is (?<name>...) in JavaScript)" if "(?P<" in source else ""
            invalid.append((source, f"is not a valid JavaScript regular expression: {e}{hint}"))
    return patterns, invalid


def pattern_matches(pattern: re.Pattern[str], name: str) -> bool:
    """Found anywhere (re.search) in the module name or in the parameter name."""
    return pattern.search(module_name(name)) is not None or pattern.search(name) is not None


def first_match(patterns: Sequence[CompiledPattern], name: str) -> CompiledPattern | None:
    return next((p for p in patterns if pattern_matches(p.re, name)), None)


def resolve_rank(value: float | int, d: int) -> tuple[int, int, bool]:
    """A rank as PEFT OSF reads one, for a matrix of min_dim d: (raw request, k = clamp(raw, 1, d), fraction).
    An integer r asks for r directions, a fraction r in (0, 1) for floor(r * d)."""
    fraction = not is_integer(value)
    raw = math.floor(value * d) if fraction else int(value)
    return raw, min(d, max(1, raw)), fraction


def rank_pattern_path(policy_path: str, pattern: str) -> str:
    return f"{policy_path}.rankPattern[{json_string(pattern)}]"


def rank_pattern_issues(policy: Mapping[str, Any], targets: Sequence[Dims], policy_path: str) -> list[dict[str, Any]]:
    """Issues for rank patterns that match no matrix of `targets` (or are not regular expressions), each at the
    entry's JSON path: a pattern that names nothing is a typo or a pattern written for another model."""
    patterns, invalid = compile_rank_pattern(policy.get("rankPattern"))
    issues: list[dict[str, Any]] = [
        {"path": rank_pattern_path(policy_path, source), "message": message,
         "expected": "a JavaScript regular expression", "actual": source}
        for source, message in invalid
    ]
    shown = [module_name(t.name) for t in targets[:3]]
    examples = f" (module names such as {', '.join(shown)}{', ...' if len(targets) > 3 else ''})" if shown else ""
    for p in patterns:
        if any(pattern_matches(p.re, t.name) for t in targets):
            continue
        issues.append({
            "path": rank_pattern_path(policy_path, p.source),
            "message": f"matches none of the {len(targets)} target matrices of this model{examples}",
            "expected": "a pattern that matches a target module or parameter name",
            "actual": p.source,
        })
    return issues


def escape_regexp(s: str) -> str:
    """`s` as a regular expression that matches exactly `s`, in JavaScript and in Python alike."""
    return re.sub(r"[.*+?^${}()|\[\]\\]", lambda m: "\\" + m.group(0), s)


def rank_pattern_of(matrices: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """The chosen ranks as a PEFT rank_pattern: `^<escaped module name>$` -> k for every matrix, in order."""
    return {f"^{escape_regexp(module_name(m['name']))}$": int(m["k"]) for m in matrices}


def rank_pattern_file(before_task: int) -> str:
    """Where a run keeps the ranks chosen before task `before_task` (0-based), relative to the run folder."""
    return f"ranks/before-task-{before_task + 1}.rank_pattern.json"


# --------------------------------------------------------------------------------------------------------------
# Choosing k (rank-policy.ts)


@dataclass
class RankChoice:
    k: int
    ratio: float
    importance: float | None = None
    #: The policy's formula put k outside [1, min_dim]; k is the clamped value.
    clamped: bool = False


@dataclass
class RankDecision:
    choices: list[RankChoice]
    warnings: list[str]


def _choice(raw: float, d: int, ratio: float, importance: float | None = None) -> RankChoice:
    """k = clamp(raw, 1, d) for an unclamped request `raw` of a matrix of min_dim d."""
    if not math.isfinite(raw):
        # A degenerate normalisation (mean importance 0) asks for ±infinity: clamped as any other request; a
        # NaN request (0 / 0) gets the lowest rank, flagged.
        return RankChoice(d if raw > 0 else 1, ratio, importance, True)
    k = int(min(d, max(1, raw)))
    return RankChoice(k, ratio, importance, k != raw)


def choose_ranks(
    policy: Mapping[str, Any],
    targets: Sequence[Dims],
    boundary: int,
    importance: Sequence[float] | None,
    path: str,
    spectra: Sequence[Sequence[float] | torch.Tensor] | None = None,
) -> RankDecision:
    """k for every target. `boundary` counts the protected boundaries so far (0 at the first); `importance` is
    needed only by the adaptive policy, `spectra` (each matrix's singular values, descending) only by the
    energy policy. Option errors name `path` (the policy's JSON path)."""
    warnings: list[str] = []
    kind = policy["policy"]
    if kind == "fixed":
        return _fixed_ranks(policy, targets, path)
    if kind == "schedule":
        ratio = min(policy["max"], policy["start"] + policy["step"] * boundary)
        return RankDecision([_choice(js_round(ratio * min_dim(t)), min_dim(t), ratio) for t in targets], warnings)
    if kind == "authors-schedule":
        f = policy["start"] + policy["step"] * boundary
        choices = [_choice(math.floor(f * max_dim(t)), min_dim(t), f) for t in targets]
        whole = [t for t, c in zip(targets, choices) if c.clamped and c.k == min_dim(t)]
        if whole:
            warnings.append(
                f"f = {js_number(_round4(f))} of max(d_out, d_in) reaches min(d_out, d_in) in {len(whole)} of "
                f"{len(targets)} matrices (e.g. {module_name(whole[0].name)}): k is capped there and the whole "
                "matrix is protected, so it cannot learn"
            )
        return RankDecision(choices, warnings)
    if kind == "energy":
        if spectra is None:
            raise ValueError("energy rank policy: singular values are missing")
        tau = min(policy["maxThreshold"], policy["threshold"] + policy["thresholdStep"] * boundary)
        choices = []
        for t, S in zip(targets, spectra):
            k = energy_rank(S, tau)
            choices.append(RankChoice(k, k / min_dim(t)))
        return RankDecision(choices, warnings)
    if kind == "adaptive":
        if importance is None:
            raise ValueError("adaptive rank policy: importance scores are missing")
        mrr, trr = policy["mrr"], policy["trr"]
        values = [float(v) for v in importance]
        mean = sum(values) / len(values) if values else float("nan")
        lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
        paper = policy["normalisation"] == "mean"
        if paper:
            normalised = [v / mean if mean != 0 else math.copysign(math.inf, v) if v else math.nan for v in values]
        else:
            normalised = [(v - lo) / (hi - lo) if hi > lo else 1.0 for v in values]
        if paper and not mean > 0:
            warnings.append(
                f"mean importance is {js_exponential(mean, 3)} (<= 0): the paper's I / mean(I) normalisation inverts "
                'or explodes the ranks; consider "normalisation": "minmax" or "importance": "block"'
            )
        choices = []
        for t, n, v in zip(targets, normalised, values):
            ratio = mrr + n * (trr - mrr)
            choices.append(_choice(js_round(ratio * min_dim(t)), min_dim(t), ratio, v))
        at_clamp = sum(1 for t, c in zip(targets, choices) if c.k == 1 or c.k == min_dim(t))
        if at_clamp > len(targets) / 2:
            warnings.append(
                f"{at_clamp} of {len(targets)} matrices hit a clamp (k = 1 or k = min_dim): their ranks carry little "
                "information about importance"
            )
        return RankDecision(choices, warnings)
    raise ValueError(f"unknown rank policy '{kind}'")


def energy_rank(S: Sequence[float] | torch.Tensor, tau: float) -> int:
    """The smallest k >= 1 with sum_{i<=k} sigma_i² >= tau sum_i sigma_i², summed in the order sigma_stats sums,
    so that the retained energy the ranks event reports for this k is at least tau. A zero matrix gets k = 1."""
    s = _floats(S)
    total = 0.0
    for x in s:
        total += x * x
    if not total > 0:
        return min(1, len(s))
    kept = 0.0
    for i, x in enumerate(s):
        kept += x * x
        if kept / total >= tau:
            return i + 1
    return len(s)


def _fixed_ranks(policy: Mapping[str, Any], targets: Sequence[Dims], path: str) -> RankDecision:
    """The default rank (ratio, k or effectiveRank) applies to every matrix no rankPattern entry matches; the
    first matching entry decides the others. Integer ranks outside [1, min_dim] are clamped and warned about,
    one warning per option; a k above a matrix's min_dim is an error."""
    warnings: list[str] = []
    patterns, invalid = compile_rank_pattern(policy.get("rankPattern"))
    if invalid:
        raise ConfigError(rank_pattern_issues(policy, targets, path))
    matched = [first_match(patterns, t.name) for t in targets]
    k_opt, ratio_opt, eff = policy.get("k"), policy.get("ratio"), policy.get("effectiveRank")
    if k_opt is not None:
        too_big = next((t for t, m in zip(targets, matched) if m is None and k_opt > min_dim(t)), None)
        if too_big is not None:
            raise ConfigError([{
                "path": f"{path}.k",
                "message": f"k = {js_number(k_opt)} exceeds min(d_out, d_in) = {min_dim(too_big)} of {too_big.name}",
                "expected": "k <= min(d_out, d_in) of every target",
                "actual": k_opt,
            }])
    if k_opt is None and ratio_opt is None and eff is None:
        raise ConfigError([{
            "path": path,
            "message": "a fixed rank policy needs one of ratio, k and effectiveRank (the resolved config has one)",
            "expected": "one of ratio, k, effectiveRank",
        }])
    over: dict[str, tuple[float | int, list[str]]] = {}
    choices: list[RankChoice] = []
    for t, m in zip(targets, matched):
        d = min_dim(t)
        if m is None and k_opt is not None:
            choices.append(RankChoice(int(k_opt), k_opt / d))
            continue
        if m is None and ratio_opt is not None:
            choices.append(_choice(math.floor(ratio_opt * d), d, ratio_opt))
            continue
        value = m.value if m is not None else eff
        raw, k, fraction = resolve_rank(value, d)
        if not fraction and raw > d:
            option = f"rankPattern[{json_string(m.source)}]" if m is not None else "effectiveRank"
            over.setdefault(option, (value, []))[1].append(t.name)
        choices.append(_choice(raw, d, value if fraction else k / d))
    for option, (value, names) in over.items():
        warnings.append(
            f"{option} = {js_number(value)} exceeds min(d_out, d_in) of {len(names)} of {len(targets)} matrices "
            f"(e.g. {module_name(names[0])}): k is clamped to min(d_out, d_in) there"
        )
    return RankDecision(choices, warnings)


def _floats(S: Sequence[float] | torch.Tensor) -> list[float]:
    return S.detach().to(torch.float64).cpu().tolist() if isinstance(S, torch.Tensor) else [float(x) for x in S]


def sigma_stats(S: Sequence[float] | torch.Tensor, k: int) -> dict[str, float]:
    """sigma statistics of a matrix for the `ranks` event (float64, in the TypeScript engine's summation order)."""
    s = _floats(S)
    total = energy = kept = 0.0
    for i, x in enumerate(s):
        total += x
        energy += x * x
        if i < k:
            kept += x * x
    entropy = 0.0
    for x in s:
        p = x / total if total > 0 else 0.0
        if p > 0:
            entropy -= p * math.log(p)
    return {
        "sigmaMax": s[0] if s else 0.0,
        "sigmaMin": s[-1] if s else 0.0,
        "sigmaMean": total / len(s) if s else 0.0,
        "effectiveRank": math.exp(entropy),
        "retainedEnergy": kept / energy if energy > 0 else 0.0,
    }


# --------------------------------------------------------------------------------------------------------------
# Importance from calibration activations


def _is_seq2seq(model: nn.Module) -> bool:
    return bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))


def _reads_encoder_rows(t: TargetMatrix) -> bool:
    """Which tokens a matrix of an encoder-decoder model sees: the encoder's (its own stack, and the decoder's
    cross-attention keys and values, computed from the encoder output) or the decoder's target positions."""
    return t.module_name.startswith("encoder.") or (t.group == "cross-attention" and t.role in ("k", "v"))


def _first_tensor(args: tuple, kwargs: dict, key: str) -> torch.Tensor:
    if args and isinstance(args[0], torch.Tensor):
        return args[0]
    return kwargs[key]


def _output_tensor(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


def _row_cos_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ over rows of cos(a_row, b_row), |a||b| floored at 1e-12 as the TypeScript engine does; float64 sum."""
    a, b = a.float(), b.float()
    dot = (a * b).sum(1)
    norms = (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    return (dot / norms).double().sum()


def calibration_forward(model: nn.Module, batch: Any) -> None:
    """A forward of a calibration batch for its activations only: causal models compute the head for the last
    position only (the activations are what the hooks read), encoder-decoder models decode the labels."""
    if _is_seq2seq(model):
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels, use_cache=False)
        return
    try:
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, logits_to_keep=1, use_cache=False)
    except TypeError:  # a model class without logits_to_keep
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)


class eval_mode:
    """Puts a model in eval mode (no dropout) for a measurement and restores every module's flag after."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.flags: list[tuple[nn.Module, bool]] = []

    def __enter__(self) -> nn.Module:
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        for m, flag in self.flags:
            m.training = flag


@torch.no_grad()
def importances(model: nn.Module, targets: Sequence[TargetMatrix], batches: Sequence[Any], mode: str) -> list[float]:
    """Importance of every target (per matrix or per block) over calibration batches: the mean over the rows
    (real tokens) the matrix or block saw. Rows are counted where they are seen, since an encoder-decoder
    model's encoder and decoder see different tokens (encoder inputs, decoder target positions). Matrices
    outside the blocks (head, embeddings) get 0 per matrix, and the mean block importance per block."""
    seq2seq = _is_seq2seq(model)
    blocks = block_modules(model) if mode == "block" else []
    slots = len(targets) if mode == "matrix" else len(blocks)
    device = next(model.parameters()).device
    sums = torch.zeros(max(slots, 1), dtype=torch.float64, device=device)
    rows = [0] * slots
    current: dict[str, torch.Tensor] = {}

    def select(x: torch.Tensor, encoder: bool) -> torch.Tensor:
        idx = current["enc" if encoder or not seq2seq else "dec"]
        return x.reshape(-1, x.shape[-1])[idx]

    handles = []
    try:
        if mode == "matrix":
            for i, t in enumerate(targets):
                if t.layer < 0:
                    continue  # the head and the embeddings have no captured input (their importance is 0)

                def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any, i: int = i, t: TargetMatrix = t) -> None:
                    x = select(_first_tensor(args, kwargs, "input"), _reads_encoder_rows(t))
                    W = t.as_out_in(module.weight).detach().float()
                    m = t.min_dim
                    y = x.float() @ W.transpose(0, 1)
                    sums[i] += _row_cos_sum(x[:, :m], y[:, :m])
                    rows[i] += x.shape[0]

                handles.append(t.module.register_forward_hook(hook, with_kwargs=True))
        elif mode == "block":
            enc_layers = sum(1 for n, _ in model.named_modules() if re.match(r"^(.*\.)?encoder\.block\.\d+$", n))
            for layer, block in blocks:

                def block_hook(module: nn.Module, args: tuple, kwargs: dict, output: Any, layer: int = layer) -> None:
                    encoder = seq2seq and layer < enc_layers
                    h_in = select(_first_tensor(args, kwargs, "hidden_states"), encoder)
                    h_out = select(_output_tensor(output), encoder)
                    sums[layer] += _row_cos_sum(h_in, h_out)
                    rows[layer] += h_in.shape[0]

                handles.append(block.register_forward_hook(block_hook, with_kwargs=True))
        else:
            raise ValueError(f"unknown importance mode '{mode}' (expected 'matrix' or 'block')")
        with eval_mode(model):
            for b in batches:
                current["enc"] = b.attention_mask.reshape(-1).nonzero().squeeze(1)
                if seq2seq:
                    current["dec"] = (b.labels.reshape(-1) != -100).nonzero().squeeze(1)
                calibration_forward(model, b)
    finally:
        for h in handles:
            h.remove()
        reshard(model)
    values = sums.cpu().tolist()
    totals = [values[i] / max(rows[i], 1) for i in range(slots)]
    if mode == "matrix":
        return totals
    mean_block = sum(totals) / max(len(totals), 1)
    return [totals[t.layer] if t.layer >= 0 else mean_block for t in targets]
