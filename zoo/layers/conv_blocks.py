"""Small channels-first building blocks shared by the conv-hybrid families."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ConvFFN(nn.Module):
    """1x1 conv -> act -> (+ depthwise 3x3 residual) -> 1x1 conv, on (B, C, H, W).

    The feed-forward network of RAVLT / MAViT (official `FeedForwardNetwork`): the depthwise
    conv is a residual on the hidden activations, not a replacement.
    """

    def __init__(self, dim: int, hidden_dim: int, act_layer: Callable[[], nn.Module] = nn.GELU, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden_dim, 1)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim)
        self.fc2 = nn.Conv2d(hidden_dim, dim, 1)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.act(self.fc1(x)))
        x = x + self.dwconv(x)
        return self.drop2(self.fc2(x))


class ChannelScale(nn.Module):
    """Per-channel layer scale stored as (1, C, 1, 1), the official layout.

    timm's LayerScale2d stores a 1-D gamma; the papers' optimizer rule (no
    weight decay on ndim <= 1) decays these 4-D scales, so the shape is kept.
    """

    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.init_value = init_value
        self.gamma = nn.Parameter(torch.full((1, dim, 1, 1), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma
