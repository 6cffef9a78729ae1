"""Layer-wise learning-rate decay for a `ZooBackbone`, as an mmengine optimizer-wrapper constructor.

    optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        constructor='ZooLayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.9, custom_keys={'norm': dict(decay_mult=0.)}))

The backbone's layers are the groups of its model's timm `group_matcher`
(stem, then each block, in order; the per-stage feature norms last), the
same grouping timm's `param_groups_layer_decay` uses for classification.
With L backbone layers, layer i gets ``lr * rate ** (L - i)``; the neck and
heads keep ``lr``.  Every other `paramwise_cfg` option (custom_keys,
norm_decay_mult, bias_decay_mult, ...) works as in mmengine's default
constructor, whose groups are computed first and then scaled.  None of the
landed families' papers use layer decay downstream; their configs therefore
use mmengine's default constructor.
"""
from __future__ import annotations

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor

__all__ = ["LayerDecayOptimWrapperConstructor", "backbone_layer_ids"]


def backbone_layer_ids(backbone: nn.Module, prefix: str = "backbone.") -> dict[str, int]:
    """Full parameter name -> layer id (0 = stem) for a ZooBackbone (or any module with `.model`)."""
    from timm.models import group_parameters

    model = getattr(backbone, "model", backbone)
    if not hasattr(model, "group_matcher"):
        raise TypeError(f"{type(model).__name__} has no group_matcher(); layer decay needs one")
    layer_map = group_parameters(model, model.group_matcher(coarse=False), reverse=True)
    inner = ""
    for name, mod in backbone.named_modules():
        if mod is model:
            inner = name + "." if name else ""
            break
    return {f"{prefix}{inner}{name}": layer for name, layer in layer_map.items()}


class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor plus ``paramwise_cfg['layer_decay_rate']`` on the backbone."""

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None):
        paramwise_cfg = dict(paramwise_cfg or {})
        self.layer_decay_rate = float(paramwise_cfg.pop("layer_decay_rate", 1.0))
        if self.layer_decay_rate != 1.0 and not paramwise_cfg:
            # The parent skips per-parameter groups for an empty paramwise_cfg.
            paramwise_cfg = dict(custom_keys={})
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def add_params(self, params: list[dict], module: nn.Module, prefix: str = "", **kwargs) -> None:
        start = len(params)
        super().add_params(params, module, prefix=prefix, **kwargs)
        if prefix or self.layer_decay_rate == 1.0 or not hasattr(module, "backbone"):
            return
        layer_ids = backbone_layer_ids(module.backbone)
        num_layers = max(layer_ids.values()) + 1
        name_of = {id(p): n for n, p in module.named_parameters()}
        base_lr = self.base_lr
        for group in params[start:]:
            (param,) = group["params"]
            layer = layer_ids.get(name_of.get(id(param), ""))
            if layer is None:
                continue  # neck / heads: full lr
            scale = self.layer_decay_rate ** (num_layers - layer)
            group["lr"] = group.get("lr", base_lr) * scale
            group["layer_id"] = layer
            group["lr_scale"] = scale
