"""SOFT's softmax-free Gaussian-kernel attention and its Newton-Raphson inverse.

SOFT (Lu et al., NeurIPS 2021) and SOFT-Norm (Lu et al., IJCV 2024); official
code https://github.com/fudan-zvg/SOFT (`models/softmax_free_transformer.py`,
`SOFT/kernel/inverse.py`). The Newton routine is part of the architecture: 20
steps from a chosen start, far from convergence for SOFT-Norm, so it is
reproduced step by step (official `SOFT/kernel/inverse.py:newton_inv`; SOFT-Norm's
`SoftmaxFreeNormAttentionKernel.newton_inv` in `models/softmax_free_transformer.py`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from zoo.kernels.gaussian_attention import gaussian_attention, gaussian_kernel

from .amp import autocast_off
from .fx import fx_leaf

__all__ = ["SoftAttention", "newton_inverse", "newton_inverse_halving", "NEWTON_INITS", "KERNEL_METHODS"]

NEWTON_INITS = ("regularized", "halving")
KERNEL_METHODS = ("fused", "torch")


def _newton_regularized(mat: torch.Tensor, iters: int) -> torch.Tensor:
    # SOFT/kernel/inverse.py:newton_inv (master since bb0eec0), operation for operation.
    eye = torch.eye(mat.size(-1), device=mat.device, dtype=mat.dtype)
    alpha = 0.9 * 2 / torch.max(torch.sum(mat, dim=-1), -1)[0] ** 2
    p = mat + 0.01 * eye
    v = alpha[..., None, None] * p
    for _ in range(iters):
        v = 2 * v - v @ p @ v
    return v


class _NewtonInverse(torch.autograd.Function):
    """Forward: the regularised Newton iteration without autograd; backward: the inverse's gradient."""

    @staticmethod
    def forward(ctx, mat: torch.Tensor, iters: int) -> torch.Tensor:
        with torch.no_grad():
            out = _newton_regularized(mat, iters)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (inv,) = ctx.saved_tensors
        inv_t = inv.transpose(-1, -2)
        return -(inv_t @ grad @ inv_t), None


def newton_inverse(mat: torch.Tensor, iters: int = 20) -> torch.Tensor:
    """Original SOFT's approximate (mat + 0.01 I)^-1: per-matrix start, analytic backward.

        P = mat + 0.01 I;  V0 = 0.9 * 2 / (max_i sum_j mat_ij)^2 * P;  V <- 2V - V P V, `iters` times

    The backward is `-(V^T g V^T)` (the exact inverse's gradient at V), as the
    official CUDA-only autograd Function, not back-propagation through the steps.
    Works on any device; computes in mat's dtype (give it float32).
    """
    return _NewtonInverse.apply(mat, iters)


