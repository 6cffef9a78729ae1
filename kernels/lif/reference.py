"""The multi-step LIF neuron, defined in plain PyTorch: a loop over time steps.

This is the definition the Triton kernel is tested against. Per neuron, over
t = 0..T-1 with v_{-1} = v_reset (decay_input=True, hard reset):

    h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) / tau      # charge
    s_t = 1 if h_t >= v_th else 0                          # fire (ties spike: H(0) = 1)
    v_t = h_t * (1 - s_t) + v_reset * s_t                  # hard reset

The backward is torch autograd through this loop, with the Heaviside step's
derivative replaced by the sigmoid surrogate
    ds/dh = alpha * sigmoid(alpha * u) * (1 - sigmoid(alpha * u)),  u = h - v_th
and, with `detach_reset`, the reset term treated as a constant, so that
dv_t/dh_t = 1 - s_t. These are spikingjelly 0.0.0.0.12's
`MultiStepLIFNode(tau, v_threshold, v_reset, detach_reset, surrogate.Sigmoid(alpha))`
semantics, written from the equations above.

The membrane runs in float32 for float16 / bfloat16 inputs (float64 stays
float64); spikes come back in the input's dtype.
"""
from __future__ import annotations

import torch

__all__ = ["multistep_lif_reference", "lif_backward_reference", "compute_dtype"]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of the membrane recurrence: float64 for float64 inputs, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


class _HeavisideSigmoidSurrogate(torch.autograd.Function):
    """s = [u >= 0] forward; ds/du = alpha * sig(alpha u) * (1 - sig(alpha u)) backward."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.alpha = alpha
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_s: torch.Tensor):
        (u,) = ctx.saved_tensors
        sig = torch.sigmoid(ctx.alpha * u)
        return grad_s * (ctx.alpha * sig * (1.0 - sig)), None


def multistep_lif_reference(
        x: torch.Tensor,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        surrogate_alpha: float = 4.0,
        detach_reset: bool = True,
        return_membrane: bool = False,
):
    """Spikes (same shape and dtype as x) of a LIF layer driven by x, time-major (T, ...).

    With `return_membrane` also returns v_seq, the membrane after the reset at
    every step (spikingjelly's `.v_seq`), in the compute dtype.
    """
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"multistep_lif expects a time-major tensor (T, ...) with T >= 1, got {tuple(x.shape)}")
    xc = x.to(compute_dtype(x.dtype))
    v = torch.full_like(xc[0], v_reset)
    spikes, v_seq = [], []
    for t in range(xc.shape[0]):
        h = v + (xc[t] - (v - v_reset)) / tau
        s = _HeavisideSigmoidSurrogate.apply(h - v_threshold, surrogate_alpha)
        s_reset = s.detach() if detach_reset else s
        v = h * (1.0 - s_reset) + v_reset * s_reset
        spikes.append(s)
        v_seq.append(v)
    out = torch.stack(spikes).to(x.dtype)
    return (out, torch.stack(v_seq)) if return_membrane else out


@torch.no_grad()
def lif_backward_reference(
        x: torch.Tensor,
        grad_spikes: torch.Tensor,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        surrogate_alpha: float = 4.0,
        detach_reset: bool = True,
) -> torch.Tensor:
    """dL/dx from dL/ds by the explicit BPTT recursion (what the fused kernel computes).

    g_T = 0;  for t = T-1..0:
        g_t = grad_s_t * sg_t + g_{t+1} * (1 - 1/tau) * dv_t/dh_t,   g_x_t = g_t / tau
    with dv_t/dh_t = 1 - s_t (detach_reset) or 1 - s_t + (v_reset - h_t) * sg_t.
    A second, loop-free statement of the autograd of `multistep_lif_reference`.
    """
    dtype = compute_dtype(x.dtype)
    xc, gs = x.to(dtype), grad_spikes.to(dtype)
    v = torch.full_like(xc[0], v_reset)
    hs = []
    for t in range(xc.shape[0]):
        h = v + (xc[t] - (v - v_reset)) / tau
        s = (h >= v_threshold).to(dtype)
        v = h * (1.0 - s) + v_reset * s
        hs.append(h)
    g = torch.zeros_like(xc[0])
    grad_x = torch.empty_like(xc)
    for t in reversed(range(xc.shape[0])):
        h = hs[t]
        s = (h >= v_threshold).to(dtype)
        sig = torch.sigmoid(surrogate_alpha * (h - v_threshold))
        sg = surrogate_alpha * sig * (1.0 - sig)
        dv_dh = 1.0 - s if detach_reset else 1.0 - s + (v_reset - h) * sg
        g = gs[t] * sg + g * (1.0 - 1.0 / tau) * dv_dh
        grad_x[t] = g / tau
    return grad_x.to(x.dtype)
