"""Plain-PyTorch RALA / MALA cores (temporary home until zoo.kernels lands)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .rope import apply_rope_2d, rope_2d_tables


def linear_attention(q, k, v, *, variant: str, rope_hw, eps: float = 1e-6):
    n_tok, d = q.shape[-2], q.shape[-1]
    scale = d ** -0.5
    q = F.elu(q) + 1
    k = F.elu(k) + 1
    cos, sin = rope_2d_tables(*rope_hw, d, device=q.device, dtype=q.dtype)
    if variant == "rala":
        weights = torch.softmax(q.mean(-2, keepdim=True) @ k.transpose(-1, -2) * scale, dim=-1)
        k = k * weights.transpose(-1, -2) * n_tok
        z = 1 / (q @ k.mean(-2, keepdim=True).transpose(-1, -2) + eps)
        kv = (apply_rope_2d(k, cos, sin).transpose(-1, -2) * n_tok ** -0.5) @ (v * n_tok ** -0.5)
        return apply_rope_2d(q, cos, sin) @ kv * z
    z = q @ k.mean(-2, keepdim=True).transpose(-1, -2) * scale
    factor = (scale / n_tok) ** 0.5
    kv = (apply_rope_2d(k, cos, sin).transpose(-1, -2) * factor) @ (v * factor)
    return apply_rope_2d(q, cos, sin) @ kv * (1 + 1 / (z + eps)) - z * v.mean(-2, keepdim=True)
