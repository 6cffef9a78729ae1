"""torch.fx symbolic tracing: functions the tracer records as one call instead of tracing into.

timm traces a model symbolically for `features_only=True, feature_cls="fx"` and in its FX tests,
through torchvision's `create_feature_extractor`. The traced input is a `torch.fx.Proxy`, with no
shape, dtype or values, so Python control flow on those cannot be traced: the input checks, the
kernels' dispatch (path, device and dtype checks), shape-dependent padding or resizing.
`fx_leaf(fn)` makes `fn` a leaf: called with a Proxy among its arguments it adds one
`call_function` node to the graph and returns its Proxy; the graph module calls `fn` itself when
it runs, so the traced model computes exactly what the eager model does. Called with anything
else (eager mode, torch.compile, torch.export) it is `fn`, plus one argument scan.

Why not timm's `register_notrace_function` alone: timm's tracer replaces a registered function
only in the module globals of a forward it has already entered (a check at the top of a model's
forward_features comes first), and other tracers are not given timm's list; `torch.fx.wrap`
replaces only the defining module's name, not the names other modules import. `fx_leaf` records
itself under any tracer. It still registers with timm, so `timm.models.get_notrace_functions()`
lists the zoo's leaves as it lists timm's own.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch.fx
from timm.layers import register_notrace_function

from zoo.kernels.gated_linear_attention import bidirectional_gla as _bidirectional_gla
from zoo.kernels.lif import multistep_lif as _multistep_lif
from zoo.kernels.linear_attention import linear_attention as _linear_attention

__all__ = ["fx_leaf", "is_fx_proxy", "linear_attention", "bidirectional_gla", "multistep_lif"]

Fn = TypeVar("Fn", bound=Callable[..., Any])


def is_fx_proxy(x: Any) -> bool:
    """Whether x is a torch.fx Proxy: the value of a symbolic trace, not a tensor."""
    return isinstance(x, torch.fx.Proxy)


def _find_proxy(values: Any) -> torch.fx.Proxy | None:
    for value in values:
        if isinstance(value, torch.fx.Proxy):
            return value
        if isinstance(value, (tuple, list)):
            found = _find_proxy(value)
            if found is not None:
                return found
        elif isinstance(value, dict):
            found = _find_proxy(value.values())
            if found is not None:
                return found
    return None


def fx_leaf(fn: Fn) -> Fn:
    """Make `fn` a leaf of torch.fx symbolic tracing (a decorator; see the module note).

    `fn` must be a plain function whose arguments the graph can hold: tensors (Proxies while
    tracing), numbers, strings, tuples, submodules of the traced model.
    """

    @functools.wraps(fn)
    def leaf(*args: Any, **kwargs: Any) -> Any:
        proxy = _find_proxy(args)
        if proxy is None:
            proxy = _find_proxy(kwargs.values())  # (not `or`: a Proxy has no truth value)
        if proxy is None:
            return fn(*args, **kwargs)
        return proxy.tracer.create_proxy("call_function", fn, args, kwargs)

    register_notrace_function(leaf)
    return leaf  # type: ignore[return-value]



# The kernels' public functions as leaves: each checks its inputs and picks its path (device, dtype,
# ZOO_KERNELS_IMPL) in Python before calling its torch op. The layers call them from here
# (SOFT's gaussian_attention runs inside a leaf of its own, SoftAttention._kernel_attention).
linear_attention = fx_leaf(_linear_attention)
bidirectional_gla = fx_leaf(_bidirectional_gla)
multistep_lif = fx_leaf(_multistep_lif)