def newton_inverse_halving(mat: torch.Tensor, iters: int = 20, per_sample: bool = False) -> torch.Tensor:
    """The Newton routine with the halving start (SOFT-Norm; original SOFT before 2022-07-05).

        alpha = 2 / (max row sum of mat)^2;  while max colsum |I - mat @ (alpha mat)| > 1.01
        (at most 10 times): alpha /= 2;  V = alpha mat;  V <- 2V - V mat V, `iters` times

    The maxima are over the WHOLE tensor - every image and head of the batch -
    as in the official code, so an image's result depends on its batch.
    `per_sample=True` takes them per leading (batch) index instead (not the
    official behaviour). Plain autograd through every step (as official); no sync
    with the host (the halving loop always runs 10 masked rounds).
    """
    eye = torch.eye(mat.size(-1), device=mat.device, dtype=mat.dtype)
    rowsum = torch.sum(mat, dim=-1)

    def reduce_max(x: torch.Tensor) -> torch.Tensor:
        if per_sample:
            return x.reshape(x.shape[0], -1).amax(1).reshape(-1, *([1] * (mat.ndim - 1)))
        return torch.max(x)

    def pnorm(v: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return reduce_max(torch.sum(torch.abs(eye - torch.matmul(mat, v)), dim=-2))

    alpha = 2 / (reduce_max(rowsum) ** 2)
    v = alpha * mat
    running = pnorm(v) > 1.01
    for _ in range(10):
        alpha = torch.where(running, alpha * 0.5, alpha)
        v = alpha * mat
        running = running & (pnorm(v) > 1.01)
    for _ in range(iters):
        v = 2 * v - v @ mat @ v
    return v


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    # float16 / bfloat16 go up to float32 (the Newton routine needs it); float64 stays float64.
    return x if x.dtype == torch.float64 else x.float()


class SoftAttention(nn.Module):
    """Softmax-free attention: Gaussian kernel to pooled landmarks, Newton inverse, DW-conv on V.

        Q = W_q x / d^(1/4);  L = GELU(LN(Conv_rxr(Q)));  K1 = exp(-|Q - L|^2 / 2);  K2 = exp(-|L - L|^2 / 2)
        X = K1 @ NewtonInv(K2) @ (K1^T @ V) + DWConv_kxk(V);  out = W_o X

    Args:
        dim: channels; heads of dim // num_heads channels.
        num_heads: heads.
        ratio: landmark pooling (conv kernel = stride = ratio, one conv shared by the heads).
        conv_size: size of the per-head depthwise conv on V (one k x k kernel per head).
        newton_iters: Newton steps (official 20).
        normalized: SOFT-Norm: halving start on K2 and D^-1/2 . V . D^-1/2 (D = row sums of K2).
        newton_init: original SOFT only: 'regularized' (current official code, default) or
            'halving' (the official code before 2022-07-05, when the 2021 checkpoints were trained).
        per_sample_step: take the halving start's maxima per image instead of over the batch
            (default False = official).
        kernel_method: 'fused' (default: `zoo.kernels.gaussian_attention`, X = K1 (M (K1^T V));
            on CUDA the Triton kernel forms the direct-subtraction distance of the official
            `kernel_method="cuda"` in registers and never stores N x m; on CPU the reference
            computes |q|^2 + |l|^2 - 2 q.l^T with a matmul, the distance of the official configs'
            `kernel_method="torch"`) or 'torch' (the official `kernel_method="torch"` computation,
            materialised, in its association order (K1 M)(K1^T V)).
    """

    def __init__(
            self,
            dim: int,
            num_heads: int,
            ratio: int,
            conv_size: int,
            newton_iters: int = 20,
            normalized: bool = False,
            newton_init: str = "regularized",
            per_sample_step: bool = False,
            kernel_method: str = "fused",
    ):
        super().__init__()
        if newton_init not in NEWTON_INITS:
            raise ValueError(f"newton_init must be one of {NEWTON_INITS}, got {newton_init!r}")
        if kernel_method not in KERNEL_METHODS:
            raise ValueError(f"kernel_method must be one of {KERNEL_METHODS}, got {kernel_method!r}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.ratio = ratio
        self.newton_iters = newton_iters
        self.normalized = normalized
        self.newton_init = newton_init
        self.per_sample_step = per_sample_step
        self.kernel_method = kernel_method
        inner = self.num_heads * self.head_dim
        self.q = nn.Linear(dim, inner)
        self.v = nn.Linear(dim, inner)
        self.landmark = nn.Conv2d(self.head_dim, self.head_dim, ratio, stride=ratio, bias=False)
        self.landmark_norm = nn.LayerNorm(self.head_dim)  # eps 1e-5 (official default)
        self.landmark_act = nn.GELU()
        self.dwconv = nn.Conv2d(num_heads, num_heads, conv_size, padding=conv_size // 2, groups=num_heads, bias=False)
        self.proj = nn.Linear(inner, dim)

    def _mixing(self, landmarks: torch.Tensor) -> torch.Tensor:
        """The (m, m) matrix between K1 and K1^T: Newton-approximated inverse of K2, in float32."""
        # The fused path's K1 is direct-subtraction on CUDA (Triton) and expanded on CPU (the
        # reference's matmul); K2 follows it, as the official configs compute both one way.
        direct = self.kernel_method == "fused" and landmarks.is_cuda
        k2 = gaussian_kernel(landmarks, landmarks, "direct" if direct else "expand")
        if self.normalized:
            inv = newton_inverse_halving(k2, self.newton_iters, self.per_sample_step)
            d = 1 / k2.sum(-1, keepdim=True).sqrt()
            return d * inv * d.transpose(-1, -2)
        if self.newton_init == "halving":
            return newton_inverse_halving(k2, self.newton_iters, self.per_sample_step)
        return newton_inverse(k2, self.newton_iters)

    @fx_leaf  # torch.fx: autocast and the device-dependent path are Python, the Newton inverse an autograd.Function
    def _kernel_attention(self, q: torch.Tensor, lm: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """K1 @ NewtonInv(K2) @ (K1^T @ V): kernels and the Newton routine in float32, also under
        autocast (the official models were trained in fp32: AMP is off in the official `main.py`)."""
        with autocast_off(q.device.type):
            mixing = self._mixing(_at_least_float32(lm))
            if self.kernel_method == "torch":
                qf, vf = _at_least_float32(q), _at_least_float32(v)
                k1 = gaussian_kernel(qf, _at_least_float32(lm), "expand")
                return torch.matmul(torch.matmul(k1, mixing), torch.matmul(k1.transpose(-1, -2), vf)).to(v.dtype)
            return gaussian_attention(q, lm, mixing, v)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        b, n, _ = x.shape
        h, w = size
        heads, hd = self.num_heads, self.head_dim
        q = self.q(x).reshape(b, n, heads, hd).transpose(1, 2)
        v = self.v(x).reshape(b, n, heads, hd).transpose(1, 2)
        q = q / math.sqrt(math.sqrt(hd))
        # Landmarks: every head's queries as a (hd, H, W) image through one shared r x r conv.
        lm = self.landmark(q.reshape(b * heads, h, w, hd).permute(0, 3, 1, 2))
        lm = lm.flatten(2).transpose(1, 2).reshape(b, heads, -1, hd)
        lm = self.landmark_act(self.landmark_norm(lm))

        out = self._kernel_attention(q, lm, v)

        # Per-head k x k conv on V, one kernel shared by the head's channels.
        vc = v.reshape(b, heads, h, w, hd).permute(0, 4, 1, 2, 3).reshape(b * hd, heads, h, w)
        out = out + self.dwconv(vc).reshape(b, hd, heads, h, w).flatten(3).permute(0, 2, 3, 1)
        return self.proj(out.transpose(1, 2).reshape(b, n, heads * hd))
