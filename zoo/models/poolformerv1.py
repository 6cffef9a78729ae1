"""PoolFormer (v1) with the official head, on timm's MetaFormer.

*MetaFormer Is Actually What You Need for Vision*, Yu, Luo, Zhou, Si, Zhou, Wang, Feng, Yan,
CVPR 2022, arXiv:2111.11418. Official code: https://github.com/sail-sg/poolformer
(`models/poolformer.py`, Apache-2.0).

timm ships the same trunk as `poolformer_s12 ... _m48` (`timm.models.metaformer.MetaFormer`,
bit-identical to the official `forward_tokens`), but a different head: timm pools first and
then applies a channel LayerNorm (eps 1e-6) to the 1x1 map; the official model applies
GroupNorm(1 group, eps 1e-5) over the whole (C, H, W) final map, then takes the spatial mean,
then the Linear classifier. GroupNorm's statistics include the spatial variance, so the two
differ (up to ~0.1 in logits with the same weights). `PoolFormerV1` configures timm's
`MetaFormer` for PoolFormer v1 and gives it the official head, under names that clash with
neither timm's nor the official repo's registrations (`poolformerv1_*`).

Official init is kept: trunc_normal(0.02) on Linear layers and the MLP's 1x1 convs, torch's
default on the stem and downsampling convs (timm's MetaFormer re-inits every conv).

`features_only=True` is the official detection / segmentation backbone
(`poolformer_*_feat`, `fork_feat=True`): the four stage outputs through per-stage GroupNorms
(`norm0/2/4/6` officially, `feature_norms.0-3` here); `first_feature_norm=False` is its
`FORK_LAST3` (RetinaNet) setting. `global_pool='ggem'` pools with GGeM (zoo.layers.ggem)
after the head's GroupNorm; PoolFormer has no attention heads, so `ggem_groups` is required.
"""
from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import GroupNorm1
from timm.models import generate_default_cfgs, register_model
from timm.models.metaformer import Downsampling, MetaFormer, Pooling
from torch import nn

from ..layers.checks import check_image_input, check_model_args, handles_empty_batch, model_name
from ..layers.ggem import GGeM, create_global_pool
from ..pretrained import TIMM_HUB_FILENAME, OfficialFile, build_zoo_model, register_official_files, timm_hub_file
from ._checkpoint import check_state_dict, rename_keys, strip_prefixes, unwrap_state_dict
from ._features import getter_feature_cfg, prune_feature_norms, staged_intermediates
from ._ggem_surgery import check_ggem_groups, fill_missing_ggem_p
from ._placement import keeps_device_dtype

__all__ = ["PoolFormerV1"]

GN_EPS = 1e-5  # nn.GroupNorm's default, used by every official norm (1e-6 moves logits by 1.5e-4)
GroupNorm = partial(GroupNorm1, eps=GN_EPS)


