"""Non-causal linear attention of RALA, MALA and InLine in plain PyTorch: the definition.

This file is the ground truth the Triton kernels are tested against and the path
that runs on CPU. It follows the official evaluation order where it
matters for float32 parity (kv built from operands pre-scaled by N^-1/2 or
sqrt(s/N)), and computes in float32 (float64 when given float64) whatever the
input dtype, returning the input dtype.

Per batch item and head, with q, k, v of shape (N, d), s = d^-1/2, R = 2-D RoPE:

- "rala" (RALA's `GateLinearAttentionNoSilu`): phi = ELU + 1;
  alpha = softmax_j(s * mean_i phi(q_i) . phi(k_j)), kt_j = N alpha_j phi(k_j);
  Y_i = (R(phi(q_i)) @ kv) / (phi(q_i) . mean_j kt_j + eps), kv = (1/N) sum_j R(kt_j)^T v_j.
- "mala" (MALA's `AddLinearAttention`): phi = ELU + 1; z_i = s phi(q_i) . mean_j phi(k_j);
  kv = (s/N) sum_j R(phi(k_j))^T v_j; Y_i = (R(phi(q_i)) @ kv)(1 + 1/(z_i + eps)) - z_i mean_j v_j.
- "inline" (InLine's `InLineAttention`): phi = identity, no RoPE, no eps;
  Y_i = (s/N) q_i (K^T V) + (1 - s q_i . mean_j k_j) mean_j v_j.

RoPE rotates only the numerator (never the normalisers z); v is never mapped or rotated.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import is_in_torch_dispatch_mode

__all__ = [
    "VARIANTS", "linear_attention_reference", "rope_2d_angles", "rope_2d_tables", "apply_rope_2d",
    "rotate_every_two",
]

VARIANTS = ("rala", "mala", "inline")
ROPE_BASE = 10000.0


def rope_2d_angles(head_dim: int, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The official `RoPE.angle` buffer: (head_dim // 2,) frequencies, each repeated twice.

    `1 / 10000 ** linspace(0, 1, head_dim // 4)`, endpoint included (the slowest
    frequency is exactly 1e-4), then `[t0, t0, t1, t1, ...]`.
    """
    if head_dim % 4:
        raise ValueError(f"2-D RoPE needs a head dim divisible by 4, got {head_dim}")
    freqs = 1.0 / ROPE_BASE ** torch.linspace(0, 1, head_dim // 4, device=device, dtype=dtype)
    return freqs.repeat_interleave(2)


def rope_2d_tables(
        height: int, width: int, head_dim: int, device=None, dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, each (height * width, head_dim), for a row-major token grid.

    Token t sits at row r = t // width, column c = t % width; its phase vector is
    `concat(r * angle, c * angle)` (first half of the channels turn with the row,
    second half with the column). Phases are computed in float32 (float64 if asked
    for float64), as the official float32 buffer does, then cast to `dtype`.

    The tables of the last few (height, width, head_dim, device, dtype) are kept, so
    the blocks of a stage (and every call at one input size) share one pair instead of
    evaluating N x d sines and cosines each (the official code builds them once per
    stage). The returned tensors are shared: never modify them in place. Nothing is
    cached while torch.compile / torch.export trace or under a dispatch mode (fake or
    symbolic tensors must not outlive their trace).
    """
    if not _cacheable(height, width):
        return _build_rope_2d_tables(height, width, head_dim, device, dtype)
    key = (height, width, head_dim, torch.device(device if device is not None else "cpu"), dtype)
    tables = _ROPE_TABLES.pop(key, None)  # re-inserted below: the dict's order is least recent first
    if tables is None:
        with torch.inference_mode(False):  # ordinary tensors, usable outside inference mode too
            tables = _build_rope_2d_tables(height, width, head_dim, device, dtype)
        while len(_ROPE_TABLES) >= _ROPE_CACHE_SIZE:
            _ROPE_TABLES.pop(next(iter(_ROPE_TABLES)), None)
    _ROPE_TABLES[key] = tables
    return tables


_ROPE_TABLES: dict = {}
_ROPE_CACHE_SIZE = 8  # RAVLT uses 4 grids per input size


def _cacheable(height, width) -> bool:
    return (isinstance(height, int) and isinstance(width, int) and not torch.compiler.is_compiling()
            and not is_in_torch_dispatch_mode())


def _build_rope_2d_tables(height: int, width: int, head_dim: int, device, dtype: torch.dtype):
    work = torch.float64 if dtype == torch.float64 else torch.float32
    angle = rope_2d_angles(head_dim, device=device, dtype=work)
    rows = torch.arange(height, device=device, dtype=work).repeat_interleave(width)
    cols = torch.arange(width, device=device, dtype=work).repeat(height)
    phase = torch.cat([rows[:, None] * angle, cols[:, None] * angle], dim=-1)
    return phase.cos().to(dtype), phase.sin().to(dtype)


def rotate_every_two(x: torch.Tensor) -> torch.Tensor:
    """Interleaved pairs (a, b) -> (-b, a) over the last dimension ("rotate every two")."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)


def apply_rope_2d(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (..., N, head_dim) by the tables of `rope_2d_tables` (GPT-J style pairs).

    The result is laid out as the rotated pairs are, (..., N, head_dim) contiguous, whatever
    x's strides (the first operand of the sum sets the layout; the sum itself commutes).
    """
    return rotate_every_two(x) * sin + x * cos


def _elu_plus_one(x: torch.Tensor) -> torch.Tensor:
    return F.elu(x) + 1


def _rala(q, k, v, rope, eps: float) -> torch.Tensor:
    n_tok, scale = q.shape[-2], q.shape[-1] ** -0.5
    q, k = _elu_plus_one(q), _elu_plus_one(k)
    alpha = torch.softmax(scale * q.mean(-2, keepdim=True) @ k.transpose(-1, -2), dim=-1)  # (.., 1, N)
    k = k * alpha.transpose(-1, -2) * n_tok
    z = 1 / (q @ k.mean(-2, keepdim=True).transpose(-1, -2) + eps)  # un-rotated q and kt
    kv = (rope(k).transpose(-1, -2) * n_tok ** -0.5) @ (v * n_tok ** -0.5)
    return rope(q) @ kv * z


def _mala(q, k, v, rope, eps: float) -> torch.Tensor:
    n_tok, scale = q.shape[-2], q.shape[-1] ** -0.5
    q, k = _elu_plus_one(q), _elu_plus_one(k)
    z = q @ k.mean(-2, keepdim=True).transpose(-1, -2) * scale  # un-rotated, no eps
    factor = (scale / n_tok) ** 0.5
    kv = (rope(k).transpose(-1, -2) * factor) @ (v * factor)
    return rope(q) @ kv * (1 + 1 / (z + eps)) - z * v.mean(-2, keepdim=True)


def _inline(q, k, v, rope, eps: float) -> torch.Tensor:
    del rope, eps  # InLine has neither
    n_tok, scale = q.shape[-2], q.shape[-1] ** -0.5
    factor = (scale / n_tok) ** 0.5
    kv = (k.transpose(-1, -2) * factor) @ (v * factor)
    k_mean, v_mean = k.mean(-2, keepdim=True), v.mean(-2, keepdim=True)
    return q @ kv + (1 - (q @ k_mean.transpose(-1, -2)) * scale) * v_mean


_CORES = {"rala": _rala, "mala": _mala, "inline": _inline}


def linear_attention_reference(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, variant: str,
        rope_hw: tuple[int, int] | None = None, eps: float = 1e-6,
) -> torch.Tensor:
    """The linear-attention core `variant` on raw projections q, k, v (B, heads, N, d).

    Differentiable (plain autograd). Inputs are not validated here; the public
    `zoo.kernels.linear_attention.linear_attention` does that.
    """
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    qf, kf, vf = q.to(work), k.to(work), v.to(work)
    if rope_hw is None:
        def rope(x):
            return x
    else:
        cos, sin = rope_2d_tables(*rope_hw, q.shape[-1], device=q.device, dtype=work)

        def rope(x):
            return apply_rope_2d(x, cos, sin)
    return _CORES[variant](qf, kf, vf, rope, eps).to(q.dtype)
