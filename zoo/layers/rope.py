"""2-D rotary position embedding of RAVLT / MAViT (ravlt.md §2.5).

Each head's channels are rotated in interleaved pairs (2p, 2p+1) ("rotate every
two"); the first half of the pairs turns with the token's row, the second half
with its column. Tokens are flattened row-major.
"""
from __future__ import annotations

import torch


def rope_2d_angles(head_dim: int, base: float = 10000.0, device=None) -> torch.Tensor:
    """The per-pair frequencies, each repeated twice: (head_dim // 2,).

    The official code uses `linspace(0, 1, head_dim // 4)` as exponent (endpoint
    included, so the slowest frequency is exactly 1 / base).
    """
    if head_dim % 4:
        raise ValueError(f"2-D RoPE needs a head dim divisible by 4, got {head_dim}")
    freqs = 1.0 / base ** torch.linspace(0, 1, head_dim // 4, device=device, dtype=torch.float32)
    return freqs.repeat_interleave(2)


def rope_2d_tables(
        height: int, width: int, head_dim: int, device=None, dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables of shape (height * width, head_dim) for a row-major grid."""
    angles = rope_2d_angles(head_dim, device=device)
    rows = torch.arange(height, device=device, dtype=torch.float32)
    cols = torch.arange(width, device=device, dtype=torch.float32)
    row_phase = (rows[:, None] * angles[None, :])[:, None, :].expand(height, width, -1)
    col_phase = (cols[:, None] * angles[None, :])[None, :, :].expand(height, width, -1)
    phase = torch.cat([row_phase, col_phase], dim=-1).reshape(height * width, head_dim)
    return phase.cos().to(dtype), phase.sin().to(dtype)


def rotate_every_two(x: torch.Tensor) -> torch.Tensor:
    """(a, b) pairs -> (-b, a), over the last dimension."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)


def apply_rope_2d(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (..., N, head_dim) by the tables of `rope_2d_tables`."""
    return x * cos + rotate_every_two(x) * sin
