"""timm's feature API for models built as stem -> stages (-> final norm) -> head.

Shared by the families whose `forward_intermediates` / `prune_intermediate_layers`
follow the same loop: RAVLT / MAViT, ViG-H and PoolFormer v1 (per-stage `feature_norms`),
InLine Swin / PVT / CSwin, the Inception Transformer and SOFT (one final `norm`; NHWC
stages, or SOFT's last stage of tokens with a cls token).
The model has `stem`, `stages`, `feature_info`, `head`, and either `feature_norms`
(ModuleList or None) or a final norm passed as `final_norm`.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from timm.models._features import FeatureGetterNet, feature_take_indices
from timm.models._manipulate import checkpoint
from torch import nn


def staged_intermediates(
        model: nn.Module,
        x: torch.Tensor,
        indices: int | list[int] | None,
        norm: bool,
        stop_early: bool,
        output_fmt: str,
        intermediates_only: bool,
        final_norm: nn.Module | None = None,
        stage_fmt: str = "NCHW",
        output_fmts: tuple[str, ...] = ("NCHW",),
        last_map: Callable[[torch.Tensor], torch.Tensor] | None = None,
        checkpoint_stages: bool = False,
) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
    """Stage outputs for `indices` (input already checked).

    norm: without `final_norm`, each output goes through `model.feature_norms[i]`;
        with it (the model's final norm), only the last stage's output does.
    final_norm: also applied to the returned map when the last stage ran (timm's rule).
    stage_fmt: the stages' layout; 'NHWC' maps are permuted to NCHW for output_fmt 'NCHW'.
    output_fmts: the output formats the model accepts.
    last_map: turns the last stage's output (after the norm) into its NCHW map, for a last
        stage that gives another layout (SOFT: tokens behind a cls token).
    checkpoint_stages: run each stage under activation checkpointing (timm's MetaFormer
        `grad_checkpointing`; the other families checkpoint inside their stages).
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
        x = checkpoint(stage, x) if checkpoint_stages and not torch.jit.is_scripting() else stage(x)
        if i in take_indices:
            y = x
            if norm and final_norm is None:
                y = model.feature_norms[i](x)
            elif norm and i == last:
                y = final_norm(x)
            if stage_fmt == "NHWC" and output_fmt == "NCHW":
                y = y.permute(0, 3, 1, 2).contiguous()
            elif last_map is not None and i == last:
                y = last_map(y)
            intermediates.append(y)
    if intermediates_only:
        return intermediates
    if final_norm is not None and len(stages) == len(model.stages):
        x = final_norm(x)
    return x, intermediates


def prune_stages(model: nn.Module, indices: int | list[int]) -> tuple[list[int], bool]:
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


def prune_staged(model: nn.Module, indices: int | list[int], prune_norm: bool, prune_head: bool) -> list[int]:
    """`prune_stages`, then the feature norms and a head with `in_dim` and `reset_classifier(..., reset_other)`."""
    take_indices, pruned_end = prune_stages(model, indices)
    prune_feature_norms(model, prune_norm)
    if pruned_end:
        model.head.in_dim = model.num_features
    if prune_head or pruned_end:
        model.reset_classifier(0, "", reset_other=True)
    return take_indices


def prune_feature_norms(model: nn.Module, prune_norm: bool) -> None:
    """After the stages were pruned: drop all `feature_norms` (prune_norm) or those of the stages cut."""
    if prune_norm:
        model.feature_norms = None
    elif model.feature_norms is not None:
        model.feature_norms = model.feature_norms[:len(model.stages)]


def getter_feature_cfg(out_indices: int | tuple[int, ...], kwargs: dict) -> dict:
    """`build_model_with_cfg`'s feature_cfg for a model with optional `feature_norms`.

    timm's FeatureGetterNet (`forward_intermediates`) by default, with `norm` when the model is
    built with feature norms. Only the getter takes `norm`: `feature_cls="fx"` (or "hook", ...)
    in `kwargs` returns the raw outputs of the modules `feature_info` names, without the norms.
    """
    cls = kwargs.get("feature_cls", "getter")
    getter = cls == "getter" or (isinstance(cls, type) and issubclass(cls, FeatureGetterNet))
    cfg = dict(out_indices=out_indices, feature_cls="getter")
    if getter:
        cfg["norm"] = kwargs.get("feature_norms", False)
    return cfg
