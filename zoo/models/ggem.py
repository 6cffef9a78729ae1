"""ViTs with GGeM pooling: the backbones of the GGeM paper's main ImageNet-1K claims.

*Group Generalized Mean Pooling for Vision Transformer*, Ko, Kim, Heo, Yun, Chun, Gu, Kim,
arXiv:2212.04114 (2022). No official code and no GGeM-trained checkpoints exist. The abstract
claims +0.1 to +0.7 %p top-1 over the baselines and state of the art for ViT-Base and
ViT-Large; its tables (recipes, numbers) could not be read.

`GGeMVisionTransformer` is timm's `VisionTransformer` with `global_pool='ggem'` accepted
natively: `attn_pool` is a `GGeM` over the patch tokens (class token excluded) with one
exponent per attention head (`ggem_groups` defaults to `num_heads`), placed after the final
LayerNorm with no `fc_norm` (norm -> GGeM -> head; `fc_norm=True` pools the raw tokens and
normalises after, as timm's 'avg' models). Every other `global_pool` gives timm's ViT.

The pretrained tags load timm's ViT weights (the paper's starting point for fine-tuning is
unknown): the trunk and the class-token-trained classifier, with GGeM's p at its initial
value. They are an initialisation to fine-tune, not a GGeM classifier. Like every zoo model
they go through `zoo.pretrained` (downloaded from the timm hub repo, or found in the weights
directory as `vit_base_patch16_224.augreg2_in21k_ft_in1k.safetensors`).
"""
from __future__ import annotations

from typing import Any

import torch
from timm.data import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD
from timm.models import generate_default_cfgs, register_model
from timm.models.vision_transformer import VisionTransformer
from timm.models.vision_transformer import checkpoint_filter_fn as _vit_filter_fn

from ..layers.checks import check_image_input, check_model_args, handles_empty_batch, model_name, shared_model_args
from ..layers.fx import is_fx_proxy
from ..layers.ggem import GGeM
from ..pretrained import TIMM_HUB_FILENAME, build_zoo_model, register_official_files, timm_hub_file
from ._checkpoint import check_state_dict
from ._ggem_surgery import check_ggem_groups
from ._placement import keeps_device_dtype

__all__ = ["GGeMVisionTransformer"]


