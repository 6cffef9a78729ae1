"""Gaussian-kernel attention of SOFT: X = K1 @ (M @ (K1^T @ V)), K1[i, j] = exp(-||q_i - l_j||^2 / 2).

    from zoo.kernels.gaussian_attention import gaussian_attention
    x = gaussian_attention(q, landmarks, mixing, v)      # (B, H, N, e)

On CUDA the fused Triton kernels run: K1 is built tile by tile in registers
from the direct-subtraction distance and never stored, forward or backward
(memory O(N (d + e) + m^2) per head instead of O(N m)). On CPU the plain
PyTorch reference (`reference.py`) runs. Force either with `impl=` or the
environment variable `ZOO_KERNELS_IMPL` ('triton' / 'reference'); under
`TRITON_INTERPRET=1` the Triton path also runs on CPU tensors when forced.
"""
from __future__ import annotations

import os
from typing import Optional

import torch

from .reference import gaussian_attention_reference, gaussian_kernel, squared_distance

__all__ = ["gaussian_attention", "gaussian_attention_reference", "gaussian_kernel", "squared_distance"]

_IMPLS = ("triton", "reference")


class _GaussianAttentionTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, landmarks, mixing, v):
        from .triton_gaussian_attention import gaussian_attention_fwd
        b, h, n, d = q.shape
        m, e = landmarks.shape[-2], v.shape[-1]
        q3 = q.reshape(b * h, n, d).contiguous()
        l3 = landmarks.reshape(b * h, m, d).contiguous()
        m3 = mixing.reshape(b * h, m, m).float().contiguous()
        v3 = v.reshape(b * h, n, e).contiguous()
        out, s, t = gaussian_attention_fwd(q3, l3, m3, v3)
        ctx.save_for_backward(q3, l3, m3, v3, s, t)
        ctx.shapes = (b, h, landmarks.dtype, mixing.dtype)
        return out.reshape(b, h, n, e)

    @staticmethod
    def backward(ctx, grad_out):
        from .triton_gaussian_attention import gaussian_attention_bwd
        q3, l3, m3, v3, s, t = ctx.saved_tensors
        b, h, l_dtype, m_dtype = ctx.shapes
        dx = grad_out.reshape(v3.shape).contiguous()
        dq, dl, dm, dv = gaussian_attention_bwd(q3, l3, m3, v3, s, t, dx)
        n, d = q3.shape[1:]
        m, e = l3.shape[1], v3.shape[2]
        return (dq.reshape(b, h, n, d), dl.reshape(b, h, m, d).to(l_dtype),
                dm.reshape(b, h, m, m).to(m_dtype), dv.reshape(b, h, n, e))


def _check(q: torch.Tensor, landmarks: torch.Tensor, mixing: torch.Tensor, v: torch.Tensor) -> None:
    if q.ndim != 4 or landmarks.ndim != 4 or mixing.ndim != 4 or v.ndim != 4:
        raise ValueError(
            "gaussian_attention takes 4-D tensors q (B, H, N, d), landmarks (B, H, m, d), mixing (B, H, m, m), "
            f"v (B, H, N, e); got {tuple(q.shape)}, {tuple(landmarks.shape)}, {tuple(mixing.shape)}, {tuple(v.shape)}")
    b, h, n, d = q.shape
    m = landmarks.shape[2]
    if (landmarks.shape != (b, h, m, d) or mixing.shape != (b, h, m, m)
            or v.shape[:3] != (b, h, n)):
        raise ValueError(
            f"gaussian_attention shapes do not fit: q {tuple(q.shape)} = (B, H, N, d) needs landmarks (B, H, m, d), "
            f"mixing (B, H, m, m), v (B, H, N, e); got landmarks {tuple(landmarks.shape)}, "
            f"mixing {tuple(mixing.shape)}, v {tuple(v.shape)}")


def _resolve_impl(impl: Optional[str], device: torch.device) -> str:
    impl = impl or os.environ.get("ZOO_KERNELS_IMPL") or ("triton" if device.type == "cuda" else "reference")
    if impl not in _IMPLS:
        raise ValueError(f"impl must be one of {_IMPLS}, got {impl!r}")
    if impl == "triton" and device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("the Triton path needs CUDA tensors (or TRITON_INTERPRET=1 to run it on CPU)")
    return impl


def gaussian_attention(
        q: torch.Tensor,
        landmarks: torch.Tensor,
        mixing: torch.Tensor,
        v: torch.Tensor,
        impl: Optional[str] = None,
) -> torch.Tensor:
    """X = K1 @ (mixing @ (K1^T @ v)) with K1[i, j] = exp(-||q_i - landmarks_j||^2 / 2).

    Args:
        q: queries (B, H, N, d).
        landmarks: (B, H, m, d).
        mixing: (B, H, m, m); used in float32.
        v: values (B, H, N, e).
        impl: 'triton' (CUDA, or CPU under TRITON_INTERPRET=1), 'reference', or None:
            `ZOO_KERNELS_IMPL`, else Triton on CUDA and the reference elsewhere.
    Returns:
        (B, H, N, e) in v's dtype; differentiable in all four inputs. Accumulation is float32.
    """
    _check(q, landmarks, mixing, v)
    if _resolve_impl(impl, q.device) == "reference":
        return gaussian_attention_reference(q, landmarks, mixing, v)
    return _GaussianAttentionTriton.apply(q, landmarks, mixing, v)
