"""Input validation with messages that say what was expected.

- `check_image_input`: what every model's forward / forward_features / forward_intermediates
  checks first (a floating-point (B, C, H, W) batch).
- `check_model_args`: the constructor arguments every family shares (in_chans, num_classes,
  dropout and drop-path rates), checked when the model is built.
- `handles_empty_batch`: a class decorator so those entry points answer an empty batch.

Under torch.fx symbolic tracing (timm's `feature_cls="fx"`, torchvision's `create_feature_extractor`)
the input is a Proxy with no dtype, shape or values: there is nothing to check, and a check's Python
control flow would stop the trace. Every input check returns at once for a Proxy
(`zoo.layers.fx.is_fx_proxy`); in eager mode, torch.compile and torch.export they run as before.
(A check kept as a graph node would be dropped anyway: the feature extractors remove nodes whose
result nothing uses.)
"""
from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
from torch import nn

from .fx import is_fx_proxy

__all__ = ["model_name", "check_image_input", "check_model_args", "shared_model_args", "handles_empty_batch"]

_FLOAT_DTYPES = "float32, float16, bfloat16 or float64"


def model_name(model: nn.Module) -> str:
    """The name a model is registered under (its pretrained_cfg's architecture), else its class name."""
    return (getattr(model, "pretrained_cfg", None) or {}).get("architecture") or type(model).__name__


def check_image_input(x: torch.Tensor, in_chans: int, model_name: str, multiple_of: int = 1) -> None:
    """Raise unless x is a floating-point (B, in_chans, H, W) batch with H, W multiples of `multiple_of`.

    TypeError for a non-tensor or a non-floating dtype, ValueError for a wrong shape.
    Returns at once for a torch.fx Proxy (symbolic tracing: see the module note).
    """
    if is_fx_proxy(x):
        return
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{model_name} expects an image batch as a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        # Integer images are the usual mistake: a uint8 batch straight from a decoder, not yet normalised.
        raise TypeError(
            f"{model_name} takes floating-point images ({_FLOAT_DTYPES}), got {x.dtype}: convert integer images "
            f"as the model's transform does, x.float() / 255, then normalise with the mean and std in "
            f"model.pretrained_cfg (timm.data.resolve_data_config + timm.data.create_transform do both)")
    if x.ndim != 4 or x.shape[1] != in_chans:
        raise ValueError(
            f"{model_name} expects an image batch of shape (B, {in_chans}, H, W), got {tuple(x.shape)}"
            + (f" ({x.shape[1]} channels; build the model with in_chans={x.shape[1]} to accept them)"
               if x.ndim == 4 else ""))
    h, w = x.shape[-2:]
    if h < 1 or w < 1 or h % multiple_of or w % multiple_of:
        raise ValueError(
            f"{model_name} takes H and W that are positive multiples of {multiple_of}, got {h}x{w}")


def _is_rate(name: str) -> bool:
    return name.endswith("drop_rate") or name.endswith("drop_path_rate")


def check_model_args(owner: str, **args: Any) -> None:
    """Check a model's shared constructor arguments at build time; raise ValueError naming the value and the range.

    `owner` names the model in the message (the class: the registered name is not known yet).
    Takes `in_chans` (an int >= 1), `num_classes` (an int >= 0) and any `*drop_rate` /
    `*drop_path_rate` (a probability in [0, 1): a rate of 1 drops every path, and DropPath
    then divides by 0). Other keyword names are a programming error (TypeError).
    """
    for name, value in args.items():
        if name == "in_chans":
            _check_int(owner, name, value, minimum=1, why="image channels")
        elif name == "num_classes":
            _check_int(owner, name, value, minimum=0, why="classifier outputs; 0 builds no classifier")
        elif _is_rate(name):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{owner}: {name} must be a probability in [0, 1), got {value!r}")
        else:
            raise TypeError(f"check_model_args does not know the argument {name!r}")


def shared_model_args(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of a constructor's **kwargs that `check_model_args` checks (for classes that pass
    their arguments on to a timm parent, such as VisionTransformer)."""
    return {k: v for k, v in kwargs.items() if k in ("in_chans", "num_classes") or _is_rate(k)}


def _check_int(owner: str, name: str, value: Any, minimum: int, why: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum} ({why}), got {value!r}")


# ---------------------------------------------------------------------------------------------
# Empty batches

_ENTRY_POINTS = ("forward", "forward_features", "forward_intermediates")
ModelClass = TypeVar("ModelClass", bound=type)


def handles_empty_batch(cls: ModelClass) -> ModelClass:
    """Class decorator: `forward`, `forward_features` and `forward_intermediates` take B = 0.

    An empty batch has nothing to compute, but many layers cannot take one: reshapes that
    infer a size (`view(B, -1, C)`, in timm's ViT among others) are ambiguous for zero
    elements, and grouped convolutions over B * C groups refuse zero groups. Instead of
    avoiding those in every family, an empty batch runs one blank image of the same size
    through the model (in eval mode, without autograd, so no statistics or gradients change)
    and returns its outputs cut to zero rows: the shapes a real batch would have, B = 0.
    Every output of these entry points is batch-first. The blank image goes through the
    model's own input checks, so a wrong dtype or shape is still refused.
    """
    for name in _ENTRY_POINTS:
        method = getattr(cls, name, None)
        if method is not None and not getattr(method, "_handles_empty_batch", False):
            setattr(cls, name, _empty_batch_safe(method))
    return cls


def _empty_batch_safe(method: Callable[..., Any]) -> Callable[..., Any]:
    # `entry` reads no globals of this module (what it needs is in its closure), so it runs with the
    # globals of the module that defines `method`: torch.fx tracers read the root forward's globals
    # (timm's tracer replaces its notrace functions there, as timm's ViT resample_abs_pos_embed).
    # A torch.fx Proxy is not a Tensor: tracing goes straight to `method`.
    is_scripting, tensor, no_grad, eval_mode, zero_rows = (
        torch.jit.is_scripting, torch.Tensor, torch.no_grad, _eval_mode, _zero_rows)

    def entry(self: nn.Module, x: Any, *args: Any, **kwargs: Any) -> Any:
        if is_scripting() or not isinstance(x, tensor) or x.ndim < 2 or x.shape[0] != 0:
            return method(self, x, *args, **kwargs)
        blank = x.new_zeros((1, *x.shape[1:]))
        with no_grad(), eval_mode(self):
            out = method(self, blank, *args, **kwargs)
        return zero_rows(out)

    entry = types.FunctionType(entry.__code__, method.__globals__, entry.__name__, entry.__defaults__,
                               entry.__closure__)
    functools.update_wrapper(entry, method)
    entry._handles_empty_batch = True
    return entry


class _eval_mode:
    """Put a module tree in eval mode, then give every submodule its own mode back."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.modes = {}

    def __enter__(self) -> None:
        self.modes = {m: m.training for m in self.model.modules()}
        self.model.eval()

    def __exit__(self, *exc: Any) -> None:
        for module, training in self.modes.items():
            module.training = training


def _zero_rows(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out[:0]
    if isinstance(out, (list, tuple)):
        rows = [_zero_rows(o) for o in out]
        return type(out)(rows) if not hasattr(out, "_fields") else type(out)(*rows)
    if isinstance(out, dict):
        return type(out)((k, _zero_rows(v)) for k, v in out.items())
    return out
