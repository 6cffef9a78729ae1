"""The token mixer shared by RAVLT and MAViT.

Official: `GateLinearAttentionNoSilu` / `VanillaSelfAttention` in `classfication/RALA.py`
(https://github.com/qhfan/RALA) and `AddLinearAttention` in `classfication_release/model.py`
(https://github.com/qhfan/MALA).

    qkvo = 1x1 conv -> [Q | K | V | O]
    out  = proj((core(Q, K, V) + LePE(V)) * O)      (the gate O has no activation)

The core is chosen per stage: a linear attention ("rala" or "mala", with 2-D
RoPE inside) at strides 4 and 8, softmax attention with 2-D RoPE on Q and K
("softmax") at strides 16 and 32. The module works on channels-first maps and
hands the cores strided (B, heads, N, d) views, so no transpose is paid.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zoo.kernels.linear_attention import apply_rope_2d, rope_2d_tables

from .fx import fx_leaf, linear_attention  # the kernel, as a leaf of torch.fx traces

CORES = ("rala", "mala", "softmax")


@fx_leaf  # its RoPE tables are built for the grid size
def softmax_rope_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """softmax(d^-1/2 R(Q) R(K)^T) V on raw projections, via SDPA."""
    cos, sin = rope_2d_tables(*hw, q.shape[-1], device=q.device, dtype=q.dtype)
    # The heads arrive token-minor (stride 1 along N); SDPA's CPU kernel runs 1.4-3x slower on
    # that layout than on (N, d)-contiguous heads, copies included (rotated q, k are contiguous).
    return F.scaled_dot_product_attention(apply_rope_2d(q, cos, sin), apply_rope_2d(k, cos, sin), v.contiguous())


class GatedRoPEAttention(nn.Module):
    """Multi-head attention with a 5x5 LePE on V and a linear output gate."""

    def __init__(self, dim: int, num_heads: int, core: str = "softmax"):
        super().__init__()
        if core not in CORES:
            raise ValueError(f"unknown attention core {core!r}; expected one of {CORES}")
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.core = core
        self.qkvo = nn.Conv2d(dim, 4 * dim, 1)
        self.lepe = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.proj = nn.Conv2d(dim, dim, 1)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, heads, N, d) as a view; channel c is head c // d, feature c % d.
        b, c, h, w = x.shape
        return x.view(b, self.num_heads, c // self.num_heads, h * w).transpose(-1, -2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v, gate = self.qkvo(x).chunk(4, dim=1)
        lepe = self.lepe(v)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)
        if self.core == "softmax":
            y = softmax_rope_attention(q, k, v, (h, w))
        else:
            # RALA / MALA: the shared fused kernel on GPU, its reference on CPU.
            y = linear_attention(q, k, v, variant=self.core, rope_hw=(h, w))
        y = y.transpose(-1, -2).reshape(b, c, h, w)
        return self.proj((y + lepe) * gate)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, core={self.core!r}"
