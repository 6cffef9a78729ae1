"""Flax parameter layouts -> PyTorch weights, for the families whose official weights are Flax trees (MAXIM).

The official `.npz` files are read by `zoo.pretrained.load_npz` (numpy only, no JAX); this module turns
their leaves into PyTorch layouts.

Layouts (Flax -> PyTorch):

| Flax leaf | Flax shape | PyTorch |
|-|-|-|
| `nn.Conv` kernel | (kh, kw, in, out) | `Conv2d.weight` = permute(3, 2, 0, 1) -> (out, in, kh, kw) |
| `nn.ConvTranspose` kernel (1) | (kh, kw, in, out) | `ConvTranspose2d.weight` = flip(0, 1).permute(2, 3, 0, 1) |
| `nn.Dense` kernel | (in, out) | `Linear.weight` = transpose -> (out, in) |
| `nn.LayerNorm` scale / bias, any bias | (C,) | `weight` / `bias` |

(1) With `transpose_kernel=False`; the PyTorch weight is (in, out, kh, kw). The flip: `lax.conv_transpose`
with `transpose_kernel=False` correlates the stride-dilated input with the kernel as stored, so output
pixel (2m + a) takes tap K[1 - a] of a 2x2 kernel, while PyTorch's
transposed convolution (the gradient of a convolution) takes W[a].
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["conv_kernel", "conv_transpose_kernel", "dense_kernel", "is_flax_tree"]


def conv_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """Flax Conv kernel (kh, kw, in, out) -> Conv2d weight (out, in, kh, kw)."""
    _check_rank(kernel, 4, "Conv")
    return kernel.permute(3, 2, 0, 1).contiguous()


def conv_transpose_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """Flax ConvTranspose kernel (kh, kw, in, out), transpose_kernel=False -> ConvTranspose2d weight
    (in, out, kh, kw)."""
    _check_rank(kernel, 4, "ConvTranspose")
    return kernel.flip(0, 1).permute(2, 3, 0, 1).contiguous()


def dense_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """Flax Dense kernel (in, out) -> Linear weight (out, in)."""
    _check_rank(kernel, 2, "Dense")
    return kernel.t().contiguous()


def _check_rank(kernel: torch.Tensor, rank: int, kind: str) -> None:
    if kernel.ndim != rank:
        raise ValueError(f"a Flax {kind} kernel has {rank} dims, got shape {tuple(kernel.shape)}")


def is_flax_tree(state_dict: Mapping[str, object]) -> bool:
    """Whether keys look like a flattened Flax tree (`a/b/kernel`) rather than a PyTorch state dict."""
    return any("/" in k for k in state_dict)
