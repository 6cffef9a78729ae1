"""Gaussian-kernel (SOFT) attention, the definition in plain PyTorch.

    K1[i, j] = exp(-||q_i - l_j||^2 / 2)           queries (N, d) vs landmarks (m, d)
    X        = K1 @ (M @ (K1^T @ V))                 M: any (m, m) matrix (SOFT: a Newton
                                                     approximation of the landmark kernel's inverse)

All batch dimensions lead; accumulation is in float32 (float64 inputs stay
float64), the output has V's dtype. This module is differentiable by autograd
and is what the public function runs on CPU; the Triton kernels must match it.

Two formulas give the squared distances; they are the same function and differ
by rounding only. 'expand', |q|^2 + |l|^2 - 2 q.l^T, is what SOFT's official
configs compute (`kernel_method: "torch"` in every config with a released
checkpoint but SOFT_Tiny_cuda) and is one matmul: the attention reference uses
it. 'direct', sum_c (q_c - l_c)^2, is the formula of SOFT's CUDA kernel (and of
the Triton kernel, which forms it in registers); on CPU it is a memory-bound
N x m x d subtraction, 10-40x slower than the matmul. In float32 the expanded
form's cancellation error is at most about (d + 2) eps (|q|^2 + |l|^2) per
entry; the direct form's is about d eps |q - l|^2 (it is exact at zero distance).
"""
from __future__ import annotations

import torch

__all__ = ["squared_distance", "gaussian_kernel", "gaussian_attention_reference", "FORMULAS"]

FORMULAS = ("expand", "direct")


def _acc_dtype(*tensors: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _direct(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    out = a.new_zeros(*torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-2])
    for c in range(a.shape[-1]):
        out = out + (a[..., :, c, None] - b[..., None, :, c]).square()
    return out


class _DirectSquaredDistance(torch.autograd.Function):
    """Direct-subtraction distance with the official CUDA kernel's backward
    (da_i = 2 sum_j g_ij (a_i - b_j), db_j = -2 sum_i g_ij (a_i - b_j)): no per-channel
    (N, m) differences are kept for backward."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        return _direct(a, b)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, b = ctx.saved_tensors
        grad_a = 2 * (grad.sum(-1, keepdim=True) * a - grad @ b)
        grad_b = 2 * (grad.sum(-2).unsqueeze(-1) * b - grad.transpose(-1, -2) @ a)
        return grad_a, grad_b


def _expanded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # baddbmm adds the norms in the matmul's own pass: no extra N x m temporaries.
    if a.shape[:-2] != b.shape[:-2]:  # (torch.broadcast_shapes costs more than the small products)
        lead = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a, b = a.expand(*lead, *a.shape[-2:]), b.expand(*lead, *b.shape[-2:])
    lead, (n, d), m = a.shape[:-2], a.shape[-2:], b.shape[-2]
    a3, b3 = a.reshape(-1, n, d), b.reshape(-1, m, d)
    norms = a3.square().sum(-1, keepdim=True) + b3.square().sum(-1).unsqueeze(-2)
    return torch.baddbmm(norms, a3, b3.transpose(-1, -2), alpha=-2).reshape(*lead, n, m)


def squared_distance(a: torch.Tensor, b: torch.Tensor, formula: str = "direct") -> torch.Tensor:
    """Pairwise ||a_i - b_j||^2 of a (..., N, d) and b (..., m, d) -> (..., N, m), in a's dtype.

    formula:
        'direct': sum_c (a_ic - b_jc)^2, accumulated channel by channel (the formula of
            SOFT's CUDA kernel, `kernel_method="cuda"`; exact zeros on a kernel's diagonal).
            Memory O(N m), never O(N m d).
        'expand': |a_i|^2 + |b_j|^2 - 2 a_i.b_j, the formula of SOFT's `kernel_method="torch"`
            (which writes the norms as (a**2) @ ones(d, m) + ones(N, d) @ (b**2)^T), in one
            batched matmul; cancellation can make it slightly negative.
    """
    if formula == "direct":
        if a.shape[:-2] == b.shape[:-2] and torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
            return _DirectSquaredDistance.apply(a, b)
        return _direct(a, b)
    if formula == "expand":
        return _expanded(a, b)
    raise ValueError(f"formula must be one of {FORMULAS}, got {formula!r}")


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, formula: str = "direct") -> torch.Tensor:
    """exp(-||a_i - b_j||^2 / 2), (..., N, m)."""
    # In place on the fresh distance tensor: halving is exact, so this rounds as exp(-D / 2).
    return squared_distance(a, b, formula).mul_(-0.5).exp_()


def gaussian_attention_reference(
        q: torch.Tensor,
        landmarks: torch.Tensor,
        mixing: torch.Tensor,
        v: torch.Tensor,
        formula: str = "expand",
) -> torch.Tensor:
    """X = K1 @ (M @ (K1^T @ V)) with K1 = exp(-||q - l||^2 / 2).

    Args:
        q: queries (..., N, d).
        landmarks: (..., m, d).
        mixing: M, (..., m, m).
        v: values (..., N, e).
        formula: squared-distance formula, see `squared_distance`: 'expand' (default, the
            official configs' formula and one matmul) or 'direct' (the official CUDA kernel's).
    Returns:
        (..., N, e) in v's dtype.
    """
    acc = _acc_dtype(q, landmarks, mixing, v)
    k1 = gaussian_kernel(q.to(acc), landmarks.to(acc), formula)
    s = k1.transpose(-1, -2) @ v.to(acc)            # (m, e)
    return (k1 @ (mixing.to(acc) @ s)).to(v.dtype)
