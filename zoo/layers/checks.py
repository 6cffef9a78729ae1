"""Input validation with messages that say what was expected."""
from __future__ import annotations

import torch
from torch import nn


def model_name(model: nn.Module) -> str:
    """The name a model is registered under (its pretrained_cfg's architecture), else its class name."""
    return (getattr(model, "pretrained_cfg", None) or {}).get("architecture") or type(model).__name__


def check_image_input(x: torch.Tensor, in_chans: int, model_name: str, multiple_of: int = 1) -> None:
    """Raise ValueError unless x is (B, in_chans, H, W) with H, W multiples of `multiple_of`."""
    if x.ndim != 4 or x.shape[1] != in_chans:
        raise ValueError(
            f"{model_name} expects an image batch of shape (B, {in_chans}, H, W), got {tuple(x.shape)}"
            + (f" ({x.shape[1]} channels; build the model with in_chans={x.shape[1]} to accept them)"
               if x.ndim == 4 else ""))
    h, w = x.shape[-2:]
    if h < 1 or w < 1 or h % multiple_of or w % multiple_of:
        raise ValueError(
            f"{model_name} takes H and W that are positive multiples of {multiple_of}, got {h}x{w}")
