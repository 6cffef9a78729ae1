"""Fused multi-step LIF in Triton: all T steps of the forward, and all of the
surrogate BPTT backward, in one launch each, with the membrane in registers.

Layout: x is time-major and flattened to (T, N) contiguous, so step t of
neuron n is at t * N + n. One program handles BLOCK neurons: it loads their
T inputs as one (T, BLOCK) tile before any store (T loads in flight at once
instead of a load / compute / store chain per step), runs the recursion over
the T steps in registers (T is a compile-time constant: the loop is unrolled;
each thread owns whole columns of the tile, so picking row t is in-thread) and
writes its result as one (T, BLOCK) tile.

Nothing but the spikes is written by the forward. The backward recomputes the
pre-spike membrane h_t of every step from x (the input autograd keeps anyway)
with the forward's own arithmetic, so s_t = [h_t >= v_th] and the surrogate
are those of the forward, and then runs the recursion of
`reference.lif_backward_reference` in reverse. Per element this trades the
stored float32 membrane (a 4-byte write in the forward and a 4-byte read in
the backward) for a re-read of x (its own width) and 5 more operations.

Arithmetic follows the reference exactly: h = v + (x - (v - v_reset)) / tau
with an IEEE round-to-nearest division (`div_rn`; Triton's plain `/` on fp32
is an approximate division), and no product that could be contracted into an
FMA, so float32 spikes are bit-identical to the PyTorch reference.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._autotune import autotune

# Elements of one (T, BLOCK) tile per thread: the neurons per thread shrink as T grows. The
# backward holds two tiles (membranes, gradients); float64 tiles get a quarter, since at half
# ptxas (sm_90) spilled the float64 T = 4 backward (128 registers, 12 bytes of spill).
TILE_REGISTERS = 32


def columns_per_thread(t_steps: int, fp64: bool = False) -> int:
    """Neurons per thread, 1..8 (see TILE_REGISTERS)."""
    per_thread = TILE_REGISTERS // (4 if fp64 else 1) // triton.next_power_of_2(t_steps)
    return max(1, min(8, per_thread))


# The warps per program (so BLOCK = COLUMNS x 32 x WARPS neurons) by autotuning on the GPU: the
# registers per thread depend on COLUMNS and T only, so every candidate has the 4-warp config's
# registers (tests/kernels/test_compile_sm90.py compiles each: none spills).
_CONFIGS = [triton.Config({"WARPS": w}, num_warps=w) for w in (4, 2, 8)]


def _grid(n: int):
    return lambda meta: (triton.cdiv(n, meta["COLUMNS"] * 32 * meta["WARPS"]),)


@triton.jit
def _load_steps(ptr, offs, mask, N, T: tl.constexpr, TP: tl.constexpr, cdt: tl.constexpr):
    """The (TP, BLOCK) tile of all T steps of neurons `offs` (rows >= T are zero), in cdt."""
    steps = tl.arange(0, TP)
    ptrs = ptr + steps[:, None].to(tl.int64) * N + offs[None, :]  # int64: t * N may pass 2^31
    return tl.load(ptrs, mask=(steps[:, None] < T) & mask[None, :], other=0.0).to(cdt)


@triton.jit
def _store_steps(ptr, tile, offs, mask, N, T: tl.constexpr, TP: tl.constexpr):
    steps = tl.arange(0, TP)
    ptrs = ptr + steps[:, None].to(tl.int64) * N + offs[None, :]
    tl.store(ptrs, tile.to(ptr.dtype.element_ty), mask=(steps[:, None] < T) & mask[None, :])


@triton.jit
def _row(tile, t: tl.constexpr, TP: tl.constexpr):
    """Row t of a (TP, BLOCK) tile: an exact in-thread select (x + 0 = x)."""
    return tl.sum(tl.where(tl.arange(0, TP)[:, None] == t, tile, 0.0), axis=0)


@triton.jit
def _set_row(tile, t: tl.constexpr, row, TP: tl.constexpr):
    return tl.where(tl.arange(0, TP)[:, None] == t, row[None, :], tile)


@triton.jit
def _membrane(xs, tau, v_th, v_reset, T: tl.constexpr, TP: tl.constexpr, FP64: tl.constexpr):
    """The pre-spike membranes h_t of all steps, in place of the inputs x_t in the tile."""
    v = tl.zeros([xs.shape[1]], dtype=xs.dtype) + v_reset
    for t in tl.static_range(T):
        x = _row(xs, t, TP)
        if FP64:
            h = v + (x - (v - v_reset)) / tau
        else:
            h = v + tl.math.div_rn(x - (v - v_reset), tau)
        xs = _set_row(xs, t, h, TP)
        v = tl.where(h >= v_th, v_reset, h)
    return xs


@autotune(_CONFIGS, key=["N", "T"])
@triton.jit
def _lif_fwd_kernel(
        x_ptr, s_ptr, p_ptr, N,
        T: tl.constexpr, TP: tl.constexpr, FP64: tl.constexpr, COLUMNS: tl.constexpr, WARPS: tl.constexpr,
):
    BLOCK: tl.constexpr = COLUMNS * 32 * WARPS
    tau, v_th, v_reset = tl.load(p_ptr), tl.load(p_ptr + 1), tl.load(p_ptr + 2)
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    cdt: tl.constexpr = tl.float64 if FP64 else tl.float32
    hs = _membrane(_load_steps(x_ptr, offs, mask, N, T, TP, cdt), tau, v_th, v_reset, T, TP, FP64)
    # 0 / 1 as a float tile, not the comparison's int1: exact in every dtype, and Triton's
    # interpreter cannot cast int1 tiles to bfloat16.
    _store_steps(s_ptr, tl.where(hs >= v_th, 1.0, 0.0), offs, mask, N, T, TP)


@autotune(_CONFIGS, key=["N", "T"])
@triton.jit
def _lif_bwd_kernel(
        gs_ptr, x_ptr, gx_ptr, p_ptr, N,
        T: tl.constexpr, TP: tl.constexpr, DETACH_RESET: tl.constexpr, FP64: tl.constexpr, COLUMNS: tl.constexpr,
        WARPS: tl.constexpr,
):
    BLOCK: tl.constexpr = COLUMNS * 32 * WARPS
    tau, v_th, v_reset = tl.load(p_ptr), tl.load(p_ptr + 1), tl.load(p_ptr + 2)
    alpha, decay = tl.load(p_ptr + 3), tl.load(p_ptr + 4)
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    cdt: tl.constexpr = tl.float64 if FP64 else tl.float32
    hs = _membrane(_load_steps(x_ptr, offs, mask, N, T, TP, cdt), tau, v_th, v_reset, T, TP, FP64)
    grads = _load_steps(gs_ptr, offs, mask, N, T, TP, cdt)  # dL/ds_t, replaced row by row by dL/dx_t
    g = tl.zeros([BLOCK], dtype=cdt)  # dL/dh_{t+1}
    for i in tl.static_range(T):  # t = T - 1 - i
        h = _row(hs, T - 1 - i, TP)
        s = (h >= v_th).to(cdt)
        sig = 1.0 / (1.0 + tl.exp(-(alpha * (h - v_th))))
        sg = alpha * sig * (1.0 - sig)
        if DETACH_RESET:
            dv_dh = 1.0 - s
        else:
            dv_dh = 1.0 - s + (v_reset - h) * sg
        g = _row(grads, T - 1 - i, TP) * sg + g * decay * dv_dh
        grads = _set_row(grads, T - 1 - i, g / tau, TP)
    _store_steps(gx_ptr, grads, offs, mask, N, T, TP)


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


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def lif_forward_triton(x2d: torch.Tensor, tau: float, v_th: float, v_reset: float) -> torch.Tensor:
    """x2d: (T, N) contiguous. Returns the spikes, (T, N) in x's dtype."""
    T, N = x2d.shape
    spikes = torch.empty_like(x2d)
    if N:
        fp64 = x2d.dtype == torch.float64
        _lif_fwd_kernel[_grid(N)](
            x2d, spikes, _params(x2d.device, _compute_dtype(x2d.dtype), tau, v_th, v_reset), N,
            T=T, TP=triton.next_power_of_2(T), FP64=fp64, COLUMNS=columns_per_thread(T, fp64))
    return spikes


def lif_backward_triton(grad_s: torch.Tensor, x2d: torch.Tensor, tau: float, v_th: float, v_reset: float,
                        alpha: float, detach_reset: bool) -> torch.Tensor:
    """grad_s, x2d: (T, N) contiguous (x the forward's input). Returns dL/dx, (T, N) in x's dtype."""
    T, N = x2d.shape
    grad_x = torch.empty_like(x2d)
    if N:
        fp64 = x2d.dtype == torch.float64
        _lif_bwd_kernel[_grid(N)](
            grad_s, x2d, grad_x, _params(x2d.device, _compute_dtype(x2d.dtype), tau, v_th, v_reset, alpha), N,
            T=T, TP=triton.next_power_of_2(T), DETACH_RESET=detach_reset, FP64=fp64,
            COLUMNS=columns_per_thread(T, fp64))
    return grad_x