@handles_empty_batch
class GGeMVisionTransformer(VisionTransformer):
    """timm's VisionTransformer that also takes `global_pool='ggem'`.

    Args (besides VisionTransformer's):
        global_pool: 'ggem' (default) or any of timm's ViT pools.
        ggem_groups: channel groups, one exponent each; default: num_heads.
        ggem_p_init, ggem_eps, ggem_layout, ggem_p_min: see zoo.layers.ggem.GGeM.
        fc_norm: None (default) with 'ggem' pools the final-normed tokens.
    """

    def __init__(
            self,
            *args: Any,
            global_pool: str = "ggem",
            ggem_groups: int | None = None,
            ggem_p_init: float = 3.0,
            ggem_eps: float = 1e-6,
            ggem_layout: str = "contiguous",
            ggem_p_min: float | None = None,
            fc_norm: bool | None = None,
            **kwargs: Any,
    ):
        check_model_args(type(self).__name__, **shared_model_args(kwargs))
        use_ggem = global_pool == "ggem"
        if use_ggem and fc_norm is None:
            fc_norm = False  # norm -> GGeM -> head (the paper's placement is unknown; model_cards/ggem.md)
        super().__init__(*args, global_pool="avg" if use_ggem else global_pool, fc_norm=fc_norm, **kwargs)
        default_groups = ggem_groups is None
        if default_groups and len(self.blocks):
            ggem_groups = self.blocks[-1].attn.num_heads
        if use_ggem and ggem_groups is not None:
            check_ggem_groups(self, ggem_groups, default_groups)
        self.ggem_groups = ggem_groups
        self._ggem_options = dict(p_init=ggem_p_init, eps=ggem_eps, group_layout=ggem_layout, p_min=ggem_p_min)
        if use_ggem:
            self.attn_pool = self._make_ggem()
            self.global_pool = "ggem"

    def _make_ggem(self) -> GGeM:
        # ViT's pool() slices off the prefix tokens before calling attn_pool.
        device = self.patch_embed.proj.weight.device
        return GGeM(self.embed_dim, self.ggem_groups, input_fmt="NLC", num_prefix_tokens=0, device=device,
                    **self._ggem_options)

    @keeps_device_dtype
    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """New classifier; `global_pool=None` keeps the current pooling (GGeM and its p included)."""
        if global_pool == "ggem":
            ggem = self.attn_pool if isinstance(self.attn_pool, GGeM) else self._make_ggem()
            super().reset_classifier(num_classes)
            self.attn_pool, self.global_pool = ggem, "ggem"
            return
        if global_pool is not None and isinstance(self.attn_pool, GGeM):
            self.attn_pool = None
        super().reset_classifier(num_classes, global_pool)

    def _check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_scripting():
            return
        if is_fx_proxy(x):  # torch.fx symbolic tracing: nothing to check (zoo.layers.checks)
            return
        name = model_name(self)
        check_image_input(x, self.in_chans, name)
        embed = self.patch_embed
        h, w = x.shape[-2:]
        if not self.dynamic_img_size and embed.strict_img_size and (h, w) != tuple(embed.img_size):
            raise ValueError(
                f"{name} takes {embed.img_size[0]}x{embed.img_size[1]} images, got {h}x{w} "
                "(build it with img_size=... or dynamic_img_size=True for other sizes)")
        if not embed.dynamic_img_pad and (h % embed.patch_size[0] or w % embed.patch_size[1]):
            raise ValueError(
                f"{name} takes H and W that are multiples of the patch size "
                f"{embed.patch_size[0]}x{embed.patch_size[1]}, got {h}x{w}")

    def forward_features(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        self._check_input(x)
        return super().forward_features(x, *args, **kwargs)

    def forward_intermediates(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        self._check_input(x)
        return super().forward_intermediates(x, *args, **kwargs)


def checkpoint_filter_fn(state_dict: dict[str, Any], model: GGeMVisionTransformer) -> dict[str, torch.Tensor]:
    """timm ViT weights (or a saved GGeM ViT) -> this model: timm's ViT filter (npz-converted
    layouts, position-embedding resize), then GGeM's `p` kept at its value when absent."""
    state_dict = _vit_filter_fn(state_dict, model)
    if isinstance(model.attn_pool, GGeM) and "attn_pool.p" not in state_dict:
        state_dict["attn_pool.p"] = model.attn_pool.p.detach().clone()
    return check_state_dict(state_dict, model, classifier="head")


def _create_ggem_vit(variant: str, pretrained: bool = False, **kwargs: Any) -> GGeMVisionTransformer:
    out_indices = kwargs.pop("out_indices", 3)
    if kwargs.get("features_only"):
        for key in ("global_pool", "ggem_groups", "ggem_p_init", "ggem_eps", "ggem_layout", "ggem_p_min"):
            kwargs.pop(key, None)
        kwargs["global_pool"] = "token"
    return build_zoo_model(
        GGeMVisionTransformer, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **kwargs,
    )


def _cfg(hf_hub_id: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "hf_hub_id": hf_hub_id, "hf_hub_filename": TIMM_HUB_FILENAME,
        "num_classes": 1000, "input_size": (3, 224, 224), "fixed_input_size": True,
        "crop_pct": 0.9, "interpolation": "bicubic",
        "mean": IMAGENET_INCEPTION_MEAN, "std": IMAGENET_INCEPTION_STD,
        "first_conv": "patch_embed.proj", "classifier": "head",
        "license": "apache-2.0", "paper_ids": "arXiv:2212.04114",
        "paper_name": "Group Generalized Mean Pooling for Vision Transformer",
        "origin_url": "https://github.com/huggingface/pytorch-image-models",
        "notes": ("timm's ViT weights (trunk and class-token classifier); GGeM p at its init value: "
                  "fine-tune before use, no GGeM-trained checkpoint exists",),
        **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "vit_base_patch16_224_ggem.augreg2_in21k_ft_in1k": _cfg("timm/vit_base_patch16_224.augreg2_in21k_ft_in1k"),
    "vit_large_patch16_224_ggem.augreg_in21k_ft_in1k": _cfg("timm/vit_large_patch16_224.augreg_in21k_ft_in1k"),
})

# timm's ViT weights, kept in the weights directory as `<timm model>.<tag>.safetensors`.
register_official_files({
    f"{name}.{tag}": timm_hub_file(cfg.cfgs[tag].hf_hub_id) for name, cfg in default_cfgs.items() for tag in cfg.tags
})


@register_model
def vit_base_patch16_224_ggem(pretrained: bool = False, **kwargs: Any) -> GGeMVisionTransformer:
    """ViT-B/16 with GGeM pooling, 12 groups (one per head)."""
    model_args = dict(patch_size=16, embed_dim=768, depth=12, num_heads=12)
    return _create_ggem_vit("vit_base_patch16_224_ggem", pretrained, **{**model_args, **kwargs})


@register_model
def vit_large_patch16_224_ggem(pretrained: bool = False, **kwargs: Any) -> GGeMVisionTransformer:
    """ViT-L/16 with GGeM pooling, 16 groups (one per head)."""
    model_args = dict(patch_size=16, embed_dim=1024, depth=24, num_heads=16)
    return _create_ggem_vit("vit_large_patch16_224_ggem", pretrained, **{**model_args, **kwargs})
