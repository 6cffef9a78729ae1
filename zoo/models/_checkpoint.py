"""Key remapping: the helpers every family's `checkpoint_filter_fn` is built from, and the one way to
make a state dict fit a built model through its family's filter (`adapt_state_dict`, public as
`zoo.pretrained.filter_for`).

An official checkpoint arrives wrapped (`{'model': ...}`, `{'state_dict': ...}`),
with `module.` (DDP) or `backbone.` (mmdet / mmseg) prefixes and official key
names. A filter unwraps it, renames keys by a readable list of rules, and
ends with `check_state_dict`, which fails with the list of missing,
unexpected, mis-shaped and wrong-dtype keys instead of letting a partial or
silently converted load through.
"""
from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from ..layers.checks import model_name

# A rule: (pattern, replacement); the replacement is a string for re.sub or a
# function of the match. A replacement of None drops the key.
Rule = tuple[str, "str | Callable[[re.Match], str] | None"]


class CheckpointMismatchError(RuntimeError):
    """A checkpoint whose keys, shapes or dtypes do not fit the model."""


def unwrap_state_dict(checkpoint: Mapping, model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """The tensor dict inside a training checkpoint (already-bare dicts pass through).

    Official scripts save `{'model': ..., 'optimizer': ..., 'args': ...}` (and EMA copies beside it), mmcv
    `{'state_dict': ..., 'meta': ...}`. Which entry the official evaluation loads is recorded once, on the
    family's registered official file (`OfficialFile.weights_key`), and looked up here from `model`'s tag.
    """
    from ..pretrained import WEIGHT_ENTRIES, official_weights_key, select_weights  # zoo.pretrained is above us
    weights_key = official_weights_key(model) if model is not None else None
    checkpoint = select_weights(checkpoint, weights_key)
    tensors = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        entries = [weights_key] if weights_key else []
        raise CheckpointMismatchError(
            f"no tensors found in the checkpoint (top-level keys: {sorted(checkpoint)[:10]}); "
            f"expected a state dict, optionally wrapped in one of {entries + list(WEIGHT_ENTRIES)}")
    return tensors


def strip_prefixes(state_dict: Mapping[str, torch.Tensor], prefixes: Iterable[str]) -> dict[str, torch.Tensor]:
    """Remove each prefix (e.g. 'module.', 'backbone.') wherever a key starts with it."""
    prefixes = tuple(prefixes)
    out = {}
    for key, value in state_dict.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def rename_keys(state_dict: Mapping[str, torch.Tensor], rules: Sequence[Rule]) -> dict[str, torch.Tensor]:
    """Apply the rules in order to every key; a rule whose replacement is None drops the key."""
    out = {}
    for key, value in state_dict.items():
        for pattern, repl in rules:
            if repl is None:
                if re.search(pattern, key):
                    key = None
                    break
            else:
                key = re.sub(pattern, repl, key)
        if key is not None:
            out[key] = value
    return out


def _input_channels_differ(key: str, loaded: torch.Tensor, wanted: torch.Tensor, model: nn.Module) -> bool:
    """The first conv's weight for another `in_chans`: timm adapts it after the filter runs."""
    first_conv = (getattr(model, "pretrained_cfg", None) or {}).get("first_conv")
    return (first_conv is not None and key == f"{first_conv}.weight" and loaded.ndim == wanted.ndim
            and loaded.shape[0] == wanted.shape[0] and loaded.shape[2:] == wanted.shape[2:])


def _dtype_kind(tensor: torch.Tensor) -> str:
    if tensor.is_floating_point():
        return "floating point"
    return "complex" if tensor.is_complex() else "integer"  # bool counts as integer: masks saved as uint8 load


def dtypes_fit(loaded: torch.Tensor, wanted: torch.Tensor) -> bool:
    """Whether `load_state_dict` may copy `loaded` into `wanted`: any floating precision into floating point
    (float16 / bfloat16 weights are cast), integers into integers; never integers into floating point
    (a quantized or broken file would load as garbage without a word), nor floats into integer buffers."""
    return _dtype_kind(loaded) == _dtype_kind(wanted)


def check_state_dict(
        state_dict: Mapping[str, torch.Tensor],
        model: nn.Module,
        classifier: str | Sequence[str] = (),
) -> dict[str, torch.Tensor]:
    """Fail with a readable list unless state_dict fits model exactly (keys, shapes, and dtype kinds).

    Classifier keys (`classifier` prefixes) may differ in shape or be absent:
    timm's loader drops them when `num_classes` differs from the checkpoint's;
    the first conv's input channels may differ too: timm adapts them to `in_chans`.
    """
    classifier = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    report = mismatch_report(
        f"checkpoint does not fit {model_name(model)}:", state_dict, model,
        exempt=lambda k: any(k.startswith(c + ".") for c in classifier),
        shape_ok=lambda k, loaded, wanted: _input_channels_differ(k, loaded, wanted, model))
    if report:
        raise CheckpointMismatchError(report)
    return dict(state_dict)


def mismatch_report(
        header: str,
        state_dict: Mapping[str, torch.Tensor],
        model: nn.Module,
        exempt: Callable[[str], bool] = lambda key: False,
        shape_ok: Callable[[str, torch.Tensor, torch.Tensor], bool] = lambda key, loaded, wanted: False,
        most: int = 20,
) -> str | None:
    """None when `state_dict` fits `model` exactly, else the header and up to `most` keys of each kind of
    mismatch (missing, unexpected, wrong shape, wrong dtype). `exempt` keys may be absent or differ in shape
    (never hold integers for floating-point weights); `shape_ok` accepts a shape difference of one key."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict and not exempt(k)]
    unexpected = [k for k in state_dict if k not in expected and not exempt(k)]
    mis_shaped = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
                  for k, v in expected.items()
                  if k in state_dict and state_dict[k].shape != v.shape and not exempt(k)
                  and not shape_ok(k, state_dict[k], v)]
    wrong_dtype = [f"{k}: checkpoint {state_dict[k].dtype} vs model {v.dtype}"
                   for k, v in expected.items() if k in state_dict and not dtypes_fit(state_dict[k], v)]
    if not (missing or unexpected or mis_shaped or wrong_dtype):
        return None
    lines = [header]
    for title, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mis_shaped),
                        ("wrong dtype", wrong_dtype)):
        if keys:
            shown = "\n    ".join(keys[:most]) + (f"\n    ... and {len(keys) - most} more" if len(keys) > most else "")
            lines.append(f"  {len(keys)} {title} key(s):\n    {shown}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- a state dict fitted to a built model

class WeightsMismatchError(CheckpointMismatchError):
    """Weights that do not fit the model, even after the family's checkpoint filter."""


def family_filter(model: nn.Module) -> tuple[str, Callable[..., dict[str, torch.Tensor]]]:
    """(module name, `checkpoint_filter_fn`) of the family the model was created from.

    The module is the one that registered the model's architecture with timm (its entrypoint's module: the
    file whose `checkpoint_filter_fn` timm's `build_model_with_cfg` uses for the official weights), else the
    module that defines the model's class.
    """
    import timm

    arch = (getattr(model, "pretrained_cfg", None) or {}).get("architecture")
    candidates = []
    if arch and timm.is_model(arch):
        candidates.append(timm.models.model_entrypoint(arch).__module__)
    candidates.append(type(model).__module__)
    for name in candidates:
        fn = getattr(sys.modules.get(name) or importlib.import_module(name), "checkpoint_filter_fn", None)
        if callable(fn):
            return name, fn
    raise WeightsMismatchError(
        f"cannot adapt weights to {arch or type(model).__name__}: no checkpoint_filter_fn in "
        f"{' or '.join(dict.fromkeys(candidates))}")


def _add_tied_aliases(state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """safetensors' save_model keeps one name of tensors that share memory: give the others back."""
    groups: dict[tuple, list[str]] = {}
    for key, value in model.state_dict().items():
        if value.device.type != "meta" and value.numel():
            groups.setdefault((value.untyped_storage().data_ptr(), value.storage_offset(), value.shape), []).append(key)
    out = dict(state_dict)
    for keys in groups.values():
        present = [k for k in keys if k in out]
        for key in keys:
            if present and key not in out:
                out[key] = out[present[0]]
    return out


def adapt_state_dict(state_dict: Mapping[str, torch.Tensor], model: nn.Module, source: str = "checkpoint",
                     exact: bool = True) -> dict[str, torch.Tensor]:
    """`state_dict` made to fit `model` as the family's own filter adapts official weights.

    The zoo's filters resize what depends on the input resolution (iFormer pos-embeds, InLine-Swin
    relative-position tables, DeiT / PVT pos-embeds) and leave same-size weights unchanged. With `exact`
    (training's init checkpoints) anything else that differs (another width or depth, another number of
    classes: the fine-tunes keep the head) fails with the keys named, and tensors that safetensors stored
    once under one of their tied names are given back their other names. Without it the family filter's own
    check is the only one (it lets the classifier differ, as timm's loader does).
    """
    module, filter_fn = family_filter(model)
    arch = model_name(model)
    loaded = _add_tied_aliases(state_dict, model) if exact else dict(state_dict)
    try:
        adapted = dict(filter_fn(loaded, model))
    except Exception as err:  # the filter's own report (zoo filters list missing / mis-shaped keys)
        raise WeightsMismatchError(
            f"{source} cannot be adapted to {arch} by {module}.checkpoint_filter_fn:\n{err}") from err
    if not exact:
        return adapted
    adapted = _add_tied_aliases(adapted, model)
    report = mismatch_report(f"{source} does not fit {arch} after {module}.checkpoint_filter_fn:", adapted, model)
    if report:
        raise WeightsMismatchError(report)
    return adapted
