"""InLine (injective linear) attention, shared by the InLine DeiT / Swin / PVT / CSwin backbones.

Han et al., *Bridging the Divide: Reconsidering Softmax and Linear Attention*,
NeurIPS 2024 (arXiv:2412.06590); official code https://github.com/LeapLabTHU/InLine
(`InLineAttention.forward` in `models/inline_{deit,swin,pvt,cswin}.py`). Per head, with
`s = d**-0.5`, `n` tokens, `k_bar`, `v_bar` the token means of K and V:

    out_i = (s / n) q_i (K^T V) + (1 - s q_i . k_bar) v_bar

i.e. weights `(s/n) q_i.k_j - (s/n) q_i.k_bar + 1/n` that sum to one per query,
with no feature map, no normaliser and no epsilon. Each backbone adds a
"local residual": a per-sample, per-channel 3x3 depthwise conv of V whose
kernels a grouped 1x1-conv MLP predicts from the token mean of the block's
input (`DynamicLocalConv`).

The core is the shared kernel `zoo.kernels.linear_attention.linear_attention`
with `variant="inline"`: its reference path keeps the official evaluation order
(`kv = (K^T sqrt(s/n)) @ (V sqrt(s/n))`, then `q @ kv + (1 - s q @ k_bar^T) v_bar`,
fp32 accumulation), its fused Triton path runs on CUDA for head dims 16 / 32 / 64.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .fx import fx_leaf, is_fx_proxy, linear_attention  # the kernel, as a leaf of torch.fx traces

__all__ = [
    "linear_attention", "DynamicLocalConv", "InLineAttention", "dynamic_depthwise_conv3x3",
    "shifted_depthwise_conv3x3",
]


@fx_leaf  # torch.fx: its form depends on the batch size
def dynamic_depthwise_conv3x3(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Depthwise 3x3 cross-correlation (zero padding 1) with one kernel per sample and channel.

    x: (B, C, H, W); kernels: (B, C, 3, 3) -> (B, C, H, W). Eagerly the batch is folded into
    the channels (one conv, groups = B*C, as the official code does): on CPU 2-4x faster than
    any form without batch-dependent groups. For a batch of 0 (no groups to fold) and under
    torch.export (ONNX's Conv takes `group` as a constant, so a dynamic batch cannot be folded)
    it is the sum of the nine shifted maps each times its kernel tap (`shifted_depthwise_conv3x3`),
    the same function up to float32 summation order.
    """
    if torch.compiler.is_exporting() or x.shape[0] == 0:
        return shifted_depthwise_conv3x3(x, kernels)
    b, c, h, w = x.shape
    out = F.conv2d(x.reshape(1, b * c, h, w), kernels.reshape(b * c, 1, 3, 3), padding=1, groups=b * c)
    return out.reshape(b, c, h, w)


def shifted_depthwise_conv3x3(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """`dynamic_depthwise_conv3x3` without a convolution: sum_ij pad(x)[.., i:i+H, j:j+W] * k[.., i, j].

    Nothing depends on the batch size but the tensors' own shapes (any B, 0 included).
    """
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    taps = kernels[..., None, None]  # (B, C, 3, 3, 1, 1): tap (i, j) broadcasts over the map
    out = padded[..., 0:h, 0:w] * taps[:, :, 0, 0]
    for i in range(3):
        for j in range(3):
            if i or j:
                out = out + padded[..., i:i + h, j:j + w] * taps[:, :, i, j]
    return out


class DynamicLocalConv(nn.Sequential):
    """The official `residual`: Conv1d(C, C, 1, groups=heads) -> GELU -> Conv1d(C, 9C, 1, groups=heads).

    Kept as Conv1d (weights (C, C/heads, 1)) so official checkpoints load unchanged.
    `local_residual(v, mean)` predicts one 3x3 kernel per channel from `mean` (B, C)
    (channel c uses outputs 9c..9c+8, row-major) and convolves the (B, C, H, W) map `v`.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__(
            nn.Conv1d(dim, dim, kernel_size=1, groups=num_heads),
            nn.GELU(),
            nn.Conv1d(dim, dim * 9, kernel_size=1, groups=num_heads),
        )

    def local_residual(self, v: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        b, c = mean.shape
        kernels = self(mean.unsqueeze(-1)).reshape(b, c, 3, 3)
        return dynamic_depthwise_conv3x3(v, kernels)


class InLineAttention(nn.Module):
    """InLine attention over token sequences that form an h x w grid (after `num_prefix_tokens`).

    Used as-is by InLine-Swin (per window) and InLine-PVT (whole stage, `separate_q`:
    `q` and `kv` Linears as PVT names them) and, through a timm-compatible subclass,
    by InLine-DeiT (a class token first, which gets no local residual). The
    dynamic-kernel input is the token mean of this module's input (all tokens).
    """

    def __init__(
            self,
            dim: int,
            num_heads: int,
            qkv_bias: bool = True,
            proj_drop: float = 0.0,
            separate_q: bool = False,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.separate_q = separate_q
        if separate_q:
            self.q = nn.Linear(dim, dim, bias=qkv_bias)
            self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        else:
            self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.residual = DynamicLocalConv(dim, num_heads)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, c = x.shape
        if self.separate_q:
            q = self.q(x).reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)
            k, v = self.kv(x).reshape(b, n, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
            return q, k, v
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v

    def forward(self, x: torch.Tensor, hw: tuple[int, int], num_prefix_tokens: int = 0) -> torch.Tensor:
        """x: (B, N, C) with N = num_prefix_tokens + h*w (row-major grid)."""
        b, n, c = x.shape
        h, w = hw
        if not is_fx_proxy(x) and n != num_prefix_tokens + h * w:  # (no check under torch.fx tracing)
            raise ValueError(f"{n} tokens do not form {num_prefix_tokens} prefix tokens plus a {h}x{w} grid")
        q, k, v = self._qkv(x)
        out = linear_attention(q, k, v, variant="inline").transpose(1, 2).reshape(b, n, c)
        v_map = v[:, :, num_prefix_tokens:].transpose(2, 3).reshape(b, c, h, w)
        local = self.residual.local_residual(v_map, x.mean(dim=1)).flatten(2).transpose(1, 2)
        if num_prefix_tokens:
            out = torch.cat([out[:, :num_prefix_tokens], out[:, num_prefix_tokens:] + local], dim=1)
        else:
            out = out + local
        return self.proj_drop(self.proj(out))
