"""ViG's gated linear attention mixer (`GatedLinearAttention` / `GLA2D` of the official code).

As in `classification/models/vig.py` / `vig_h.py` of hustvl/ViG: a 3x3 depthwise conv gives
the local branch l; q, k, v, the per-direction decays, and the output gate are all computed
from l; bidirectional gated linear attention (`zoo.kernels.gated_linear_attention`) over the
row-major token sequence; per-head RMSNorm of the global and the local branch, mixed by the
sigmoid gate; output projection.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import RmsNorm
from torch import nn

from .fx import bidirectional_gla  # the kernel, as a leaf of torch.fx traces

__all__ = ["BidirectionalGLA"]


class BidirectionalGLA(nn.Module):
    """ViG's mixer on an NHWC map (B, H, W, C) -> (B, H, W, C). State-dict keys as official.

    Args:
        dim: channels C.
        num_heads: heads h; key width C * expand_k, value width C (expand_v must be 1:
            the local branch is normalised per head with the value head width).
        expand_k: key width / C (official 0.5).
        gate_low_rank_dim: width of the low-rank decay projection (official 16).
        gate_logit_normalizer: log-decay = logsigmoid(z) / this (official 16).
        act_in_conv: SiLU after the depthwise conv (ViG-T only).
        out_act: SiLU before the output projection (ViG-T only).
        merge_divisor: o = (o_f + o_b) / D before the RMSNorm (official eval: 4 in plain
            ViG, 2 in ViG-H; the official train path uses 2; D only rescales the RMSNorm eps).
        norm_eps: eps of both per-head RMSNorms (official 1e-6).
        impl: kernel path ('triton' | 'reference' | None = auto).
        init_weights: run the official `reset_parameters` now (off when the model
            re-initialises the projections itself anyway).
    """

    def __init__(
            self,
            dim: int,
            num_heads: int,
            expand_k: float = 0.5,
            gate_low_rank_dim: int = 16,
            gate_logit_normalizer: float = 16.0,
            act_in_conv: bool = False,
            out_act: bool = False,
            merge_divisor: float = 2.0,
            norm_eps: float = 1e-6,
            impl: str | None = None,
            init_weights: bool = True,
    ):
        super().__init__()
        key_dim = int(dim * expand_k)
        if key_dim % num_heads or dim % num_heads:
            raise ValueError(f"key width {key_dim} and value width {dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.head_k_dim = key_dim // num_heads
        self.head_v_dim = dim // num_heads
        self.gate_logit_normalizer = gate_logit_normalizer
        self.merge_divisor = merge_divisor
        self.impl = impl

        self.in_proj = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False),
            nn.SiLU() if act_in_conv else nn.Identity())
        self.qkv_proj = nn.Linear(dim, 2 * key_dim + dim, bias=False)
        self.gk_proj = nn.Sequential(
            nn.Linear(dim, gate_low_rank_dim, bias=False),
            nn.Linear(gate_low_rank_dim, 2 * key_dim, bias=True))
        self.g_proj = nn.Linear(dim, dim, bias=True)
        self.g_norm = RmsNorm(self.head_v_dim, eps=norm_eps)
        self.l_norm = RmsNorm(self.head_v_dim, eps=norm_eps)
        self.out_act = nn.SiLU() if out_act else nn.Identity()
        self.o_proj = nn.Linear(dim, dim, bias=False)
        if init_weights:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official init: xavier_uniform(gain 2^-2.5) on every projection, zero biases."""
        for w in (self.in_proj[0].weight, self.qkv_proj.weight, self.gk_proj[0].weight,
                  self.gk_proj[1].weight, self.g_proj.weight, self.o_proj.weight):
            nn.init.xavier_uniform_(w, gain=2 ** -2.5)
        nn.init.zeros_(self.gk_proj[1].bias)
        nn.init.zeros_(self.g_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        h, dk, dv = self.num_heads, self.head_k_dim, self.head_v_dim
        local = self.in_proj(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).reshape(B, H * W, C)
        q, k, v = self.qkv_proj(local).split([self.key_dim, self.key_dim, C], dim=-1)
        # Log-decays in float32 (cumulative decays are kept in float32 by the kernels too).
        a_f, a_b = (F.logsigmoid(self.gk_proj(local).float()) / self.gate_logit_normalizer).chunk(2, dim=-1)
        o = bidirectional_gla(
            q.unflatten(-1, (h, dk)), k.unflatten(-1, (h, dk)), v.unflatten(-1, (h, dv)),
            a_f.unflatten(-1, (h, dk)), a_b.unflatten(-1, (h, dk)), dk ** -0.5, impl=self.impl)
        o = self.g_norm(o / self.merge_divisor)
        g = torch.sigmoid(self.g_proj(local)).unflatten(-1, (h, dv))
        y = o * g + self.l_norm(local.unflatten(-1, (h, dv))) * (1 - g)
        return self.o_proj(self.out_act(y.flatten(2))).reshape(B, H, W, C)
