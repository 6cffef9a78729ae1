"""timm's feature API for models built as stem -> stages (-> final norm) -> head.

Shared by the families whose `forward_intermediates` / `prune_intermediate_layers`
follow the same loop: RAVLT / MAViT and ViG-H (per-stage `feature_norms`), InLine
Swin / PVT / CSwin and the Inception Transformer (one final `norm`, NHWC stages).
The model has `stem`, `stages`, `feature_info`, `head`, and either `feature_norms`
(ModuleList or None) or a final norm passed as `final_norm`.
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
        final_norm: Optional[nn.Module] = None,
        stage_fmt: str = "NCHW",
        output_fmts: tuple[str, ...] = ("NCHW",),
) -> Union[list[torch.Tensor], tuple[torch.Tensor, list[torch.Tensor]]]:
    """Stage outputs for `indices` (input already checked).

    norm: without `final_norm`, each output goes through `model.feature_norms[i]`;
        with it (the model's final norm), only the last stage's output does.
    final_norm: also applied to the returned map when the last stage ran (timm's rule).
    stage_fmt: the stages' layout; 'NHWC' maps are permuted to NCHW for output_fmt 'NCHW'.
    output_fmts: the output formats the model accepts.
    """
    if output_fmt not in output_fmts:
        raise ValueError(f"output_fmt must be {' or '.join(map(repr, output_fmts))}, got {output_fmt!r}")
    if norm and final_norm is None and model.feature_norms is None:
        raise ValueError("norm=True needs the per-stage feature norms: build the model with feature_norms=True")
    take_indices, max_index = feature_take_indices(len(model.stages), indices)
    stages = model.stages if torch.jit.is_scripting() or not stop_early else model.stages[:max_index + 1]
    last = len(model.stages) - 1
    intermediates = []
    x = model.stem(x)
    for i, stage in enumerate(stages):
        x = stage(x)
        if i in take_indices:
            y = x
            if norm and final_norm is None:
                y = model.feature_norms[i](x)
            elif norm and i == last:
                y = final_norm(x)
            if stage_fmt == "NHWC" and output_fmt == "NCHW":
                y = y.permute(0, 3, 1, 2).contiguous()
            intermediates.append(y)
    if intermediates_only:
        return intermediates
    if final_norm is not None and len(stages) == len(model.stages):
        x = final_norm(x)
    return x, intermediates


def prune_stages(model: nn.Module, indices: Union[int, list[int]]) -> tuple[list[int], bool]:
    """Keep the stages up to the last one in `indices`; returns the indices and whether the end was cut.

    When it was, `num_features` / `head_hidden_size` become the last kept stage's width;
    the norms and the head are the caller's (they differ by family).
    """
    take_indices, max_index = feature_take_indices(len(model.stages), indices)
    model.stages = model.stages[:max_index + 1]
    pruned_end = max_index < len(model.feature_info) - 1
    if pruned_end:
        model.num_features = model.head_hidden_size = model.feature_info[max_index]["num_chs"]
    return take_indices, pruned_end


def prune_staged(model: nn.Module, indices: Union[int, list[int]], prune_norm: bool, prune_head: bool) -> list[int]:
    """`prune_stages`, then the feature norms and a head with `in_dim` and `reset_classifier(..., reset_other)`."""
    take_indices, pruned_end = prune_stages(model, indices)
    if prune_norm:
        model.feature_norms = None
    elif model.feature_norms is not None:
        model.feature_norms = model.feature_norms[:len(model.stages)]
    if pruned_end:
        model.head.in_dim = model.num_features
    if prune_head or pruned_end:
        model.reset_classifier(0, "", reset_other=True)
    return take_indices