@handles_empty_batch
class PoolFormerV1(MetaFormer):
    """PoolFormer v1: timm's MetaFormer trunk with pooling mixers, GroupNorm, GELU MLPs,
    layer scale, and the official head (GroupNorm on the final map, mean, Linear).

    Args:
        in_chans: input channels.
        num_classes: classifier outputs (0: no classifier).
        global_pool: 'avg' (official), 'max', 'avgmax', 'ggem', or '' (the normed map).
        depths, dims: per stage (official `layers`, `embed_dims`); the MLP ratio is 4.
        pool_size: the token mixer's average-pooling window (3 in every official model).
        layer_scale_init_value: init of both layer scales of every block (1e-5 for S12/S24,
            1e-6 for S36/M36/M48).
        drop_rate: dropout before the classifier (0 officially).
        proj_drop_rate: dropout inside the MLP (0 officially).
        drop_path_rate: stochastic depth, linear over all blocks from 0.
        head_norm: build the head's GroupNorm (False for a backbone without head).
        feature_norms: per-stage GroupNorms for `forward_intermediates(norm=True)`, as the
            official dense-prediction backbone; on for `features_only`.
        first_feature_norm: False makes the stride-4 feature norm an Identity (the official
            `FORK_LAST3` setting for RetinaNet).
        ggem_groups, ggem_p_init, ggem_eps, ggem_layout, ggem_p_min: GGeM options for
            `global_pool='ggem'` (see zoo.layers.ggem.GGeM).
    """

    def __init__(
            self,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            depths: tuple[int, ...] = (2, 2, 6, 2),
            dims: tuple[int, ...] = (64, 128, 320, 512),
            pool_size: int = 3,
            layer_scale_init_value: float = 1e-5,
            drop_rate: float = 0.0,
            proj_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            head_norm: bool = True,
            feature_norms: bool = False,
            first_feature_norm: bool = True,
            ggem_groups: int | None = None,
            ggem_p_init: float = 3.0,
            ggem_eps: float = 1e-6,
            ggem_layout: str = "contiguous",
            ggem_p_min: float | None = None,
    ):
        check_model_args(type(self).__name__, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                         proj_drop_rate=proj_drop_rate, drop_path_rate=drop_path_rate)
        if len(depths) != len(dims):
            raise ValueError(f"depths and dims need one entry per stage; got {len(depths)} and {len(dims)}")
        self.ggem_groups = ggem_groups
        self._ggem_options = dict(p_init=ggem_p_init, eps=ggem_eps, group_layout=ggem_layout, p_min=ggem_p_min)
        super().__init__(
            in_chans=in_chans,
            num_classes=num_classes,
            global_pool="avg" if global_pool == "ggem" else global_pool,
            depths=depths,
            dims=dims,
            token_mixers=Pooling,
            mlp_act=nn.GELU,
            mlp_bias=True,
            drop_path_rate=drop_path_rate,
            proj_drop_rate=proj_drop_rate,
            drop_rate=drop_rate,
            layer_scale_init_values=layer_scale_init_value,
            res_scale_init_values=None,
            downsample_norm=None,
            norm_layers=GroupNorm,
            output_norm=GroupNorm if head_norm else nn.Identity,
            use_mlp_head=False,
            pool_size=pool_size,
        )
        # The official head: norm on the map first, then pool (timm's MetaFormer pools first).
        head = self.head
        self.head = nn.Sequential(OrderedDict([
            ("norm", head.norm), ("global_pool", head.global_pool), ("flatten", head.flatten),
            ("drop", head.drop), ("fc", head.fc)]))
        if global_pool == "ggem":
            if ggem_groups is not None:
                check_ggem_groups(self, ggem_groups)
            self.head.global_pool = self._make_ggem()
        # Official init: only Linear layers and the MLP convs are trunc_normal(0.02).
        self.stem.conv.reset_parameters()
        for stage in self.stages:
            if isinstance(stage.downsample, Downsampling):
                stage.downsample.conv.reset_parameters()
        if feature_norms:
            self.feature_norms = nn.ModuleList([
                GroupNorm(d) if i or first_feature_norm else nn.Identity() for i, d in enumerate(dims)])
        else:
            self.feature_norms = None

    def _make_ggem(self) -> GGeM:
        return create_global_pool("ggem", self.num_features, self.ggem_groups, flatten=False, **self._ggem_options)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(
            stem=r"^stem",
            blocks=r"^stages\.(\d+)" if coarse else [
                (r"^stages\.(\d+)\.downsample", (0,)),
                (r"^stages\.(\d+)\.blocks\.(\d+)", None),
                (r"^feature_norms\.(\d+)", (99999,)),
                (r"^head\.norm", (99999,)),
            ],
        )

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        # The official (timm-based) recipe exempts 1-D parameters only: norms, biases,
        # layer scales and GGeM's p, which timm's optimizer factory already does.
        return set()

    @keeps_device_dtype
    def reset_classifier(self, num_classes: int, global_pool: str | None = None, reset_other: bool = False,
                         **kwargs: Any) -> None:
        """New classifier; `global_pool=None` keeps the current pooling (GGeM and its p included);
        `reset_other` also drops the head's GroupNorm (as timm's MetaFormer does)."""
        ggem = None
        if global_pool == "ggem":
            ggem = self.head.global_pool if isinstance(self.head.global_pool, GGeM) else self._make_ggem()
            global_pool = "avg"
        # reset_other is handled here: timm's MetaFormer takes it only from timm 1.0.31 on.
        super().reset_classifier(num_classes, global_pool, **kwargs)
        if reset_other:
            self.head.norm = nn.Identity().train(self.head.training)
        if ggem is not None:
            self.head.global_pool = ggem

    def _check_input(self, x: torch.Tensor) -> None:
        if not torch.jit.is_scripting():
            check_image_input(x, self.in_chans, model_name(self))

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs (strides 4, 8, 16, 32) for the stages in `indices`.

        Args:
            x: image batch (B, in_chans, H, W), any H and W.
            indices: take the last n stages if int, all if None, these stages if a sequence.
            norm: pass each output through its `feature_norms` GroupNorm (the official
                detection / segmentation features); needs `feature_norms=True`.
            stop_early: stop after the last stage taken.
            output_fmt: only 'NCHW'.
            intermediates_only: return only the intermediates.
        """
        self._check_input(x)
        # MetaFormer's own forward_intermediates checkpoints whole stages under its `grad_checkpointing`.
        return staged_intermediates(self, x, indices, norm, stop_early, output_fmt, intermediates_only,
                                    checkpoint_stages=self.grad_checkpointing)

    def prune_intermediate_layers(
            self,
            indices: int | list[int] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> list[int]:
        """Drop the stages (and head) that the requested intermediates do not need."""
        # MetaFormer's own: its head resets with reset_other (the head's norm), unlike prune_staged's `in_dim` head.
        take_indices = super().prune_intermediate_layers(indices, prune_norm, prune_head)
        prune_feature_norms(self, prune_norm)
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return super().forward_features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head.norm(x)  # GroupNorm over (C, H, W) of the final map, before pooling
        x = self.head.global_pool(x)
        x = self.head.flatten(x)
        x = self.head.drop(x)
        return x if pre_logits else self.head.fc(x)


def _network_index(kind: str):
    # Official `network` list: stages at even indices 0, 2, 4, 6, downsamplers at 1, 3, 5.
    def repl(match):
        i = int(match.group(1))
        if kind == "stage":
            return f"stages.{i // 2}.blocks.{match.group(2)}."
        return f"stages.{(i + 1) // 2}.downsample.conv."
    return repl


# Official key (models/poolformer.py state dict) -> ours, applied in order.
OFFICIAL_KEY_RULES = [
    (r"^patch_embed\.proj\.", "stem.conv."),
    (r"^network\.(\d+)\.(\d+)\.", _network_index("stage")),
    (r"^network\.(\d+)\.proj\.", _network_index("downsample")),
    (r"\.layer_scale_([12])$", r".layer_scale\1.scale"),
    (r"^norm([0246])\.", lambda m: f"feature_norms.{int(m.group(1)) // 2}."),
    (r"^norm\.", "head.norm."),
    (r"^head\.(weight|bias)$", r"head.fc.\1"),
]


def checkpoint_filter_fn(state_dict: dict[str, Any], model: PoolFormerV1) -> dict[str, torch.Tensor]:
    """Official PoolFormer checkpoint (classifier or mmdet/mmseg backbone), or timm's converted
    `timm/poolformer_*.sail_in1k` weights (the same tensors under our names) -> this model.

    Accepts `model` / `state_dict` wrappers and `module.` / `backbone.` prefixes. Head keys are
    dropped when the model has no such head (features_only); per-stage feature norms absent
    from a classification checkpoint start at GroupNorm(1, 0), the official init; GGeM's `p`,
    absent from every released checkpoint, keeps its initial value.
    """
    state_dict = strip_prefixes(unwrap_state_dict(state_dict, model), ("module.", "backbone."))
    if "stem.conv.weight" not in state_dict:  # official layout
        state_dict = rename_keys(state_dict, OFFICIAL_KEY_RULES)
    expected = model.state_dict()
    state_dict = {k: v for k, v in state_dict.items() if k in expected or not k.startswith(("head.", "feature_norms."))}
    for key, value in expected.items():
        if key.startswith("feature_norms.") and key not in state_dict:
            state_dict[key] = torch.ones_like(value) if key.endswith("weight") else torch.zeros_like(value)
    state_dict = fill_missing_ggem_p(state_dict, model)
    return check_state_dict(state_dict, model, classifier="head.fc")


def _create_poolformerv1(variant: str, pretrained: bool = False, **kwargs: Any) -> PoolFormerV1:
    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3))
    if kwargs.get("features_only"):
        # The official dense-prediction backbone: stage outputs through per-stage GroupNorms
        # (feature_norms=False for the raw ones), no head.
        kwargs.setdefault("feature_norms", True)
        kwargs.update(num_classes=0, head_norm=False, global_pool="avg")
    return build_zoo_model(
        PoolFormerV1, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=getter_feature_cfg(out_indices, kwargs),
        **kwargs,
    )


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.9, "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.conv", "classifier": "head.fc",
        "license": "apache-2.0", "paper_ids": "arXiv:2111.11418",
        "paper_name": "MetaFormer Is Actually What You Need for Vision",
        "origin_url": "https://github.com/sail-sg/poolformer",
        **kwargs,
    }


def _official(size: str, **kwargs: Any) -> dict[str, Any]:
    # The release files (bare state dicts, official key names), as the official factories load them.
    return _cfg(url=f"https://github.com/sail-sg/poolformer/releases/download/v1.0/poolformer_{size}.pth.tar",
                **kwargs)


def _timm_mirror(size: str, **kwargs: Any) -> dict[str, Any]:
    # The same weights converted to timm's names (timm's `poolformer_*.sail_in1k`).
    return _cfg(hf_hub_id=f"timm/poolformer_{size}.sail_in1k", hf_hub_filename=TIMM_HUB_FILENAME, **kwargs)


default_cfgs = generate_default_cfgs({
    "poolformerv1_s12.sail_in1k": _official("s12"),
    "poolformerv1_s24.sail_in1k": _official("s24"),
    "poolformerv1_s36.sail_in1k": _official("s36"),
    "poolformerv1_m36.sail_in1k": _official("m36", crop_pct=0.95),
    "poolformerv1_m48.sail_in1k": _official("m48", crop_pct=0.95),
    "poolformerv1_s12.sail_in1k_timm": _timm_mirror("s12"),
    "poolformerv1_s24.sail_in1k_timm": _timm_mirror("s24"),
    "poolformerv1_s36.sail_in1k_timm": _timm_mirror("s36"),
    "poolformerv1_m36.sail_in1k_timm": _timm_mirror("m36", crop_pct=0.95),
    "poolformerv1_m48.sail_in1k_timm": _timm_mirror("m48", crop_pct=0.95),
})

# The release files are bare state dicts (the official factories load them directly); the mirror is
# timm's safetensors.
register_official_files({
    f"{name}.{tag}": (timm_hub_file(cfg.cfgs[tag].hf_hub_id) if cfg.cfgs[tag].hf_hub_id
                      else OfficialFile(cfg.cfgs[tag].url.rsplit("/", 1)[-1], cfg.cfgs[tag].url))
    for name, cfg in default_cfgs.items() for tag in cfg.tags
})

# The official factories (models/poolformer.py); drop path: the README's training value of each size.
_S = dict(dims=(64, 128, 320, 512))
_M = dict(dims=(96, 192, 384, 768))
_SIZES = dict(
    s12=dict(_S, depths=(2, 2, 6, 2), layer_scale_init_value=1e-5, drop_path_rate=0.1),
    s24=dict(_S, depths=(4, 4, 12, 4), layer_scale_init_value=1e-5, drop_path_rate=0.1),
    s36=dict(_S, depths=(6, 6, 18, 6), layer_scale_init_value=1e-6, drop_path_rate=0.2),
    m36=dict(_M, depths=(6, 6, 18, 6), layer_scale_init_value=1e-6, drop_path_rate=0.3),
    m48=dict(_M, depths=(8, 8, 24, 8), layer_scale_init_value=1e-6, drop_path_rate=0.4),
)


def _poolformerv1(size: str, pretrained: bool, **kwargs: Any) -> PoolFormerV1:
    return _create_poolformerv1(f"poolformerv1_{size}", pretrained, **{**_SIZES[size], **kwargs})


@register_model
def poolformerv1_s12(pretrained: bool = False, **kwargs: Any) -> PoolFormerV1:
    return _poolformerv1("s12", pretrained, **kwargs)


@register_model
def poolformerv1_s24(pretrained: bool = False, **kwargs: Any) -> PoolFormerV1:
    return _poolformerv1("s24", pretrained, **kwargs)


@register_model
def poolformerv1_s36(pretrained: bool = False, **kwargs: Any) -> PoolFormerV1:
    return _poolformerv1("s36", pretrained, **kwargs)


@register_model
def poolformerv1_m36(pretrained: bool = False, **kwargs: Any) -> PoolFormerV1:
    return _poolformerv1("m36", pretrained, **kwargs)


@register_model
def poolformerv1_m48(pretrained: bool = False, **kwargs: Any) -> PoolFormerV1:
    return _poolformerv1("m48", pretrained, **kwargs)
