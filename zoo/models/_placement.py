"""Device and dtype of a zoo model's tensors, as timm promises them for its own models.

timm (>= 1.0.2x) passes `device=` / `dtype=` from `create_model` to every model constructor, and its
models build each new head in `reset_classifier` on the device and dtype of the weights around it
(`timm.layers.get_device_dtype`). The zoo's constructors do not thread `device` / `dtype` through every
layer: `placed` builds the whole model under a `torch.device` context (tensors are made there, with no
CPU copy first, `meta` included) and casts the floating point tensors once; `keeps_device_dtype` moves
the tensors a `reset_classifier` creates to where the model's weights are.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

ModelT = TypeVar("ModelT", bound=nn.Module)


def placed(model_cls: Callable[..., ModelT], device: Any = None, dtype: torch.dtype | None = None
           ) -> Callable[..., ModelT]:
    """`model_cls` whose instances have every parameter and buffer on `device`, floating point ones in
    `dtype` (None: the defaults, as without them)."""
    if device is None and dtype is None:
        return model_cls

    @functools.wraps(model_cls, updated=())
    def build(**kwargs: Any) -> ModelT:
        with torch.device(device) if device is not None else contextlib.nullcontext():
            model = model_cls(**kwargs)
        return model.to(dtype=dtype) if dtype is not None else model

    return build


def get_device_dtype(model: nn.Module) -> dict[str, Any]:
    """The device and dtype of the model's first parameter (timm >= 1.0.2x's `timm.layers.get_device_dtype`,
    which the oldest timm the zoo supports, 1.0.26, lacks)."""
    param = next(model.parameters(), None)
    return {"device": param.device if param is not None else None, "dtype": param.dtype if param is not None else None}


def keeps_device_dtype(reset_classifier: Callable[..., Any]) -> Callable[..., Any]:
    """A `reset_classifier` whose new tensors (head, pooling) take the device and floating point dtype of
    the model's weights, and whose new modules its train / eval mode: a model moved to a GPU, to bf16 or
    to `meta`, or put in eval mode, keeps a head that runs as the rest of it does."""

    @functools.wraps(reset_classifier)
    def reset(model: nn.Module, *args: Any, **kwargs: Any) -> Any:
        dd = get_device_dtype(model)
        before = {id(t) for t in itertools.chain(model.parameters(), model.buffers())}
        modules_before = {id(m) for m in model.modules()}
        result = reset_classifier(model, *args, **kwargs)
        for module in model.modules():
            if id(module) not in modules_before:
                module.training = model.training  # a new Dropout of a model in eval mode stays off
            if dd["device"] is not None:
                _move_new_tensors(module, before, **dd)
        return result

    return reset


def _move_new_tensors(module: nn.Module, before: set[int], device: torch.device, dtype: torch.dtype) -> None:
    def misplaced(tensor: torch.Tensor) -> bool:
        return id(tensor) not in before and (
            tensor.device != device or (tensor.is_floating_point() and tensor.dtype != dtype))

    def moved(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else tensor.dtype)

    for name, param in list(module.named_parameters(recurse=False)):
        if misplaced(param):
            module._parameters[name] = nn.Parameter(moved(param.detach()), requires_grad=param.requires_grad)
    for name, buffer in list(module.named_buffers(recurse=False)):
        if misplaced(buffer):
            module._buffers[name] = moved(buffer)
