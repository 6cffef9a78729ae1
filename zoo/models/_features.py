"""timm's feature API for models built as stem -> stages with optional per-stage feature norms.

Shared by the families whose `forward_intermediates` / `prune_intermediate_layers`
are the same (RAVLT / MAViT, ViG-H): the model has `stem`, `stages`,
`feature_norms` (ModuleList or None), `feature_info`, `head` with `in_dim`, and
`reset_classifier(num_classes, global_pool, reset_other)`.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
from timm.models._features import feature_take_indices
from torch import nn


def staged_intermediates(
        model: nn.Module,
        x: torch.Tensor,
        indices: Optional[Union[int, list[int]]],
        norm: bool,
        stop_early: bool,
        output_fmt: str,
        intermediates_only: bool,
) -> Union[list[torch.Tensor], tuple[torch.Tensor, list[torch.Tensor]]]:
    """Stage outputs for `indices`, through `feature_norms` when `norm` (input already checked)."""
    if output_fmt != "NCHW":
        raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
    if norm and model.feature_norms is None:
        raise ValueError("norm=True needs the per-stage feature norms: build the model with feature_norms=True")
    take_indices, max_index = feature_take_indices(len(model.stages), indices)
    stages = model.stages if torch.jit.is_scripting() or not stop_early else model.stages[:max_index + 1]
    intermediates = []
    x = model.stem(x)
    for i, stage in enumerate(stages):
        x = stage(x)
        if i in take_indices:
            intermediates.append(model.feature_norms[i](x) if norm else x)
    if intermediates_only:
        return intermediates
    return x, intermediates


def prune_staged(model: nn.Module, indices: Union[int, list[int]], prune_norm: bool, prune_head: bool) -> list[int]:
    """Drop the stages (and head, feature norms) that the requested intermediates do not need."""
    take_indices, max_index = feature_take_indices(len(model.stages), indices)
    model.stages = model.stages[:max_index + 1]
    if prune_norm:
        model.feature_norms = None
    elif model.feature_norms is not None:
        model.feature_norms = model.feature_norms[:max_index + 1]
    if max_index < len(model.feature_info) - 1:
        model.num_features = model.head_hidden_size = model.feature_info[max_index]["num_chs"]
        model.head.in_dim = model.num_features
    if prune_head or max_index < len(model.feature_info) - 1:
        model.reset_classifier(0, "", reset_other=True)
    return take_indices
