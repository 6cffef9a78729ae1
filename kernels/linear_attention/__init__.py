"""Non-causal linear attention shared by RAVLT (RALA), MAViT (MALA) and InLine.

    from zoo.kernels.linear_attention import linear_attention
    y = linear_attention(q, k, v, variant="rala", rope_hw=(H, W))     # (B, heads, N, d)

q, k, v are the RAW projections (before the feature map), (B, heads, N, d), any
strides: channels-first callers pass `t.view(B, heads, d, N).transpose(-1, -2)`
and pay for no copy. The exact functions are in `reference.py` (with the 2-D
RoPE helpers `rope_2d_tables` / `apply_rope_2d` the model layers use).

Paths: 'triton' (fused forward and hand-written backward, `triton_linear_attention.py`)
for CUDA tensors with d in {16, 32, 64} and dtype float16 / bfloat16 / float32;
'reference' (plain PyTorch, fp32 or fp64 math, autograd through it) otherwise.
`impl='auto'` picks by device; the environment variable ZOO_KERNELS_IMPL
('triton' | 'reference' | 'auto') overrides 'auto'. Under TRITON_INTERPRET=1 a
forced Triton path runs on CPU tensors. On the Triton path the output (and the
input gradients) of a token-minor input (stride 1 along N) are token-minor too,
so `y.transpose(-1, -2).reshape(B, C, H, W)` is free. Triton is imported only
when its path runs.
"""
from __future__ import annotations

import os
from typing import Optional

import torch

from .reference import VARIANTS, apply_rope_2d, linear_attention_reference, rope_2d_angles, rope_2d_tables

__all__ = [
    "linear_attention", "linear_attention_reference", "rope_2d_angles", "rope_2d_tables", "apply_rope_2d",
    "resolve_impl", "TritonLinearAttention", "VARIANTS", "TRITON_HEAD_DIMS", "TRITON_DTYPES",
]

IMPLS = ("auto", "triton", "reference")
ENV_IMPL = "ZOO_KERNELS_IMPL"
TRITON_HEAD_DIMS = (16, 32, 64)
TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
REFERENCE_DTYPES = TRITON_DTYPES + (torch.float64,)


def _triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _triton_unsupported(q: torch.Tensor) -> Optional[str]:
    """Why the Triton path cannot take q, or None."""
    if q.shape[-1] not in TRITON_HEAD_DIMS:
        return f"head dim d in {TRITON_HEAD_DIMS}, got d={q.shape[-1]}"
    if q.dtype not in TRITON_DTYPES:
        return f"dtype in {[str(t) for t in TRITON_DTYPES]}, got {q.dtype}"
    if q.device.type != "cuda" and not _triton_interpreted():
        return f"CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors), got device {q.device}"
    return None


