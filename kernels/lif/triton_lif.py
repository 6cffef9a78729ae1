"""Fused multi-step LIF in Triton: all T steps of the forward, and all of the
surrogate BPTT backward, in one launch each, with the membrane in registers.

Layout: x is time-major and flattened to (T, N) contiguous, so step t of
neuron n is at t * N + n and every step's load is coalesced. One program
handles BLOCK neurons and loops over the T steps (T is a compile-time
constant: the loop is unrolled).

Forward writes the spikes (in x's dtype) and, when a backward will follow,
the pre-spike membrane h_t (float32, float64 for float64 inputs): the
backward reads h_t in reverse, recomputes s_t = [h_t >= v_th] and the
surrogate from it, and runs the recursion of `reference.lif_backward_reference`.

Arithmetic follows the reference exactly: h = v + (x - (v - v_reset)) / tau
with an IEEE round-to-nearest division (`div_rn`; Triton's plain `/` on fp32
is an approximate division), and no product that could be contracted into an
FMA, so float32 spikes are bit-identical to the PyTorch reference.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _lif_fwd_kernel(
        x_ptr, s_ptr, h_ptr, p_ptr, N,
        T: tl.constexpr, STORE_H: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr,
):
    tau, v_th, v_reset = tl.load(p_ptr), tl.load(p_ptr + 1), tl.load(p_ptr + 2)
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    cdt = tl.float64 if FP64 else tl.float32
    v = tl.zeros([BLOCK], dtype=cdt) + v_reset
    # Pointers advance by N per step (64-bit pointer arithmetic: no int32 overflow of t * N).
    x_ptrs, s_ptrs, h_ptrs = x_ptr + offs, s_ptr + offs, h_ptr + offs
    for t in tl.static_range(T):
        x = tl.load(x_ptrs, mask=mask, other=0.0).to(cdt)
        if FP64:
            h = v + (x - (v - v_reset)) / tau
        else:
            h = v + tl.math.div_rn(x - (v - v_reset), tau)
        fire = h >= v_th
        tl.store(s_ptrs, fire.to(s_ptr.dtype.element_ty), mask=mask)
        if STORE_H:
            tl.store(h_ptrs, h, mask=mask)
        v = tl.where(fire, v_reset, h)
        x_ptrs += N
        s_ptrs += N
        h_ptrs += N


@triton.jit
def _lif_bwd_kernel(
        gs_ptr, h_ptr, gx_ptr, p_ptr, N,
        T: tl.constexpr, DETACH_RESET: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr,
):
    tau, v_th, v_reset = tl.load(p_ptr), tl.load(p_ptr + 1), tl.load(p_ptr + 2)
    alpha, decay = tl.load(p_ptr + 3), tl.load(p_ptr + 4)
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    cdt = tl.float64 if FP64 else tl.float32
    g = tl.zeros([BLOCK], dtype=cdt)  # dL/dh_{t+1}
    h_ptrs, gs_ptrs, gx_ptrs = h_ptr + offs, gs_ptr + offs, gx_ptr + offs
    for _ in tl.static_range(T - 1):  # to step T-1 by pointer steps (no int32 product t * N)
        h_ptrs += N
        gs_ptrs += N
        gx_ptrs += N
    for i in tl.static_range(T):
        h = tl.load(h_ptrs, mask=mask, other=0.0).to(cdt)
        gs = tl.load(gs_ptrs, mask=mask, other=0.0).to(cdt)
        s = (h >= v_th).to(cdt)
        sig = 1.0 / (1.0 + tl.exp(-(alpha * (h - v_th))))
        sg = alpha * sig * (1.0 - sig)
        if DETACH_RESET:
            dv_dh = 1.0 - s
        else:
            dv_dh = 1.0 - s + (v_reset - h) * sg
        g = gs * sg + g * decay * dv_dh
        tl.store(gx_ptrs, (g / tau).to(gx_ptr.dtype.element_ty), mask=mask)
        h_ptrs -= N
        gs_ptrs -= N
        gx_ptrs -= N


def _grid(n: int):
    return (triton.cdiv(n, BLOCK),)


_PARAMS: dict = {}


def _params(device: torch.device, dtype: torch.dtype, tau: float, v_th: float, v_reset: float,
            alpha: float = 0.0) -> torch.Tensor:
    """The neuron's constants as a tensor of the compute dtype (cached per device).

    Triton passes Python floats as float32; in a tensor they keep float64
    precision on the float64 path, and round exactly as PyTorch rounds a Python
    scalar against a float32 tensor on the float32 path.
    """
    key = (device, dtype, tau, v_th, v_reset, alpha)
    params = _PARAMS.get(key)
    if params is None:
        if len(_PARAMS) > 64:
            _PARAMS.clear()
        params = _PARAMS[key] = torch.tensor([tau, v_th, v_reset, alpha, 1.0 - 1.0 / tau], dtype=dtype, device=device)
    return params


def lif_forward_triton(x2d: torch.Tensor, tau: float, v_th: float, v_reset: float, store_h: bool):
    """x2d: (T, N) contiguous. Returns (spikes in x's dtype, h in the compute dtype or None)."""
    T, N = x2d.shape
    fp64 = x2d.dtype == torch.float64
    cdt = torch.float64 if fp64 else torch.float32
    spikes = torch.empty_like(x2d)
    h = torch.empty((T, N), device=x2d.device, dtype=cdt) if store_h else None
    if N:
        _lif_fwd_kernel[_grid(N)](
            x2d, spikes, h if store_h else spikes, _params(x2d.device, cdt, tau, v_th, v_reset), N,
            T=T, STORE_H=store_h, FP64=fp64, BLOCK=BLOCK)
    return spikes, h


def lif_backward_triton(grad_s: torch.Tensor, h: torch.Tensor, out_dtype: torch.dtype, tau: float, v_th: float,
                        v_reset: float, alpha: float, detach_reset: bool) -> torch.Tensor:
    """grad_s: (T, N) contiguous; h: the forward's saved membrane. Returns dL/dx (T, N)."""
    T, N = h.shape
    grad_x = torch.empty((T, N), device=h.device, dtype=out_dtype)
    if N:
        _lif_bwd_kernel[_grid(N)](
            grad_s, h, grad_x, _params(h.device, h.dtype, tau, v_th, v_reset, alpha), N,
            T=T, DETACH_RESET=detach_reset, FP64=h.dtype == torch.float64, BLOCK=BLOCK)
    return grad_x
