"""Flax / JAX checkpoints without JAX: read `.npz` files, turn Flax kernels into PyTorch weights.

Official JAX code bases (e.g. google-research/maxim) release their weights as
numpy `.npz` archives of the flattened parameter tree, keys joined by `/`
(`opt/target/<module path>/kernel` for a legacy `flax.optim` checkpoint).
numpy reads them; nothing here imports JAX, Flax or TensorFlow.

Layouts (Flax -> PyTorch):

| Flax leaf | Flax shape | PyTorch |
|-|-|-|
| `nn.Conv` kernel | (kh, kw, in, out) | `Conv2d.weight` = permute(3, 2, 0, 1) -> (out, in, kh, kw) |
| `nn.ConvTranspose` kernel (`transpose_kernel=False`) | (kh, kw, in, out) | `ConvTranspose2d.weight` = flip(0, 1).permute(2, 3, 0, 1) -> (in, out, kh, kw) |
| `nn.Dense` kernel | (in, out) | `Linear.weight` = transpose -> (out, in) |
| `nn.LayerNorm` scale / bias, any bias | (C,) | `weight` / `bias` |

The ConvTranspose flip: `lax.conv_transpose` with `transpose_kernel=False`
correlates the stride-dilated input with the kernel as stored, so output
pixel (2m + a) takes tap K[1 - a] of a 2x2 kernel, while PyTorch's
transposed convolution (the gradient of a convolution) takes W[a].
"""
from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

__all__ = ["load_npz", "conv_kernel", "conv_transpose_kernel", "dense_kernel"]

# Where legacy flax.optim checkpoints keep the parameters (run_eval.get_params: tree['opt']['target']).
OPTIMIZER_TARGET = "opt/target/"


def load_npz(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The numeric arrays of an `.npz` archive as float/int tensors, keys unchanged.

    Opened with `allow_pickle=False` (an archive that pickles objects is refused
    by numpy, nothing is unpickled). When the archive holds a flax.optim
    optimizer (`opt/target/...` next to `opt/state/...`), only the parameters
    under `opt/target/` are read; the optimizer moments are left on disk.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an .npz archive (not a zip file)")
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.files)
        if any(k.startswith(OPTIMIZER_TARGET) for k in keys):
            keys = [k for k in keys if k.startswith(OPTIMIZER_TARGET)]
        out = {}
        for key in keys:
            array = archive[key]
            if array.dtype.kind not in "fiub":
                raise ValueError(f"{path}: entry {key!r} has dtype {array.dtype}, not a numeric array")
            out[key] = torch.from_numpy(np.ascontiguousarray(array))
    return out


def conv_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """Flax Conv kernel (kh, kw, in, out) -> Conv2d weight (out, in, kh, kw)."""
    _check_rank(kernel, 4, "Conv")
    return kernel.permute(3, 2, 0, 1).contiguous()


def conv_transpose_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """Flax ConvTranspose kernel (kh, kw, in, out), transpose_kernel=False -> ConvTranspose2d weight (in, out, kh, kw)."""
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
