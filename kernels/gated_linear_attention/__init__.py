"""Bidirectional gated linear attention (ViG): public function, autograd and dispatch.

    o = bidirectional_gla(q, k, v, a_f, a_b, scale=None)      # o_f + o_b, (B, N, H, dv)

q, k, a_f, a_b: (B, N, H, dk); v: (B, N, H, dv); any strides (the model passes views
of its fused qkv projection). a_f, a_b are log-decays (<= 0, ViG: logsigmoid(z) / 16)
for the forward and the backward scan. The exact function is in `reference.py`.

Paths: 'triton' (fused chunked kernels, forward and backward, `triton_chunk.py`) on CUDA
tensors; 'reference' (the chunked PyTorch form, autograd through it) elsewhere. Force one
with `impl=` or the environment variable ZOO_KERNELS_IMPL ('triton' | 'reference' |
'auto'); under TRITON_INTERPRET=1 the Triton path runs on CPU tensors when forced.
Triton is imported only when the Triton path runs.
"""
from __future__ import annotations

import os
from typing import Optional

import torch

from .reference import bigla_chunked, bigla_recurrent

__all__ = ["bidirectional_gla", "bigla_chunked", "bigla_recurrent", "resolve_impl"]

IMPLS = ("auto", "triton", "reference")


def resolve_impl(impl: Optional[str], device: torch.device) -> str:
    """'triton' or 'reference' for a tensor on `device` (argument > ZOO_KERNELS_IMPL > auto)."""
    impl = impl or os.environ.get("ZOO_KERNELS_IMPL", "auto") or "auto"
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        return "triton" if device.type == "cuda" else "reference"
    return impl


class _BiGLATriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, a_f, a_b, scale):
        from .triton_chunk import bigla_bwd, bigla_fwd
        ctx.bwd = bigla_bwd
        ctx.scale = scale
        ctx.save_for_backward(q, k, v, a_f, a_b)
        return bigla_fwd(q, k, v, a_f, a_b, scale)

    @staticmethod
    def backward(ctx, do):
        q, k, v, a_f, a_b = ctx.saved_tensors
        dq, dk, dv, da_f, da_b = ctx.bwd(q, k, v, a_f, a_b, do, ctx.scale)
        return dq, dk, dv, da_f, da_b, None


def bidirectional_gla(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a_f: torch.Tensor, a_b: torch.Tensor,
        scale: Optional[float] = None, *, impl: Optional[str] = None,
) -> torch.Tensor:
    """o_f + o_b of ViG's bidirectional gated linear attention; (B, N, H, dv), v's dtype.

    Args:
        q, k: (B, N, H, dk) queries and keys; v: (B, N, H, dv) values.
        a_f, a_b: (B, N, H, dk) log-decays (<= 0) of the forward and backward scans.
        scale: multiplies q; default dk ** -0.5.
        impl: 'triton', 'reference' or 'auto' (default: env ZOO_KERNELS_IMPL, else auto).
    """
    if q.ndim != 4 or k.shape != q.shape or a_f.shape != q.shape or a_b.shape != q.shape \
            or v.ndim != 4 or v.shape[:3] != q.shape[:3]:
        raise ValueError(
            "bidirectional_gla takes q, k, a_f, a_b of shape (B, N, H, dk) and v of shape (B, N, H, dv); got "
            f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, a_f {tuple(a_f.shape)}, a_b {tuple(a_b.shape)}")
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    if resolve_impl(impl, q.device) == "triton":
        return _BiGLATriton.apply(q, k, v, a_f, a_b, scale)
    return bigla_chunked(q, k, v, a_f, a_b, scale)
