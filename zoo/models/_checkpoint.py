"""Helpers every family's `checkpoint_filter_fn` is built from.

An official checkpoint arrives wrapped (`{'model': ...}`, `{'state_dict': ...}`),
with `module.` (DDP) or `backbone.` (mmdet / mmseg) prefixes and official key
names. A filter unwraps it, renames keys by a readable list of rules, and
ends with `check_state_dict`, which fails with the list of missing,
unexpected, mis-shaped and wrong-dtype keys instead of letting a partial or
silently converted load through.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from ..layers.checks import model_name

# Official training scripts save {'model': ..., 'optimizer': ..., 'args': ...};
# mmcv saves {'state_dict': ..., 'meta': ...}.
WRAPPER_KEYS = ("state_dict", "model")

# A rule: (pattern, replacement); the replacement is a string for re.sub or a
# function of the match. A replacement of None drops the key.
Rule = tuple[str, "str | Callable[[re.Match], str] | None"]


class CheckpointMismatchError(RuntimeError):
    """A checkpoint whose keys, shapes or dtypes do not fit the model."""


def unwrap_state_dict(checkpoint: Mapping, wrapper_keys: Sequence[str] = WRAPPER_KEYS) -> dict[str, torch.Tensor]:
    """The tensor dict inside a training checkpoint (already-bare dicts pass through)."""
    while isinstance(checkpoint, Mapping):
        inner = next((checkpoint[k] for k in wrapper_keys if isinstance(checkpoint.get(k), Mapping)), None)
        if inner is None:
            break
        checkpoint = inner
    tensors = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointMismatchError(
            f"no tensors found in the checkpoint (top-level keys: {sorted(checkpoint)[:10]}); "
            f"expected a state dict, optionally wrapped in one of {list(wrapper_keys)}")
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