def resolve_impl(impl: str, q: torch.Tensor) -> str:
    """'triton' or 'reference' for inputs like q (argument, else ZOO_KERNELS_IMPL for 'auto').

    'auto' takes Triton only for CUDA tensors it supports; a forced 'triton' on
    inputs it cannot take raises ValueError.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        impl = os.environ.get(ENV_IMPL, "") or "auto"
        if impl not in IMPLS:
            raise ValueError(f"environment variable {ENV_IMPL} must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        return "triton" if q.device.type == "cuda" and _triton_unsupported(q) is None else "reference"
    if impl == "triton":
        reason = _triton_unsupported(q)
        if reason is not None:
            raise ValueError(f"linear_attention: the Triton path needs {reason}")
    return impl


def _check_inputs(q, k, v, variant: str, rope_hw) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"linear_attention: variant must be one of {VARIANTS}, got {variant!r}")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"linear_attention: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(
                f"linear_attention: expected {name} of shape (B, heads, N, d), got {t.ndim}-D shape {tuple(t.shape)}")
    if not (q.shape == k.shape == v.shape):
        raise ValueError(
            "linear_attention: q, k, v must have the same shape (B, heads, N, d), got "
            f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if q.shape[-2] < 1 or q.shape[-1] < 1:
        raise ValueError(f"linear_attention: expected N >= 1 tokens and d >= 1 features, got shape {tuple(q.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"linear_attention: q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.dtype not in REFERENCE_DTYPES:
        raise ValueError(
            f"linear_attention: expected dtype in {[str(t) for t in REFERENCE_DTYPES]}, got {q.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"linear_attention: q, k, v must share a device, got {q.device}, {k.device}, {v.device}")
    _check_rope(q, variant, rope_hw)


def _check_rope(q: torch.Tensor, variant: str, rope_hw) -> None:
    if rope_hw is None:
        return
    if variant == "inline":
        raise ValueError("linear_attention: variant 'inline' has no RoPE; expected rope_hw=None, "
                         f"got {rope_hw!r}")
    try:
        valid = len(tuple(rope_hw)) == 2 and all(int(x) == x and x >= 1 for x in rope_hw)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"linear_attention: rope_hw must be a (H, W) pair of positive ints, got {rope_hw!r}")
    height, width = rope_hw
    if height * width != q.shape[-2]:
        raise ValueError(
            f"linear_attention: rope_hw {tuple(rope_hw)} gives {height * width} tokens, "
            f"expected N={q.shape[-2]} (tokens must form the row-major H x W grid)")
    if q.shape[-1] % 4:
        raise ValueError(f"linear_attention: 2-D RoPE needs a head dim divisible by 4, got d={q.shape[-1]}")


class TritonLinearAttention(torch.autograd.Function):
    """The Triton path: fused forward, hand-written backward (`triton_linear_attention.py`).

    Saves q, k, v and the O(d^2) per-head reductions; everything per token is recomputed.
    `apply(q, k, v, variant, rope_hw, eps, cfg)` with cfg a `LaunchConfig` (None: defaults).
    """

    @staticmethod
    def forward(ctx, q, k, v, variant: str, rope_hw, eps: float, cfg):
        from . import triton_linear_attention as kernels
        cfg = cfg or kernels.LaunchConfig()
        problem = kernels.problem(q, variant, rope_hw, eps)
        y, stats = kernels.forward(q, k, v, problem, cfg)
        ctx.save_for_backward(q, k, v, *stats)
        ctx.kernels, ctx.problem, ctx.cfg = kernels, problem, cfg
        return y

    @staticmethod
    def backward(ctx, dy):
        q, k, v, *stats = ctx.saved_tensors
        dq, dk, dv = ctx.kernels.backward(q, k, v, dy, stats, ctx.problem, ctx.cfg)
        return dq, dk, dv, None, None, None, None


def linear_attention(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, variant: str,
        rope_hw: Optional[tuple[int, int]] = None, eps: float = 1e-6, impl: str = "auto",
) -> torch.Tensor:
    """Non-causal linear attention core of RALA / MALA / InLine; (B, heads, N, d) in the input dtype.

    Args:
        q, k, v: raw projections (B, heads, N, d), any strides, same dtype and device.
        variant: 'rala' (ravlt.md §2.4), 'mala' (mala.md §2.4) or 'inline' (inline.md §2.1).
        rope_hw: the (H, W) token grid (row-major, H * W == N) for 2-D RoPE, or None for
            no RoPE. Not allowed for 'inline'. Needs d % 4 == 0.
        eps: added to the rala / mala normalisers (unused by 'inline').
        impl: 'auto' | 'triton' | 'reference'; ZOO_KERNELS_IMPL overrides 'auto'.
    """
    _check_inputs(q, k, v, variant, rope_hw)
    if rope_hw is not None:
        rope_hw = (int(rope_hw[0]), int(rope_hw[1]))
    if resolve_impl(impl, q) == "triton" and q.shape[0] * q.shape[1] > 0:  # an empty grid cannot launch
        return TritonLinearAttention.apply(q, k, v, variant, rope_hw, float(eps), None)
    return linear_attention_reference(q, k, v, variant=variant, rope_hw=rope_hw, eps=float(eps))
