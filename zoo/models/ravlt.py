"""RAVLT (RALA) and MAViT (MALA): conv-hybrid vision transformers with linear attention.

- RAVLT: *Breaking the Low-Rank Dilemma of Linear Attention*, Fan, Huang, He,
  CVPR 2025, arXiv:2411.07635. Official code: https://github.com/qhfan/RALA
- MAViT: *Rectifying Magnitude Neglect in Linear Attention*, Fan, Huang, Ai, He,
  ICCV 2025, arXiv:2507.00698. Official code: https://github.com/qhfan/MALA

The two official model files are the same network with the linear-attention
core swapped (rank-augmented RALA vs magnitude-aware MALA) and a wider
classifier projection for MAViT; here they are one class, `RAVLT`, with a
`linear_core` argument. Stages 1-2 use the linear core, stages 3-4 softmax
attention (the official default that no released model overrides); every
mixer carries 2-D RoPE, a 5x5 LePE on V and a linear output gate.

Layout differences from the official code (mapped by `checkpoint_filter_fn`):
timm-style `stem` / `stages.i` with each downsample at the *start* of the next
stage (so stage i's output is the feature the detection backbone taps),
`LayerNorm2d` without the nested `.norm`, and the classifier under `head.*`.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, LayerNorm2d, SelectAdaptivePool2d, trunc_normal_
from timm.models import checkpoint_seq, generate_default_cfgs, register_model
from torch import nn

from ..layers import ChannelScale, ConvFFN, GatedRoPEAttention
from ..layers.checks import check_model_args, handles_empty_batch
from ..pretrained import build_zoo_model, unconfirmed_weights
from ._checkpoint import check_state_dict, rename_keys, strip_prefixes, unwrap_state_dict
from ._features import getter_feature_cfg, prune_staged, staged_intermediates
from ._ggem_surgery import supports_ggem
from ._placement import keeps_device_dtype
from ._staged import StagedModelApi

__all__ = ["RAVLT"]

NORM_EPS = 1e-6  # every LayerNorm2d of both official files


def conv_stem(in_chans: int, dim: int) -> nn.Sequential:
    """Four 3x3 convs (stride 2, 1, 1, 2) with BatchNorm, GELU between: total stride 4."""
    mid = dim // 2
    layers: list[nn.Module] = []
    for i, (cin, cout, stride) in enumerate([(in_chans, mid, 2), (mid, mid, 1), (mid, mid, 1), (mid, dim, 2)]):
        layers += [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout)]
        if i < 3:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class Downsample(nn.Module):
    """3x3 stride-2 conv + BatchNorm between stages."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, 3, 2, 1)
        self.norm = nn.BatchNorm2d(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class RAVLTBlock(nn.Module):
    """CPE, then pre-norm attention and FFN branches with layer scale and drop path."""

    def __init__(
            self,
            dim: int,
            num_heads: int,
            core: str,
            mlp_ratio: float = 3.5,
            layer_scale_init_value: float | None = 1.0,
            drop_path: float = 0.0,
    ):
        super().__init__()
        make_scale = (lambda: ChannelScale(dim, layer_scale_init_value)) if layer_scale_init_value else nn.Identity
        self.pos = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = LayerNorm2d(dim, eps=NORM_EPS)
        self.attn = GatedRoPEAttention(dim, num_heads, core=core)
        self.ls1 = make_scale()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = LayerNorm2d(dim, eps=NORM_EPS)
        self.mlp = ConvFFN(dim, int(mlp_ratio * dim))
        self.ls2 = make_scale()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos(x)
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class RAVLTStage(nn.Module):
    def __init__(
            self,
            in_dim: int,
            dim: int,
            depth: int,
            num_heads: int,
            core: str,
            mlp_ratio: float,
            layer_scale_init_value: float | None,
            drop_path_rates: Sequence[float],
    ):
        super().__init__()
        self.grad_checkpointing = False
        self.downsample = Downsample(in_dim, dim) if in_dim != dim else nn.Identity()
        self.blocks = nn.Sequential(*[
            RAVLTBlock(dim, num_heads, core, mlp_ratio, layer_scale_init_value, drop_path_rates[i])
            for i in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


class ProjectionHead(nn.Module):
    """1x1 projection + BatchNorm + SiLU on the final map, then pool and a 1x1 classifier.

    `hidden_size=None` builds no projection (the head pools the stage output).
    """

    def __init__(
            self,
            in_dim: int,
            hidden_size: int | None,
            num_classes: int,
            pool_type: str = "avg",
            drop_rate: float = 0.0,
    ):
        super().__init__()
        self.in_dim = in_dim
        self.hidden_size = hidden_size
        if hidden_size:
            self.proj = nn.Conv2d(in_dim, hidden_size, 1)
            self.norm = nn.BatchNorm2d(hidden_size)
            self.act = nn.SiLU()
        else:
            self.proj, self.norm, self.act = nn.Identity(), nn.Identity(), nn.Identity()
        self.drop = nn.Dropout(drop_rate)
        self.reset(num_classes, pool_type)

    def reset(self, num_classes: int, pool_type: str | None = None, reset_other: bool = False) -> None:
        if pool_type is not None:
            self.global_pool = SelectAdaptivePool2d(pool_type=pool_type)
            self.flatten = nn.Identity() if self.global_pool.is_identity() else nn.Flatten(1)
        if reset_other:
            self.proj, self.norm, self.act = nn.Identity(), nn.Identity(), nn.Identity()
            self.hidden_size = None
        width = self.hidden_size or self.in_dim
        self.fc = nn.Conv2d(width, num_classes, 1) if num_classes > 0 else nn.Identity()

    @property
    def pooled_features(self) -> int:
        """The width the global pool sees: the projection's, or the stage output's without one."""
        return self.hidden_size or self.in_dim

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(self.global_pool(self.act(self.norm(self.proj(x)))))
        return self.flatten(x if pre_logits else self.fc(x))


@handles_empty_batch
class RAVLT(StagedModelApi, nn.Module):
    """RAVLT / MAViT: conv stem, four stages of RoPE attention blocks, projection head.

    Args:
        in_chans: input channels.
        num_classes: classifier outputs (0: no classifier).
        global_pool: 'avg', 'max', 'avgmax', ... or '' for unpooled maps.
        embed_dims, depths, num_heads: per stage.
        mlp_ratio: FFN expansion (official 3.5).
        linear_core: 'rala' (RAVLT) or 'mala' (MAViT), the core of the linear stages.
        stage_cores: the core of each stage; default: linear_core at strides 4 and 8,
            'softmax' at 16 and 32, as in every official model.
        projection: width of the head's 1x1 projection (RAVLT 1024, MAViT 2048/2560);
            None builds no projection (pool straight from the last stage).
        layer_scale_init_values: per stage, None for no layer scale.
        feature_norms: build a LayerNorm2d per stage applied to the features that
            `forward_intermediates(norm=True)` returns, as the official detection /
            segmentation backbone does (`extra_norms`); on for `features_only`.
    """

    final_patterns = (r"^feature_norms\.(\d+)",)

    def __init__(
            self,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            embed_dims: Sequence[int] = (64, 128, 256, 512),
            depths: Sequence[int] = (2, 2, 6, 2),
            num_heads: Sequence[int] = (1, 2, 4, 8),
            mlp_ratio: float = 3.5,
            linear_core: str = "rala",
            stage_cores: Sequence[str] | None = None,
            projection: int | None = 1024,
            layer_scale_init_values: Sequence[float | None] = (1.0, 1.0, 1.0, 1.0),
            drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            feature_norms: bool = False,
    ):
        super().__init__()
        check_model_args(type(self).__name__, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                         drop_path_rate=drop_path_rate)
        num_stages = len(depths)
        if not (len(embed_dims) == len(num_heads) == len(layer_scale_init_values) == num_stages):
            raise ValueError(
                f"embed_dims, depths, num_heads and layer_scale_init_values need one entry per stage; got "
                f"{len(embed_dims)}, {num_stages}, {len(num_heads)} and {len(layer_scale_init_values)}")
        stage_cores = tuple(stage_cores or (linear_core,) * 2 + ("softmax",) * (num_stages - 2))
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = embed_dims[-1]
        self.head_hidden_size = projection or embed_dims[-1]
        self.drop_rate = drop_rate

        self.stem = conv_stem(in_chans, embed_dims[0])
        # Stochastic depth grows linearly over all blocks (float math: works on the meta device).
        total = sum(depths)
        all_rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        rates = [all_rates[sum(depths[:i]):sum(depths[:i + 1])] for i in range(num_stages)]
        stages, self.feature_info = [], []
        in_dim = embed_dims[0]
        for i in range(num_stages):
            stages.append(RAVLTStage(
                in_dim, embed_dims[i], depths[i], num_heads[i], stage_cores[i], mlp_ratio,
                layer_scale_init_values[i], rates[i]))
            in_dim = embed_dims[i]
            self.feature_info.append(dict(num_chs=embed_dims[i], reduction=4 * 2 ** i, module=f"stages.{i}"))
        self.stages = nn.Sequential(*stages)
        self.feature_norms = nn.ModuleList(
            [LayerNorm2d(d, eps=NORM_EPS) for d in embed_dims]) if feature_norms else None

        self.head = ProjectionHead(embed_dims[-1], projection, num_classes, global_pool, drop_rate)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # Official init: trunc_normal(0.02) on every conv weight, zero conv biases.
        if isinstance(m, nn.Conv2d):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @keeps_device_dtype
    def reset_classifier(self, num_classes: int, global_pool: str | None = None, reset_other: bool = False) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool, reset_other)
        if reset_other:
            self.head_hidden_size = self.num_features

    @property
    def pooled_features(self) -> int:
        """What the head pools (zoo.models.pooled_width): the projection, wider than num_features."""
        return self.head.pooled_features

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
            norm: pass each output through its `feature_norms` LayerNorm (the official
                detection / segmentation features); needs `feature_norms=True`.
            stop_early: stop after the last stage taken.
            output_fmt: only 'NCHW'.
            intermediates_only: return only the intermediates.
        """
        self._check_input(x)
        return staged_intermediates(self, x, indices, norm, stop_early, output_fmt, intermediates_only)

    def prune_intermediate_layers(
            self,
            indices: int | list[int] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> list[int]:
        """Drop the stages (and head) that the requested intermediates do not need."""
        return prune_staged(self, indices, prune_norm, prune_head)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _downsample_of_next_stage(match: re.Match) -> str:
    # Official: downsample at the end of stage i; ours: at the start of stage i + 1.
    layer = "conv" if match.group(2) == "reduction" else "norm"
    return f"stages.{int(match.group(1)) + 1}.downsample.{layer}."


# Official key (classfication/RALA.py and classfication_release/model.py state dicts) -> ours, in order.
OFFICIAL_KEY_RULES = [
    (r"^layers\.\d+\.RoPE\.angle$", None),  # deterministic buffer; recomputed from the grid
    (r"^patch_embed\.proj\.", "stem."),
    (r"^layers\.(\d+)\.downsample\.(reduction|norm)\.", _downsample_of_next_stage),
    (r"^layers\.(\d+)\.blocks\.", r"stages.\1.blocks."),
    (r"\.gamma_([12])$", r".ls\1.gamma"),
    (r"\.norm([12])\.norm\.", r".norm\1."),
    (r"\.ffn\.", ".mlp."),
    (r"^extra_norms\.(\d+)\.norm\.", r"feature_norms.\1."),
    (r"^proj\.", "head.proj."),
    (r"^norm\.", "head.norm."),
    (r"^head\.(weight|bias)$", r"head.fc.\1"),
]


def checkpoint_filter_fn(state_dict: dict[str, Any], model: RAVLT) -> dict[str, torch.Tensor]:
    """Official RAVLT / MAViT checkpoint (classification or det/seg backbone) -> this model.

    Accepts the training-script wrapper (`model`), mmcv's (`state_dict`,
    `backbone.` prefix), `module.` prefixes, and already-converted state dicts.
    Head keys are dropped when the model has no such head (features_only); the
    per-stage feature norms, absent from classification checkpoints, start as
    LayerNorm(1, 0), which is what the official backbone's init leaves them at.
    """
    state_dict = strip_prefixes(unwrap_state_dict(state_dict, model), ("module.", "backbone."))
    if "stem.0.weight" not in state_dict:  # official layout
        state_dict = rename_keys(state_dict, OFFICIAL_KEY_RULES)
    expected = model.state_dict()
    # A head-less model (features_only, num_classes=0) ignores the checkpoint's head.
    state_dict = {k: v for k, v in state_dict.items() if k in expected or not k.startswith("head.")}
    for key, value in expected.items():
        if key.startswith("feature_norms.") and key not in state_dict:
            state_dict[key] = torch.ones_like(value) if key.endswith("weight") else torch.zeros_like(value)
    return check_state_dict(state_dict, model, classifier="head.fc")


@supports_ggem  # global_pool="ggem" (zoo.layers.ggem)
def _create_ravlt(variant: str, pretrained: bool = False, **kwargs: Any) -> RAVLT:
    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3))
    if kwargs.get("features_only"):
        # A backbone, as the official det/seg class: stage outputs through
        # per-stage LayerNorms (feature_norms=False for the raw ones), no head.
        kwargs.setdefault("feature_norms", True)
        kwargs.update(projection=None, num_classes=0)
    return build_zoo_model(
        RAVLT, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=getter_feature_cfg(out_indices, kwargs),
        **kwargs,
    )


def _cfg(hf_hub_id: str, filename: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "hf_hub_id": hf_hub_id, "hf_hub_filename": filename,
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.0", "classifier": "head.fc",
        **kwargs,
    }


_ravlt_cfg = partial(
    _cfg, "aldjalkdf/RAVLT", license="mit", paper_ids="arXiv:2411.07635",
    paper_name="Breaking the Low-Rank Dilemma of Linear Attention", origin_url="https://github.com/qhfan/RALA",
    notes=("weights: MIT per the Hugging Face card; the official code has no license",))
_mavit_cfg = partial(
    _cfg, "aldjalkdf/MAViT", license="unknown", paper_ids="arXiv:2507.00698",
    paper_name="Rectifying Magnitude Neglect in Linear Attention", origin_url="https://github.com/qhfan/MALA",
    notes=("no license is stated for the code or the weights",))

# MAViT's README links only the repository; its history shows MAViT_L.pth, and T/S/B are assumed to follow
# that pattern. Unconfirmed tags load only after zoo.allow_unconfirmed_weights() (zoo.pretrained).
_mavit_guessed = partial(_mavit_cfg, notes=_mavit_cfg.keywords["notes"] + (unconfirmed_weights(
    "file name unconfirmed: the official README links only the repository tree (aldjalkdf/MAViT), whose "
    "history shows MAViT_L.pth; this name follows that pattern"),))

default_cfgs = generate_default_cfgs({
    "ravlt_t.in1k": _ravlt_cfg("RAVLT_T.pth"),
    "ravlt_s.in1k": _ravlt_cfg("RAVLT_S.pth"),
    "ravlt_b.in1k": _ravlt_cfg("RAVLT_B.pth"),
    "ravlt_l.in1k": _ravlt_cfg("RAVLT_L.pth"),
    "mavit_t.in1k": _mavit_guessed("MAViT_T.pth"),
    "mavit_s.in1k": _mavit_guessed("MAViT_S.pth"),
    "mavit_b.in1k": _mavit_guessed("MAViT_B.pth"),
    "mavit_l.in1k": _mavit_cfg("MAViT_L.pth"),
})

# The four official sizes, shared by both families (factories RAVLT_T..L and MALA_T..L).
_SIZES = dict(
    t=dict(embed_dims=(64, 128, 256, 512), depths=(2, 2, 6, 2), num_heads=(1, 2, 4, 8),
           layer_scale_init_values=(1, 1, 1, 1), drop_path_rate=0.1),
    s=dict(embed_dims=(64, 128, 320, 512), depths=(3, 5, 9, 3), num_heads=(1, 2, 5, 8),
           layer_scale_init_values=(1, 1, 1, 1), drop_path_rate=0.15),
    b=dict(embed_dims=(96, 192, 384, 512), depths=(4, 6, 12, 6), num_heads=(1, 2, 6, 8),
           layer_scale_init_values=(1, 1, 1e-6, 1e-6), drop_path_rate=0.4),
    l=dict(embed_dims=(96, 192, 448, 640), depths=(4, 7, 19, 8), num_heads=(1, 2, 7, 10),
           layer_scale_init_values=(1e-6,) * 4, drop_path_rate=0.55),
)


def _ravlt(size: str, pretrained: bool, **kwargs: Any) -> RAVLT:
    return _create_ravlt(f"ravlt_{size}", pretrained,
                         **{**_SIZES[size], "linear_core": "rala", "projection": 1024, **kwargs})


def _mavit(size: str, pretrained: bool, **kwargs: Any) -> RAVLT:
    projection = 2560 if size == "l" else 2048
    return _create_ravlt(f"mavit_{size}", pretrained,
                         **{**_SIZES[size], "linear_core": "mala", "projection": projection, **kwargs})


@register_model
def ravlt_t(pretrained: bool = False, **kwargs: Any) -> RAVLT:
    return _ravlt("t", pretrained, **kwargs)


@register_model
def ravlt_s(pretrained: bool = False, **kwargs: Any) -> RAVLT:
    return _ravlt("s", pretrained, **kwargs)


@register_model
def ravlt_b(pretrained: bool = False, **kwargs: Any) -> RAVLT:
    return _ravlt("b", pretrained, **kwargs)


@register_model
def ravlt_l(pretrained: bool = False, **kwargs: Any) -> RAVLT:
    return _ravlt("l", pretrained, **kwargs)


@register_model
def mavit_t(pretrained: bool = False, **kwargs: Any) -> RAVLT:
    return _mavit("t", pretrained, **kwargs)


@register_model
def mavit_s(pretrained: bool = False, **kwargs: Any) -> RAVLT:
    return _mavit("s", pretrained, **kwargs)


@register_model
def mavit_b(pretrained: bool = False, **kwargs: Any) -> RAVLT:
    return _mavit("b", pretrained, **kwargs)


@register_model
def mavit_l(pretrained: bool = False, **kwargs: Any) -> RAVLT:
    return _mavit("l", pretrained, **kwargs)
