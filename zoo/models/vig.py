"""ViG and ViG-H: vision backbones with bidirectional gated linear attention.

*ViG: Linear-complexity Visual Sequence Learning with Gated Linear Attention*,
Liao, Wang, Zhu, Zhang, Huang, AAAI 2025, arXiv:2405.18425.
Official code: https://github.com/hustvl/ViG (classification/models/vig.py: `ViG`,
classification/models/vig_h.py: `HierViG`, `Backbone_HierViG`).

Every block mixes tokens with `zoo.layers.gla.BidirectionalGLA`: a 3x3 depthwise
"locality" conv, a forward and a backward gated linear-attention scan over the
row-major token sequence with direction-wise data-dependent decays, and a sigmoid
gate mixing the per-head-normalised global and local branches (the official
`GatedLinearAttention` / `GLA2D`). The scans run in `zoo.kernels.gated_linear_attention`
(Triton on CUDA, chunked PyTorch elsewhere); train and eval compute the same function
(the official code switches kernels between the two).

- `ViG` (vig_t/s/b): isotropic, stride-16 two-conv stem, learned position embedding
  (bicubically resized for other grids), RMSNorm pre-norm blocks with a SwiGLU MLP,
  final RMSNorm, token mean, linear head.
- `ViGH` (vig_h_t/s/b): four stages at strides 4-32, LayerNorm pre-norm blocks with a
  SwiGLU MLP, conv downsampling; `features_only` gives the official dense backbone
  (`Backbone_HierViG`: a LayerNorm per stage output).

Layout differences from the official code (mapped by `checkpoint_filter_fn`): block norms
`norm1`/`norm2` and the mixer `attn`; the SwiGLU projections `mlp.fc1`/`mlp.fc2`; in
ViG-H a timm-style `stem` / `stages.i` with each downsample at the start of the next
stage (so stage i's output is the feature the dense backbone taps), the classifier
as `head.norm` / `head.fc` and the backbone's `outnorm{i}` as `feature_norms.i`.
The mixer keeps the official names.

The merge divisor (official `GatedLinearAttention.forward` / `GLA2D.forward`): the official
eval path divides o_f + o_b by 4 in plain ViG and by 2 in ViG-H, the train path by 2
in both. Here one definition serves both modes: `merge_divisor` defaults to the official
eval value (4 / 2), which is what the reported accuracies were measured with;
`merge_divisor=2` gives plain ViG's training-time function (the difference only rescales
the RMSNorm eps, ~1e-5 in logits).
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, GluMlp, LayerNorm2d, RmsNorm, SelectAdaptivePool2d, trunc_normal_
from timm.models import checkpoint_seq, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import nn

from ..layers.checks import check_image_input, check_model_args, handles_empty_batch, model_name
from ..layers.fx import fx_leaf, is_fx_proxy
from ..layers.gla import BidirectionalGLA
from ..pretrained import OfficialFile, build_zoo_model, register_official_files, unconfirmed_weights
from ._checkpoint import check_state_dict, rename_keys, strip_prefixes, unwrap_state_dict
from ._features import getter_feature_cfg, prune_staged, staged_intermediates
from ._ggem_surgery import supports_ggem
from ._placement import keeps_device_dtype
from ._staged import StagedModelApi

__all__ = ["ViG", "ViGH"]

RMS_EPS = 1e-6   # GLAConfig.rms_norm_eps: every RMSNorm of both models
LN_EPS = 1e-5    # the official LayerNorm2d is nn.LayerNorm with its default eps


def _round_up(x: int, multiple: int) -> int:
    return multiple * math.ceil(x / multiple)


class ViGBlock(nn.Module):
    """Pre-norm block on an NHWC map: x + GLA(norm1(x)), then x + SwiGLU(norm2(x))."""

    def __init__(
            self,
            dim: int,
            num_heads: int,
            mlp_hidden: int,
            norm_layer: type[nn.Module],
            act_in_conv: bool = False,
            out_act: bool = False,
            merge_divisor: float = 2.0,
            drop_path: float = 0.0,
            kernel_impl: str | None = None,
    ):
        super().__init__()
        self.norm1 = norm_layer(dim)
        # The models run the mixers' official init themselves (after their own Linear init).
        self.attn = BidirectionalGLA(
            dim, num_heads, act_in_conv=act_in_conv, out_act=out_act, merge_divisor=merge_divisor,
            norm_eps=RMS_EPS, impl=kernel_impl, init_weights=False)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        # SwiGLU with one fused projection [a | b] -> SiLU(a) * b (official GLAMLP / gMlp).
        self.mlp = GluMlp(dim, 2 * mlp_hidden, act_layer=nn.SiLU, bias=False, gate_last=False)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


def _drop_path_rates(drop_path_rate: float, total: int) -> list[float]:
    # linspace(0, rate, total), in float math (works on the meta device).
    return [drop_path_rate * i / max(total - 1, 1) for i in range(total)]


def _check_input(model: nn.Module, x: torch.Tensor, min_size: int) -> None:
    if torch.jit.is_scripting():
        return
    if is_fx_proxy(x):  # torch.fx symbolic tracing: nothing to check (zoo.layers.checks)
        return
    name = model_name(model)
    check_image_input(x, model.in_chans, name)
    h, w = x.shape[-2:]
    if h < min_size or w < min_size:
        raise ValueError(f"{name} takes H and W of at least {min_size} pixels, got {h}x{w}")


# ---------------------------------------------------------------------------------------------
# Plain (isotropic) ViG


class ViGStem(nn.Module):
    """V2PatchEmbed: conv k(p/2+1) s(p/2) p1, LayerNorm2d, SiLU, conv k3 s2 p1, LayerNorm2d."""

    def __init__(self, in_chans: int, dim: int, patch_size: int = 16):
        super().__init__()
        stride = patch_size // 2
        self.proj = nn.Sequential(
            nn.Conv2d(in_chans, dim // 2, stride + 1, stride, 1),
            LayerNorm2d(dim // 2, eps=LN_EPS),
            nn.SiLU(),
            nn.Conv2d(dim // 2, dim, 3, 2, 1),
            LayerNorm2d(dim, eps=LN_EPS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


@fx_leaf  # torch.fx: resized only for another grid size
def resize_pos_embed(pos_embed: torch.Tensor, src: Sequence[int], dst: Sequence[int]) -> torch.Tensor:
    """(1, src_h*src_w, C) -> (1, dst_h*dst_w, C), bicubic, align_corners=False, no antialias (official)."""
    if tuple(src) == tuple(dst):
        return pos_embed
    grid = pos_embed.reshape(1, src[0], src[1], -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=tuple(dst), mode="bicubic", align_corners=False)
    return grid.flatten(2).transpose(1, 2).to(pos_embed.dtype)


@handles_empty_batch
class ViG(nn.Module):
    """Isotropic ViG: stride-16 stem, position embedding, `depth` GLA blocks, token-mean head.

    Args:
        img_size: the training resolution; the position embedding covers its
            (img_size // patch_size)^2 grid and is resized bicubically for other inputs.
        patch_size: stem stride (official 16).
        in_chans, num_classes: input channels, classifier outputs (0: none).
        global_pool: pooling of the normalised tokens: 'avg' (official), 'max', 'avgmax', ''.
        embed_dim, depth, num_heads: width, blocks, heads (key head dim embed_dim / 2 / heads).
        mlp_hidden: SwiGLU hidden width; default 256 * ceil(int(8 * dim / 3) / 256) (official).
        act_in_conv, out_act: SiLU after the depthwise conv / before o_proj (ViG-T only).
        merge_divisor: (o_f + o_b) / D; official eval 4 (see the module docstring).
        drop_rate, pos_drop_rate, drop_path_rate: head dropout, dropout after the position
            embedding, stochastic depth (linear over blocks).
        kernel_impl: 'triton' | 'reference' | None (auto) for the scans.
    """

    def __init__(
            self,
            img_size: int | Sequence[int] = 224,
            patch_size: int = 16,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            embed_dim: int = 192,
            depth: int = 12,
            num_heads: int = 3,
            mlp_hidden: int | None = None,
            act_in_conv: bool = False,
            out_act: bool = False,
            merge_divisor: float = 4.0,
            drop_rate: float = 0.0,
            pos_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            kernel_impl: str | None = None,
    ):
        super().__init__()
        check_model_args(type(self).__name__, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                         pos_drop_rate=pos_drop_rate, drop_path_rate=drop_path_rate)
        if global_pool not in ("", "avg", "max", "avgmax"):
            raise ValueError(f"global_pool must be '', 'avg', 'max' or 'avgmax', got {global_pool!r}")
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.global_pool = global_pool
        self.attn_pool = None  # GGeM hook (zoo.models.apply_ggem): pools the tokens when set
        self.num_features = self.head_hidden_size = self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.grad_checkpointing = False
        mlp_hidden = mlp_hidden or _round_up(int(embed_dim * 4 * 2 / 3), 256)

        self.patch_embed = ViGStem(in_chans, embed_dim, patch_size)
        self.pos_grid = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.pos_grid[0] * self.pos_grid[1], embed_dim))
        self.pos_drop = nn.Dropout(pos_drop_rate)
        rates = _drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.Sequential(*[
            ViGBlock(embed_dim, num_heads, mlp_hidden, partial(RmsNorm, eps=RMS_EPS), act_in_conv, out_act,
                     merge_divisor, rates[i], kernel_impl)
            for i in range(depth)])
        self.norm = RmsNorm(embed_dim, eps=RMS_EPS)
        self.feature_info = [dict(num_chs=embed_dim, reduction=patch_size, module=f"blocks.{i}") for i in range(depth)]
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.init_weights()

    def init_weights(self) -> None:
        """Official init: Linear N(0, 0.02) / zero bias, then each mixer's xavier init; pos_embed tn(0.02)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, BidirectionalGLA):
                m.reset_parameters()
        trunc_normal_(self.pos_embed, std=0.02)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^patch_embed|^pos_embed", blocks=[(r"^blocks\.(\d+)", None), (r"^norm", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        # The official recipe decays pos_embed (no `no_weight_decay`); 1-D params are
        # exempted by timm's optimizer factory as by the official one.
        return set()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    @keeps_device_dtype
    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            if global_pool not in ("", "avg", "max", "avgmax"):
                raise ValueError(f"global_pool must be '', 'avg', 'max' or 'avgmax', got {global_pool!r}")
            self.global_pool = global_pool
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """Image -> NHWC tokens with the (resized) position embedding added."""
        _check_input(self, x, min_size=self.patch_size // 2 - 1)  # stem conv k(s+1) s p1
        x = self.patch_embed(x).permute(0, 2, 3, 1)
        B, H, W, C = x.shape
        pos = resize_pos_embed(self.pos_embed, self.pos_grid, (H, W)).reshape(1, H, W, C)
        return self.pos_drop(x + pos)

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Block outputs (stride 16) for the blocks in `indices`.

        Args:
            indices: take the last n blocks if int, all if None, these blocks if a sequence.
            norm: apply the final RMSNorm to each intermediate.
            output_fmt: 'NCHW' maps or 'NLC' token sequences.
        Returns (final normalised tokens (B, N, C), intermediates), or the intermediates.
        """
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}")
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        blocks = self.blocks if torch.jit.is_scripting() or not stop_early else self.blocks[:max_index + 1]
        x = self._embed(x)
        intermediates = []
        for i, block in enumerate(blocks):
            x = block(x)
            if i in take_indices:
                y = self.norm(x) if norm else x
                intermediates.append(y.permute(0, 3, 1, 2) if output_fmt == "NCHW" else y.flatten(1, 2))
        if intermediates_only:
            return intermediates
        return self.norm(x).flatten(1, 2), intermediates

    def prune_intermediate_layers(
            self,
            indices: int | list[int] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> list[int]:
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[:max_index + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised tokens (B, N, C), N in row-major order of the stride-16 grid."""
        x = self._embed(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.blocks, x)
        else:
            x = self.blocks(x)
        return self.norm(x).flatten(1, 2)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.attn_pool is not None:
            x = self.attn_pool(x)
        elif self.global_pool == "avg":
            x = x.mean(dim=1)
        elif self.global_pool == "max":
            x = x.amax(dim=1)
        elif self.global_pool == "avgmax":
            x = 0.5 * (x.mean(dim=1) + x.amax(dim=1))
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# ---------------------------------------------------------------------------------------------
# Hierarchical ViG-H


def vig_h_stem(in_chans: int, dim: int) -> nn.Sequential:
    """Official v2 patch embed (patch 4): conv3x3 s2, LN2d, GELU, conv3x3 s2, LN2d."""
    return nn.Sequential(
        nn.Conv2d(in_chans, dim // 2, 3, 2, 1),
        LayerNorm2d(dim // 2, eps=LN_EPS),
        nn.GELU(),
        nn.Conv2d(dim // 2, dim, 3, 2, 1),
        LayerNorm2d(dim, eps=LN_EPS))


class Downsample(nn.Module):
    """Official v3 downsample: conv3x3 s2 p1 (bias), LayerNorm2d."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, 3, 2, 1)
        self.norm = LayerNorm2d(out_dim, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class ViGHStage(nn.Module):
    """Downsample (stages 1-3), then GLA blocks; NCHW in and out, NHWC inside."""

    def __init__(
            self,
            in_dim: int,
            dim: int,
            depth: int,
            num_heads: int,
            drop_path_rates: Sequence[float],
            merge_divisor: float = 2.0,
            kernel_impl: str | None = None,
    ):
        super().__init__()
        self.grad_checkpointing = False
        self.downsample = Downsample(in_dim, dim) if in_dim != dim else nn.Identity()
        mlp_hidden = _round_up(int(dim * 8 / 3), 32)
        self.blocks = nn.Sequential(*[
            ViGBlock(dim, num_heads, mlp_hidden, partial(nn.LayerNorm, eps=LN_EPS), False, False,
                     merge_divisor, drop_path_rates[i], kernel_impl)
            for i in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x).permute(0, 2, 3, 1)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.blocks, x)
        else:
            x = self.blocks(x)
        return x.permute(0, 3, 1, 2)


class ViGHHead(nn.Module):
    """Official classifier: LayerNorm2d, global pool, flatten, Linear (norm before pooling)."""

    def __init__(self, in_dim: int, num_classes: int, pool_type: str = "avg", drop_rate: float = 0.0,
                 use_norm: bool = True):
        super().__init__()
        self.in_dim = in_dim
        self.norm = LayerNorm2d(in_dim, eps=LN_EPS) if use_norm else nn.Identity()
        self.drop = nn.Dropout(drop_rate)
        self.reset(num_classes, pool_type)

    def reset(self, num_classes: int, pool_type: str | None = None, reset_other: bool = False) -> None:
        if pool_type is not None:
            self.global_pool = SelectAdaptivePool2d(pool_type=pool_type)
            self.flatten = nn.Identity() if self.global_pool.is_identity() else nn.Flatten(1)
        if reset_other:
            self.norm = nn.Identity()
        self.fc = nn.Linear(self.in_dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.flatten(self.global_pool(self.norm(x)))
        x = self.drop(x)
        return x if pre_logits else self.fc(x)


@handles_empty_batch
class ViGH(StagedModelApi, nn.Module):
    """Hierarchical ViG-H: stride-4 stem, four stages of GLA blocks, LayerNorm + pool head.

    Args:
        in_chans, num_classes, global_pool: as timm ('avg', 'max', 'avgmax', '' ...).
        embed_dims, depths, num_heads: per stage.
        merge_divisor: (o_f + o_b) / D, official 2.
        drop_rate, drop_path_rate: head dropout, stochastic depth (linear over all blocks).
        feature_norms: a LayerNorm2d per stage for `forward_intermediates(norm=True)`, the
            official dense backbone's `outnorm{i}`; on for `features_only`.
        head_norm: build the classifier's LayerNorm (off for `features_only`, which has no head).
        kernel_impl: 'triton' | 'reference' | None (auto) for the scans.
    """

    final_patterns = (r"^feature_norms\.(\d+)", r"^head\.norm")

    def __init__(
            self,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            embed_dims: Sequence[int] = (96, 192, 384, 768),
            depths: Sequence[int] = (2, 2, 5, 2),
            num_heads: Sequence[int] = (3, 6, 12, 24),
            merge_divisor: float = 2.0,
            drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            feature_norms: bool = False,
            head_norm: bool = True,
            kernel_impl: str | None = None,
    ):
        super().__init__()
        check_model_args(type(self).__name__, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                         drop_path_rate=drop_path_rate)
        num_stages = len(depths)
        if not (len(embed_dims) == len(num_heads) == num_stages):
            raise ValueError(f"embed_dims, depths and num_heads need one entry per stage; got "
                             f"{len(embed_dims)}, {num_stages} and {len(num_heads)}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = self.head_hidden_size = embed_dims[-1]
        self.drop_rate = drop_rate

        self.stem = vig_h_stem(in_chans, embed_dims[0])
        all_rates = _drop_path_rates(drop_path_rate, sum(depths))
        stages, self.feature_info = [], []
        in_dim = embed_dims[0]
        for i in range(num_stages):
            rates = all_rates[sum(depths[:i]):sum(depths[:i + 1])]
            stages.append(ViGHStage(in_dim, embed_dims[i], depths[i], num_heads[i], rates, merge_divisor, kernel_impl))
            in_dim = embed_dims[i]
            self.feature_info.append(dict(num_chs=embed_dims[i], reduction=4 * 2 ** i, module=f"stages.{i}"))
        self.stages = nn.Sequential(*stages)
        self.feature_norms = nn.ModuleList(
            [LayerNorm2d(d, eps=LN_EPS) for d in embed_dims]) if feature_norms else None
        self.head = ViGHHead(embed_dims[-1], num_classes, global_pool, drop_rate, use_norm=head_norm)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # Official: each mixer's xavier init, then every Linear / Linear2d trunc_normal(0.02),
        # zero bias, so only the depthwise conv keeps its xavier init; norms 1 / 0.
        if isinstance(m, BidirectionalGLA):
            nn.init.xavier_uniform_(m.in_proj[0].weight, gain=2 ** -2.5)
        elif isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @keeps_device_dtype
    def reset_classifier(self, num_classes: int, global_pool: str | None = None, reset_other: bool = False) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool, reset_other)

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
            indices: take the last n stages if int, all if None, these stages if a sequence.
            norm: pass each output through its `feature_norms` LayerNorm (the official
                dense backbone's features); needs `feature_norms=True`.
            output_fmt: only 'NCHW'.
        """
        _check_input(self, x, min_size=1)
        return staged_intermediates(self, x, indices, norm, stop_early, output_fmt, intermediates_only)

    def prune_intermediate_layers(
            self,
            indices: int | list[int] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> list[int]:
        return prune_staged(self, indices, prune_norm, prune_head)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self, x, min_size=1)
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# ---------------------------------------------------------------------------------------------
# Checkpoints


def _downsample_of_next_stage(match: re.Match) -> str:
    # Official: downsample (0 Identity, 1 conv, 2 Identity, 3 LN2d) at the end of stage i;
    # ours: at the start of stage i + 1.
    layer = "conv" if match.group(2) == "1" else "norm"
    return f"stages.{int(match.group(1)) + 1}.downsample.{layer}."


# Official key (classification/models/vig.py and vig_h.py state dicts) -> ours, applied in order.
VIG_KEY_RULES = [
    (r"^blocks\.(\d+)\.attn_norm\.", r"blocks.\1.norm1."),
    (r"^blocks\.(\d+)\.mlp_norm\.", r"blocks.\1.norm2."),
    (r"\.mlp\.gate_proj\.", ".mlp.fc1."),
    (r"\.mlp\.down_proj\.", ".mlp.fc2."),
]

VIG_H_KEY_RULES = [
    # HierViG._load_from_state_dict's legacy names first.
    (r"^patch_embed\.proj\.", "patch_embed.0."),
    (r"^patch_embed\.norm\.", "patch_embed.2."),
    (r"\.ln_1\.", ".norm."),
    (r"\.self_attention\.", ".op."),
    (r"^norm\.", "classifier.norm."),
    (r"^head\.", "classifier.head."),
    # Official -> ours.
    (r"^patch_embed\.0\.", "stem.0."),
    (r"^patch_embed\.2\.", "stem.1."),
    (r"^patch_embed\.5\.", "stem.3."),
    (r"^patch_embed\.7\.", "stem.4."),
    (r"^layers\.(\d+)\.downsample\.([13])\.", _downsample_of_next_stage),
    (r"^layers\.(\d+)\.blocks\.(\d+)\.norm\.", r"stages.\1.blocks.\2.norm1."),
    (r"^layers\.(\d+)\.blocks\.(\d+)\.op\.", r"stages.\1.blocks.\2.attn."),
    (r"^layers\.(\d+)\.blocks\.", r"stages.\1.blocks."),
    (r"^classifier\.norm\.", "head.norm."),
    (r"^classifier\.head\.", "head.fc."),
    (r"^outnorm(\d+)\.", r"feature_norms.\1."),
]


def checkpoint_filter_fn(state_dict: dict[str, Any], model: nn.Module) -> dict[str, torch.Tensor]:
    """Official ViG / ViG-H checkpoint (classifier, or ViG-H's dense backbone) -> this model.

    Accepts the training-script wrapper (`model_ema` preferred, then `model`), mmcv's
    `state_dict` / `backbone.`, `module.` prefixes, and already-converted state dicts.
    Plain ViG: a position embedding of another grid is resized bicubically. ViG-H: 4-D
    1x1 weights of Linear2d are viewed as 2-D; head keys are dropped when the model has no
    head (features_only), and feature norms absent from a classification checkpoint start
    at LayerNorm(1, 0).
    """
    # Official files: {'model': raw, 'model_ema': EMA, ...}; the registered file says which (`model_ema`).
    state_dict = strip_prefixes(unwrap_state_dict(state_dict, model), ("module.", "backbone."))
    expected = model.state_dict()
    if isinstance(model, ViG):
        if any(k.endswith(".attn_norm.weight") or ".mlp.gate_proj." in k for k in state_dict):
            state_dict = rename_keys(state_dict, VIG_KEY_RULES)
        pos = state_dict.get("pos_embed")
        if pos is not None and pos.shape != model.pos_embed.shape and pos.ndim == 3:
            side = math.isqrt(pos.shape[1])
            if side * side == pos.shape[1]:
                state_dict["pos_embed"] = resize_pos_embed(pos, (side, side), model.pos_grid)
        classifier = "head"
    else:
        if "stem.0.weight" not in state_dict:
            state_dict = rename_keys(state_dict, VIG_H_KEY_RULES)
        state_dict = {k: v for k, v in state_dict.items() if k in expected or not k.startswith("head.")}
        for key, value in expected.items():
            if key.startswith("feature_norms.") and key not in state_dict:
                state_dict[key] = torch.ones_like(value) if key.endswith("weight") else torch.zeros_like(value)
        classifier = "head.fc"
    for key, value in list(state_dict.items()):  # Linear2d weights saved as (out, in, 1, 1)
        if key in expected and value.ndim == 4 and expected[key].ndim == 2 and value.shape[2:] == (1, 1):
            state_dict[key] = value.flatten(1)
    return check_state_dict(state_dict, model, classifier=classifier)


@supports_ggem  # global_pool="ggem" (zoo.layers.ggem)
def _create_vig(variant: str, pretrained: bool = False, **kwargs: Any) -> ViG:
    out_indices = kwargs.pop("out_indices", 3)
    return build_zoo_model(
        ViG, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **kwargs,
    )


@supports_ggem  # global_pool="ggem" (zoo.layers.ggem)
def _create_vig_h(variant: str, pretrained: bool = False, **kwargs: Any) -> ViGH:
    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3))
    if kwargs.get("features_only"):
        # The official dense backbone: stage outputs through per-stage LayerNorms
        # (feature_norms=False for the raw ones), no classifier.
        kwargs.setdefault("feature_norms", True)
        kwargs.update(num_classes=0, head_norm=False)
    return build_zoo_model(
        ViGH, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=getter_feature_cfg(out_indices, kwargs),
        **kwargs,
    )


def _cfg(filename: str, **kwargs: Any) -> dict[str, Any]:
    return {
        # The README links https://huggingface.co/hustvl/ViG/tree/main for every variant; the
        # file names below are not listed anywhere offline (an open question).
        "hf_hub_id": "hustvl/ViG", "hf_hub_filename": filename,
        "num_classes": 1000, "input_size": (3, 224, 224), "crop_pct": 0.875, "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "license": "mit", "paper_ids": "arXiv:2405.18425",
        "paper_name": "ViG: Linear-complexity Visual Sequence Learning with Gated Linear Attention",
        "origin_url": "https://github.com/hustvl/ViG",
        "notes": (unconfirmed_weights("file name unconfirmed: the official README links only the repository "
                                      "tree (hustvl/ViG), which was not readable; this name is a guess"),),
        **kwargs,
    }


_vig_cfg = partial(_cfg, pool_size=None, first_conv="patch_embed.proj.0", classifier="head")
_vig_h_cfg = partial(_cfg, pool_size=(7, 7), first_conv="stem.0", classifier="head.fc")

default_cfgs = generate_default_cfgs({
    "vig_t.in1k": _vig_cfg("vig_tiny.pth"),
    "vig_s.in1k": _vig_cfg("vig_small.pth"),
    "vig_b.in1k": _vig_cfg("vig_base.pth"),
    "vig_h_t.in1k": _vig_h_cfg("vig_h_tiny.pth"),
    "vig_h_s.in1k": _vig_h_cfg("vig_h_small.pth"),
    "vig_h_b.in1k": _vig_h_cfg("vig_h_base.pth"),
})

# The official training saves `model` and, with EMA on (the default), `model_ema`;
# the EMA weights are preferred, `model` the fallback, as the official `load_pretrained_ema`
# (classification/utils/utils.py) fills its EMA copy.
register_official_files({
    f"{name}.{tag}": OfficialFile(cfg.cfgs[tag].hf_hub_filename, "https://huggingface.co/hustvl/ViG",
                                  weights_key="model_ema")
    for name, cfg in default_cfgs.items() for tag in cfg.tags
})

# The official classification/configs/vig/vig-{t,s,b}.yaml and configs/vig-h/vig-h-{t,s,b}.yaml over
# config.py.
_VIG_SIZES = dict(
    t=dict(embed_dim=192, depth=12, num_heads=3, act_in_conv=True, out_act=True, drop_path_rate=0.0),
    s=dict(embed_dim=384, depth=12, num_heads=6, drop_path_rate=0.2),
    b=dict(embed_dim=768, depth=12, num_heads=12, drop_path_rate=0.5),
)
_VIG_H_SIZES = dict(
    t=dict(embed_dims=(96, 192, 384, 768), depths=(2, 2, 5, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.2),
    s=dict(embed_dims=(96, 192, 384, 768), depths=(2, 2, 17, 2), num_heads=(3, 6, 12, 24), drop_path_rate=0.3),
    b=dict(embed_dims=(128, 256, 512, 1024), depths=(2, 2, 17, 2), num_heads=(4, 8, 16, 32), drop_path_rate=0.6),
)


@register_model
def vig_t(pretrained: bool = False, **kwargs: Any) -> ViG:
    return _create_vig("vig_t", pretrained, **{**_VIG_SIZES["t"], **kwargs})


@register_model
def vig_s(pretrained: bool = False, **kwargs: Any) -> ViG:
    return _create_vig("vig_s", pretrained, **{**_VIG_SIZES["s"], **kwargs})


@register_model
def vig_b(pretrained: bool = False, **kwargs: Any) -> ViG:
    return _create_vig("vig_b", pretrained, **{**_VIG_SIZES["b"], **kwargs})


@register_model
def vig_h_t(pretrained: bool = False, **kwargs: Any) -> ViGH:
    return _create_vig_h("vig_h_t", pretrained, **{**_VIG_H_SIZES["t"], **kwargs})


@register_model
def vig_h_s(pretrained: bool = False, **kwargs: Any) -> ViGH:
    return _create_vig_h("vig_h_s", pretrained, **{**_VIG_H_SIZES["s"], **kwargs})


@register_model
def vig_h_b(pretrained: bool = False, **kwargs: Any) -> ViGH:
    return _create_vig_h("vig_h_b", pretrained, **{**_VIG_H_SIZES["b"], **kwargs})
