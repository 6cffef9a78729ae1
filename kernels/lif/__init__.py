"""Multi-step leaky integrate-and-fire (LIF) neuron: `multistep_lif`.

    spikes = multistep_lif(x)        # x: (T, ...) time-major membrane input

Hard reset, input decay, Heaviside spikes with ties spiking, sigmoid
surrogate gradient, optional detached reset (the definition is in
`reference.py`). Two implementations:

- `reference`: the PyTorch loop over T, backward by autograd (CPU default);
- `triton`: one fused launch for the forward over all T steps and one for the
  whole BPTT backward, membrane in registers (CUDA default; runs on CPU
  tensors under TRITON_INTERPRET=1 when forced).

Pick with `impl=` ("auto", "triton", "reference") or the environment variable
`ZOO_KERNELS_IMPL`; the argument wins. Triton is imported only when its path runs.
"""
from __future__ import annotations

import os
from typing import Optional

import torch

from .reference import lif_backward_reference, multistep_lif_reference

__all__ = ["multistep_lif", "multistep_lif_reference", "lif_backward_reference", "resolve_impl", "IMPLS", "ENV_IMPL"]

IMPLS = ("auto", "triton", "reference")


ENV_IMPL = "ZOO_KERNELS_IMPL"


def _triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_impl(x: torch.Tensor, impl: Optional[str] = None) -> str:
    """'triton' or 'reference' for x: the argument, else ZOO_KERNELS_IMPL for 'auto', else by device."""
    if impl is not None and impl not in IMPLS:
        raise ValueError(f"multistep_lif: impl must be one of {IMPLS}, got {impl!r}")
    choice = impl or "auto"
    if choice == "auto":
        choice = os.environ.get(ENV_IMPL, "") or "auto"
        if choice not in IMPLS:
            raise ValueError(f"environment variable {ENV_IMPL} must be one of {IMPLS}, got {choice!r}")
    if choice == "auto":
        return "triton" if x.is_cuda and _triton_available() else "reference"
    if choice == "triton" and not x.is_cuda and not _triton_interpreted():
        raise ValueError(
            "multistep_lif: the Triton path needs CUDA tensors (or TRITON_INTERPRET=1, set before the kernel "
            f"is first used, for CPU tensors), got device {x.device}; use impl='reference'")
    return choice


class _MultiStepLIFTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, tau, v_threshold, v_reset, surrogate_alpha, detach_reset):
        from .triton_lif import lif_forward_triton

        x2d = x.reshape(x.shape[0], -1).contiguous()
        spikes, h = lif_forward_triton(x2d, tau, v_threshold, v_reset, store_h=True)
        ctx.save_for_backward(h)
        ctx.params = (tau, v_threshold, v_reset, surrogate_alpha, detach_reset)
        ctx.shape, ctx.dtype = x.shape, x.dtype
        return spikes.view(x.shape)

    @staticmethod
    def backward(ctx, grad_spikes):
        from .triton_lif import lif_backward_triton

        (h,) = ctx.saved_tensors
        tau, v_threshold, v_reset, alpha, detach_reset = ctx.params
        g2d = grad_spikes.reshape(h.shape).contiguous()
        grad_x = lif_backward_triton(g2d, h, ctx.dtype, tau, v_threshold, v_reset, alpha, detach_reset)
        return grad_x.view(ctx.shape), None, None, None, None, None


def multistep_lif(
        x: torch.Tensor,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        surrogate_alpha: float = 4.0,
        detach_reset: bool = True,
        impl: Optional[str] = None,
) -> torch.Tensor:
    """Spikes (0/1, same shape and dtype as x) of LIF neurons driven by x over its first dim (time).

    Args:
        x: membrane input, time-major (T, ...); float16/bfloat16/float32/float64.
            The membrane runs in float32 (float64 for float64 input).
        tau: membrane time constant (decay 1 - 1/tau per step, input scaled by 1/tau).
        v_threshold: spike where the charged membrane h >= v_threshold.
        v_reset: the membrane's start value and hard-reset value.
        surrogate_alpha: slope of the sigmoid surrogate gradient.
        detach_reset: treat the reset as a constant in the backward.
        impl: 'auto' (Triton on CUDA, reference otherwise), 'triton' or 'reference'.
    """
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"multistep_lif expects a time-major tensor (T, ...) with T >= 1, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"multistep_lif expects a floating-point tensor, got {x.dtype}")
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    if resolve_impl(x, impl) == "triton":
        if not (torch.is_grad_enabled() and x.requires_grad):  # inference: spikes only, nothing saved
            from .triton_lif import lif_forward_triton

            spikes, _ = lif_forward_triton(x.reshape(x.shape[0], -1).contiguous(), tau, v_threshold, v_reset, False)
            return spikes.view(x.shape)
        return _MultiStepLIFTriton.apply(x, float(tau), float(v_threshold), float(v_reset),
                                         float(surrogate_alpha), bool(detach_reset))
    return multistep_lif_reference(x, tau, v_threshold, v_reset, surrogate_alpha, detach_reset)
