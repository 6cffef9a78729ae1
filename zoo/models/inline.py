"""InLine: injective linear attention in DeiT, Swin, PVT and CSwin backbones.

*Bridging the Divide: Reconsidering Softmax and Linear Attention*, Han, Pu, Xia,
Han, Pan, Li, Lu, Song, Huang, NeurIPS 2024, arXiv:2412.06590.
Official code: https://github.com/LeapLabTHU/InLine (commit e463a6f).

The InLine operator (`zoo.layers.inline_attention`) replaces softmax attention
in four backbones, each kept as the official code computes it:

- `InLineDeiT`: timm's `VisionTransformer` with an InLine attention layer
  (cls token included in the attention, excluded from the 3x3 local residual).
- `InLineSwin`: Swin v1 whose InLine blocks see the whole stage map as one
  window (window 56), mixed with stock shifted-window softmax blocks
  (timm's `SwinTransformerBlock`) per the official `attn_type` string.
- `InLinePVT`: PVT v1 pyramid, global InLine attention in every block, no
  spatial reduction, no final norm.
- `InLineCSwin`: CSWin with global InLine blocks (plus LePE) in stages 1-2 and
  cross-shaped stripe softmax attention with LePE in stages 3-4.

Layout differences from the official code (mapped by `checkpoint_filter_fn`):
the hierarchical models use timm-style `stem` / `stages.i` (downsampling at the
start of stage i), tokens kept as NHWC maps, and the classifier under `head.fc`;
InLine-DeiT has exactly the official (= timm ViT) keys.
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
from timm.layers import (
    ClassifierHead,
    DropPath,
    Mlp,
    PatchEmbed,
    resample_abs_pos_embed,
    resize_rel_pos_bias_table_simple,
    to_2tuple,
    trunc_normal_,
)
from timm.models import checkpoint_seq, generate_default_cfgs, register_model
from timm.models.swin_transformer import (
    PatchMerging,
    SwinTransformerBlock,
    WindowAttention,
    window_partition,
    window_reverse,
)
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from ..layers.checks import check_image_input, check_model_args, handles_empty_batch, model_name, shared_model_args
from ..layers.fx import fx_leaf, is_fx_proxy
from ..layers.inline_attention import DynamicLocalConv, InLineAttention, linear_attention
from ..pretrained import OfficialFile, build_zoo_model, register_official_files
from ._checkpoint import check_state_dict, rename_keys, strip_prefixes, unwrap_state_dict
from ._features import prune_stages, staged_intermediates
from ._ggem_surgery import supports_ggem
from ._staged import StagedModelApi

__all__ = ["InLineDeiT", "InLineSwin", "InLinePVT", "InLineCSwin"]



def _drop_path_rates(rate: float, depths: Sequence[int]) -> list[list[float]]:
    """Linear in the block index over the whole network (float math: meta-device safe)."""
    total = sum(depths)
    rates = [rate * i / max(total - 1, 1) for i in range(total)]
    return [rates[sum(depths[:i]):sum(depths[:i + 1])] for i in range(len(depths))]


def _stage_attn_types(attn_type: str, depths: Sequence[int]) -> list[list[str]]:
    """Official `attn_type`: one letter per stage, I (InLine), S (softmax) or M (first k InLine,
    k = the integer after the stage letters), e.g. 'IIMS2'."""
    num_stages = len(depths)
    letters, count = attn_type[:num_stages], attn_type[num_stages:]
    if len(letters) != num_stages or any(c not in "ISM" for c in letters) or ("M" in letters) != bool(count):
        raise ValueError(
            f"attn_type needs one of I/S/M per stage ({num_stages}) and, only with M, the number of "
            f"leading InLine blocks after them (e.g. 'IIMS2'); got {attn_type!r}")
    k = int(count) if count else 0
    return [[c if c != "M" else ("I" if i < k else "S") for i in range(d)] for c, d in zip(letters, depths)]


# --------------------------------------------------------------------------- DeiT


class InLineViTAttention(InLineAttention):
    """InLine attention as a timm `VisionTransformer` attention layer (a class token first).

    The patch grid is square (the official code takes h = w = sqrt(n)).
    """

    def __init__(
            self,
            dim: int,
            num_heads: int = 8,
            qkv_bias: bool = True,
            qk_norm: bool = False,
            scale_norm: bool = False,
            proj_bias: bool = True,
            attn_drop: float = 0.0,
            proj_drop: float = 0.0,
            norm_layer: type | None = None,
            num_prefix_tokens: int = 1,
            **kwargs: Any,
    ):
        if qk_norm or scale_norm or not proj_bias:
            raise ValueError("InLine attention has no qk_norm / scale_norm and always a projection bias")
        super().__init__(dim, num_heads, qkv_bias=qkv_bias, proj_drop=proj_drop)
        self.num_prefix_tokens = num_prefix_tokens

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        # (torch.fx traces attn_mask and is_causal as graph inputs: no check while tracing)
        if not is_fx_proxy(x) and (attn_mask is not None or is_causal):
            raise ValueError("InLine attention takes no attention mask")
        side = _square_side(x.shape[1] - self.num_prefix_tokens)
        return super().forward(x, (side, side), self.num_prefix_tokens)


@fx_leaf  # torch.fx: computed from the traced token count
def _square_side(patches: int) -> int:
    """The side of a square grid of `patches` tokens."""
    side = math.isqrt(patches)
    if side * side != patches:
        raise ValueError(f"InLine-DeiT needs a square patch grid, got {patches} patch tokens")
    return side


@handles_empty_batch  # timm's VisionTransformer.forward_intermediates reshapes with -1: no B = 0
class InLineDeiT(VisionTransformer):
    """InLine-DeiT: timm's ViT (cls token, learned pos-embed, LayerNorm eps 1e-6) with InLine attention.

    Built for one square `img_size` as the official model; `dynamic_img_size=True`
    resamples the position embedding for other square inputs.
    """

    def __init__(
            self,
            img_size: int = 224,
            patch_size: int = 16,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "token",
            embed_dim: int = 192,
            depth: int = 12,
            num_heads: int = 6,
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            dynamic_img_size: bool = False,
            drop_rate: float = 0.0,
            pos_drop_rate: float = 0.0,
            proj_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            **kwargs: Any,
    ):
        check_model_args(type(self).__name__, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                         pos_drop_rate=pos_drop_rate, proj_drop_rate=proj_drop_rate, drop_path_rate=drop_path_rate,
                         **shared_model_args(kwargs))
        h, w = to_2tuple(img_size)
        if h != w:
            raise ValueError(f"InLine-DeiT takes a square img_size (its attention assumes a square grid), got {h}x{w}")
        super().__init__(
            img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
            global_pool=global_pool, embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias, class_token=True, dynamic_img_size=dynamic_img_size, drop_rate=drop_rate,
            pos_drop_rate=pos_drop_rate, proj_drop_rate=proj_drop_rate, drop_path_rate=drop_path_rate,
            norm_layer=partial(nn.LayerNorm, eps=1e-6), act_layer=nn.GELU, attn_layer=InLineViTAttention, **kwargs)

    def _check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_scripting():
            return
        if is_fx_proxy(x):  # torch.fx symbolic tracing: nothing to check (zoo.layers.checks)
            return
        name = model_name(self)
        patch = self.patch_embed.patch_size[0]
        check_image_input(x, self.in_chans, name, multiple_of=patch)
        h, w = x.shape[-2:]
        if self.dynamic_img_size:
            if h != w:
                raise ValueError(f"{name} takes square inputs (its attention assumes a square grid), got {h}x{w}")
        elif (h, w) != tuple(self.patch_embed.img_size):
            eh, ew = self.patch_embed.img_size
            raise ValueError(
                f"{name} takes {eh}x{ew} inputs, got {h}x{w}; build it with img_size={h} "
                f"(or dynamic_img_size=True) for other square sizes")

    def forward_features(
            self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False,
    ) -> torch.Tensor:
        self._check_input(x)
        return super().forward_features(x, attn_mask=attn_mask, is_causal=is_causal)

    def forward_intermediates(self, x: torch.Tensor, *args: Any, **kwargs: Any):
        self._check_input(x)
        return super().forward_intermediates(x, *args, **kwargs)


# --------------------------------------------------------------------------- hierarchical base


class _Pyramid(StagedModelApi, nn.Module):
    """What InLine-Swin / PVT / CSwin share: `stem`, four NHWC `stages`, final `norm`, `head`."""

    stem_pattern = r"^stem|^stages\.0\.(?:patch_embed|pos_embed)"
    stage_openers = "downsample|patch_embed|pos_embed"
    final_patterns = (r"^norm",)

    stem: nn.Module
    stages: nn.Sequential
    norm: nn.Module
    head: ClassifierHead
    output_fmt = "NHWC"  # forward_features' layout, declared as timm's NHWC models do

    def _init_head(self, num_features: int, num_classes: int, global_pool: str, drop_rate: float) -> None:
        self.num_features = self.head_hidden_size = num_features
        self.num_classes = num_classes
        self.head = ClassifierHead(num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate,
                                   input_fmt="NHWC")

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # Official init: trunc_normal(0.02) Linear weights, zero biases; convs keep PyTorch's default.
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs (strides 4, 8, 16, 32) as NCHW maps for the stages in `indices`.

        Args:
            x: image batch (B, in_chans, H, W).
            indices: take the last n stages if int, all if None, these stages if a sequence.
            norm: apply the final norm to the last stage's output (the others have none).
            stop_early: stop after the last stage taken.
            output_fmt: only 'NCHW'.
            intermediates_only: return only the intermediates.
        """
        self._check_input(x)
        return staged_intermediates(self, x, indices, norm, stop_early, output_fmt, intermediates_only,
                                    final_norm=self.norm, stage_fmt="NHWC")

    def prune_intermediate_layers(
            self,
            indices: int | list[int] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> list[int]:
        """Drop the stages (and norm / head) that the requested intermediates do not need."""
        take_indices, pruned_end = prune_stages(self, indices)
        if prune_norm or pruned_end:
            self.norm = nn.Identity()
        # A cut end gets a fresh classifier-less head (iFormer instead resizes its head in place).
        if pruned_end:
            self.head = ClassifierHead(self.num_features, 0, pool_type="", input_fmt="NHWC")
        elif prune_head:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) image -> (B, H/32, W/32, C) final map (NHWC, after the final norm)."""
        self._check_input(x)
        return self.norm(self.stages(self.stem(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class _Stage(nn.Module):
    """`downsample` (or `patch_embed` + `pos_embed`) then `blocks`, all on NHWC maps."""

    def __init__(self):
        super().__init__()
        self.grad_checkpointing = False

    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


# --------------------------------------------------------------------------- Swin


def _swin_window_shift(resolution: tuple[int, int], window: int, shift: int) -> tuple[int, int]:
    """The official rule: a window at least as large as the map covers it whole, unshifted."""
    if min(resolution) <= window:
        return min(resolution), 0
    return window, shift


class TableWindowAttention(WindowAttention):
    """timm's Swin window attention with the bias table sized for `table_window` >= the window.

    In every official configuration the two are equal. When a small input clamps
    the window to a smaller map, the block keeps the table of its configured
    window and reads the central offsets (the bias of each relative offset stays
    the trained one); the official code would build a smaller table instead.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, table_window: int, **kwargs: Any):
        self.table_window = table_window
        super().__init__(dim, num_heads, window_size=window_size, **kwargs)
        t = 2 * table_window - 1
        self.relative_position_bias_table = nn.Parameter(torch.zeros(t * t, num_heads))
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def _init_buffers(self) -> None:
        win_h, win_w = self.window_size
        t = self.table_window
        coords = torch.stack(torch.meshgrid(
            torch.arange(win_h, device=self.relative_position_index.device),
            torch.arange(win_w, device=self.relative_position_index.device), indexing="ij")).flatten(1)
        rel = coords[:, :, None] - coords[:, None, :] + (t - 1)  # offsets shifted into [0, 2t - 2]
        self.relative_position_index.copy_(rel[0] * (2 * t - 1) + rel[1])


def _softmax_swin_block(
        dim: int, resolution: tuple[int, int], num_heads: int, window: int, shift: int, table_window: int,
        mlp_ratio: float, qkv_bias: bool, proj_drop: float, attn_drop: float, drop_path: float,
) -> SwinTransformerBlock:
    """timm's shifted-window block (-100 mask, relative position bias) with the official window / shift."""
    block = SwinTransformerBlock(
        dim, resolution, num_heads, window_size=window, shift_size=shift, always_partition=True,
        mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, proj_drop=proj_drop, attn_drop=attn_drop, drop_path=drop_path)
    block.attn = TableWindowAttention(
        dim, num_heads, window, table_window, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop)
    return block


class InLineSwinBlock(nn.Module):
    """Swin block with InLine attention per window (one window = the whole map in every official model)."""

    def __init__(
            self,
            dim: int,
            num_heads: int,
            window_size: int,
            shift_size: int = 0,
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            proj_drop: float = 0.0,
            drop_path: float = 0.0,
    ):
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = InLineAttention(dim, num_heads, qkv_bias=qkv_bias, proj_drop=proj_drop)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=proj_drop)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def _attn(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        ws, shift = self.window_size, self.shift_size
        if shift:  # the official shifted InLine block has no mask (InLine ignores it)
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        windows = window_partition(x, (ws, ws)).reshape(-1, ws * ws, c)
        windows = self.attn(windows, (ws, ws))
        x = window_reverse(windows.reshape(-1, ws, ws, c), (ws, ws), h, w)
        if shift:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self._attn(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


class InLineSwinStage(_Stage):
    def __init__(
            self,
            dim: int,
            out_dim: int,
            resolution: tuple[int, int],
            attn_types: Sequence[str],
            downsample: bool,
            num_heads: int,
            window_size: int,
            mlp_ratio: float,
            qkv_bias: bool,
            proj_drop: float,
            attn_drop: float,
            drop_path_rates: Sequence[float],
            stage_index: int,
    ):
        super().__init__()
        self.downsample = PatchMerging(dim, out_dim) if downsample else nn.Identity()
        blocks = []
        for i, kind in enumerate(attn_types):
            target = window_size if kind == "I" else max(7, window_size // 8)
            ws, shift = _swin_window_shift(resolution, target, 0 if i % 2 == 0 else target // 2)
            if resolution[0] % ws or resolution[1] % ws:
                raise ValueError(
                    f"stage {stage_index + 1} feature map {resolution[0]}x{resolution[1]} is not divisible by its "
                    f"{'InLine' if kind == 'I' else 'softmax'} window {ws} (window_size={window_size}); "
                    f"choose an img_size whose stage maps the windows divide")
            if kind == "I":
                blocks.append(InLineSwinBlock(
                    out_dim, num_heads, ws, shift, mlp_ratio, qkv_bias, proj_drop, drop_path_rates[i]))
            else:
                blocks.append(_softmax_swin_block(
                    out_dim, resolution, num_heads, ws, shift, target, mlp_ratio, qkv_bias, proj_drop, attn_drop,
                    drop_path_rates[i]))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._blocks(self.downsample(x))


@handles_empty_batch  # timm's SwinTransformerBlock / WindowAttention reshape with -1: no B = 0
class InLineSwin(_Pyramid):
    """InLine-Swin: Swin v1 with InLine blocks (window 56 = whole map) and softmax window blocks.

    Args:
        img_size: the one input size the model takes (windows and masks are built for it).
        attn_type: per stage I / S / M (+ count), e.g. 'IIIS' (T), 'IISS' (S), 'IIMS2' (B).
        window_size: window of the InLine blocks; softmax blocks use max(7, window_size // 8).
    """

    def __init__(
            self,
            img_size: int | tuple[int, int] = 224,
            patch_size: int = 4,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            embed_dim: int = 96,
            depths: Sequence[int] = (2, 2, 6, 2),
            num_heads: Sequence[int] = (3, 6, 12, 24),
            window_size: int = 56,
            attn_type: str = "IIIS",
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            drop_rate: float = 0.0,
            proj_drop_rate: float = 0.0,
            attn_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
    ):
        super().__init__()
        check_model_args(type(self).__name__, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                         proj_drop_rate=proj_drop_rate, attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate)
        self.in_chans = in_chans
        self.img_size = to_2tuple(img_size)
        num_stages = len(depths)
        attn_types = _stage_attn_types(attn_type, depths)
        self.stem = PatchEmbed(self.img_size, patch_size, in_chans, embed_dim, norm_layer=nn.LayerNorm,
                               output_fmt="NHWC")
        grid = self.stem.grid_size
        dims = [embed_dim * 2 ** i for i in range(num_stages)]
        rates = _drop_path_rates(drop_path_rate, depths)
        stages, self.feature_info = [], []
        resolution = tuple(grid)
        for i in range(num_stages):
            if i > 0:
                if resolution[0] % 2 or resolution[1] % 2:
                    raise ValueError(
                        f"patch merging before stage {i + 1} needs an even map, got {resolution[0]}x{resolution[1]} "
                        f"(img_size must be a multiple of {patch_size * 2 ** (num_stages - 1)})")
                resolution = (resolution[0] // 2, resolution[1] // 2)
            stages.append(InLineSwinStage(
                dims[max(i - 1, 0)], dims[i], resolution, attn_types[i], i > 0, num_heads[i], window_size,
                mlp_ratio, qkv_bias, proj_drop_rate, attn_drop_rate, rates[i], i))
            self.feature_info.append(dict(num_chs=dims[i], reduction=patch_size * 2 ** i, module=f"stages.{i}"))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(dims[-1])
        self._init_head(dims[-1], num_classes, global_pool, drop_rate)
        self.apply(self._init_weights)

    @torch.jit.ignore
    def no_weight_decay_keywords(self) -> set[str]:
        return {"relative_position_bias_table"}

    def _check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_scripting():
            return
        if is_fx_proxy(x):  # torch.fx symbolic tracing: nothing to check (zoo.layers.checks)
            return
        check_image_input(x, self.in_chans, model_name(self))
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(
                f"{model_name(self)} takes {self.img_size[0]}x{self.img_size[1]} inputs "
                f"(windows and masks are built for it), got {x.shape[-2]}x{x.shape[-1]}; "
                f"build it with img_size=... for another size")


# --------------------------------------------------------------------------- PVT


class PVTPatchEmbed(nn.Module):
    """Conv (kernel = stride) then LayerNorm (eps 1e-5); NCHW image or NHWC map in, NHWC out."""

    def __init__(self, in_chans: int, dim: int, patch_size: int, nhwc_input: bool):
        super().__init__()
        self.nhwc_input = nhwc_input
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nhwc_input:
            x = x.permute(0, 3, 1, 2)
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class InLinePVTBlock(nn.Module):
    """Pre-norm block (LayerNorm eps 1e-6), global InLine attention (`q` / `kv` Linears), Mlp."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, proj_drop: float, drop_path: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = InLineAttention(dim, num_heads, qkv_bias=qkv_bias, proj_drop=proj_drop, separate_q=True)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=proj_drop)
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        x = x.reshape(b, h * w, c)
        x = x + self.drop_path1(self.attn(self.norm1(x), (h, w)))
        x = x + self.drop_path2(self.mlp(self.norm2(x)))
        return x.reshape(b, h, w, c)


class InLinePVTStage(_Stage):
    def __init__(
            self,
            in_chans: int,
            dim: int,
            patch_size: int,
            grid: tuple[int, int],
            depth: int,
            num_heads: int,
            mlp_ratio: float,
            qkv_bias: bool,
            pos_drop: float,
            proj_drop: float,
            drop_path_rates: Sequence[float],
            nhwc_input: bool,
    ):
        super().__init__()
        self.grid = grid
        self.patch_embed = PVTPatchEmbed(in_chans, dim, patch_size, nhwc_input)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1], dim))
        self.pos_drop = nn.Dropout(pos_drop)
        self.blocks = nn.Sequential(*[
            InLinePVTBlock(dim, num_heads, mlp_ratio, qkv_bias, proj_drop, drop_path_rates[j]) for j in range(depth)])

    @fx_leaf  # torch.fx: resized only for another grid size
    def _pos_embed(self, h: int, w: int) -> torch.Tensor:
        pos = self.pos_embed.reshape(1, *self.grid, -1)
        if (h, w) == self.grid:
            return pos
        # Official `_get_pos_embed`: bilinear, align_corners=False, from the constructed grid.
        pos = F.interpolate(pos.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=False)
        return pos.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = self.pos_drop(x + self._pos_embed(x.shape[1], x.shape[2]))
        return self._blocks(x)


class InLinePVT(_Pyramid):
    """InLine-PVT: PVT v1 pyramid, global InLine attention everywhere, no cls token, no final norm.

    Takes any input of at least 32x32 (position embeddings are interpolated as
    the official code does); `img_size` sets the grids the embeddings are stored at.
    """

    # no_weight_decay stays empty: the official recipe decays the position embeddings (models/inline_pvt.py).

    def __init__(
            self,
            img_size: int | tuple[int, int] = 224,
            patch_size: int = 4,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            embed_dims: Sequence[int] = (64, 128, 320, 512),
            depths: Sequence[int] = (2, 2, 2, 2),
            num_heads: Sequence[int] = (2, 4, 10, 16),
            mlp_ratios: Sequence[float] = (8, 8, 4, 4),
            qkv_bias: bool = True,
            drop_rate: float = 0.0,
            pos_drop_rate: float = 0.0,
            proj_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
    ):
        super().__init__()
        check_model_args(type(self).__name__, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                         pos_drop_rate=pos_drop_rate, proj_drop_rate=proj_drop_rate, drop_path_rate=drop_path_rate)
        self.in_chans = in_chans
        self.img_size = to_2tuple(img_size)
        self.min_size = patch_size * 2 ** (len(depths) - 1)
        rates = _drop_path_rates(drop_path_rate, depths)
        grid = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        stages, self.feature_info = [], []
        for i in range(len(depths)):
            if i > 0:
                grid = (grid[0] // 2, grid[1] // 2)
            stages.append(InLinePVTStage(
                in_chans if i == 0 else embed_dims[i - 1], embed_dims[i], patch_size if i == 0 else 2, grid,
                depths[i], num_heads[i], mlp_ratios[i], qkv_bias, pos_drop_rate, proj_drop_rate, rates[i],
                nhwc_input=i > 0))
            self.feature_info.append(dict(num_chs=embed_dims[i], reduction=patch_size * 2 ** i, module=f"stages.{i}"))
        self.stem = nn.Identity()
        self.stages = nn.Sequential(*stages)
        self.norm = nn.Identity()  # the official PVT classifier pools the last stage directly
        self._init_head(embed_dims[-1], num_classes, global_pool, drop_rate)
        for stage in self.stages:
            trunc_normal_(stage.pos_embed, std=0.02)
        self.apply(self._init_weights)

    def _check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_scripting():
            return
        if is_fx_proxy(x):  # torch.fx symbolic tracing: nothing to check (zoo.layers.checks)
            return
        check_image_input(x, self.in_chans, model_name(self))
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"{model_name(self)} takes H and W of at least {self.min_size}, got {x.shape[-2]}x{x.shape[-1]}")


# --------------------------------------------------------------------------- CSwin


class CSwinStem(nn.Module):
    """Conv 7x7 stride 4 padding 2, then LayerNorm: NCHW image -> NHWC map."""

    def __init__(self, in_chans: int, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, dim, 7, 4, 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x).permute(0, 2, 3, 1))


class CSwinMerge(nn.Module):
    """Conv 3x3 stride 2 padding 1, then LayerNorm, on NHWC maps."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, out_dim, 3, 2, 1)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, N, C) -> (B, heads, N, C/heads), head-major channels."""
    b, n, c = x.shape
    return x.reshape(b, n, num_heads, c // num_heads).transpose(1, 2)


class LePEStripeAttention(nn.Module):
    """CSWin softmax attention in (h_sp x w_sp) windows plus LePE (depthwise 3x3 of V per window)."""

    def __init__(self, dim: int, num_heads: int, window: tuple[int, int]):
        super().__init__()
        self.num_heads = num_heads
        self.window = window
        self.get_v = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        b, h, w, c = q.shape
        hs, ws = self.window
        q, k, v = (window_partition(t, self.window).reshape(-1, hs * ws, c) for t in (q, k, v))
        lepe = self.get_v(v.transpose(1, 2).reshape(-1, c, hs, ws)).flatten(2).transpose(1, 2)
        out = F.scaled_dot_product_attention(_heads(q, self.num_heads), _heads(k, self.num_heads),
                                             _heads(v, self.num_heads))
        out = out.transpose(1, 2).reshape(-1, hs * ws, c) + lepe
        return window_reverse(out.reshape(-1, hs, ws, c), self.window, h, w)


class InLineGlobalAttention(nn.Module):
    """InLine-CSwin's InLine branch: one window = the whole map; InLine + dynamic 3x3 residual + LePE."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.get_v = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)
        self.residual = DynamicLocalConv(dim, num_heads)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        b, h, w, c = q.shape
        q, k, v = (t.reshape(b, h * w, c) for t in (q, k, v))
        out = linear_attention(_heads(q, self.num_heads), _heads(k, self.num_heads), _heads(v, self.num_heads),
                               variant="inline")
        v_map = v.transpose(1, 2).reshape(b, c, h, w)
        local = self.residual.local_residual(v_map, mean) + self.get_v(v_map)
        return (out.transpose(1, 2).reshape(b, h * w, c) + local.flatten(2).transpose(1, 2)).reshape(b, h, w, c)


class InLineCSwinBlock(nn.Module):
    """CSWin block: norm1 -> qkv -> branches (two stripe halves, or one global) -> proj; Mlp.

    InLine blocks are always one global branch; their kernel generator reads the
    token mean of the block input before norm1 (as the official code does).
    """

    def __init__(
            self,
            dim: int,
            resolution: int,
            num_heads: int,
            kind: str,
            split_size: int,
            last_stage: bool,
            mlp_ratio: float,
            qkv_bias: bool,
            proj_drop: float,
            drop_path: float,
    ):
        super().__init__()
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.norm1 = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        if kind == "I":
            self.attns = nn.ModuleList([InLineGlobalAttention(dim, num_heads)])
        elif last_stage or split_size == resolution:
            self.attns = nn.ModuleList([LePEStripeAttention(dim, num_heads, (resolution, resolution))])
        else:
            self.attns = nn.ModuleList([
                LePEStripeAttention(dim // 2, num_heads // 2, (resolution, split_size)),
                LePEStripeAttention(dim // 2, num_heads // 2, (split_size, resolution)),
            ])
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=proj_drop)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[-1]
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        mean = x.mean(dim=(1, 2))
        if len(self.attns) == 2:
            half = c // 2
            out = torch.cat([
                self.attns[0](q[..., :half], k[..., :half], v[..., :half], mean[:, :half]),
                self.attns[1](q[..., half:], k[..., half:], v[..., half:], mean[:, half:]),
            ], dim=-1)
        else:
            out = self.attns[0](q, k, v, mean)
        x = x + self.drop_path(self.proj_drop(self.proj(out)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class InLineCSwinStage(_Stage):
    def __init__(self, dim: int, out_dim: int, blocks: list[nn.Module]):
        super().__init__()
        self.downsample = CSwinMerge(dim, out_dim) if dim != out_dim else nn.Identity()
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._blocks(self.downsample(x))


class InLineCSwin(_Pyramid):
    """InLine-CSwin: CSWin with global InLine blocks and cross-shaped stripe softmax blocks.

    Args:
        img_size: the one (square) input size the model takes; a multiple of 32.
        split_size: stripe width of the softmax blocks per stage; default
            (1, 2, img_size // 32, img_size // 32), the official [1, 2, 7, 7] at 224
            and [1, 2, 12, 12] at 384. InLine blocks always attend globally
            (the official la_split_size equals the stage resolution).
        attn_type: per stage I / S / M (+ count), official 'IISS'.
    """

    def __init__(
            self,
            img_size: int = 224,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            embed_dim: int = 64,
            depths: Sequence[int] = (2, 4, 18, 1),
            num_heads: Sequence[int] = (2, 4, 8, 16),
            split_size: Sequence[int] | None = None,
            attn_type: str = "IISS",
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            drop_rate: float = 0.0,
            proj_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
    ):
        super().__init__()
        check_model_args(type(self).__name__, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                         proj_drop_rate=proj_drop_rate, drop_path_rate=drop_path_rate)
        size = to_2tuple(img_size)
        if size[0] != size[1] or size[0] % 32:
            raise ValueError(f"InLine-CSwin takes a square img_size that is a multiple of 32, got {size}")
        self.in_chans = in_chans
        self.img_size = size
        num_stages = len(depths)
        split_size = tuple(split_size or (1, 2, size[0] // 32, size[0] // 32))
        attn_types = _stage_attn_types(attn_type, depths)
        rates = _drop_path_rates(drop_path_rate, depths)
        self.stem = CSwinStem(in_chans, embed_dim)
        stages, self.feature_info = [], []
        for i in range(num_stages):
            dim, resolution = embed_dim * 2 ** i, size[0] // 2 ** (i + 2)
            last = i == num_stages - 1
            for kind in set(attn_types[i]):
                split = split_size[i]
                if kind == "S" and not (last or split == resolution) and resolution % split:
                    raise ValueError(
                        f"stage {i + 1} map {resolution}x{resolution} is not divisible by its stripe width "
                        f"split_size[{i}]={split}; pass split_size=(...) with widths that divide the stage maps")
            blocks = [
                InLineCSwinBlock(dim, resolution, num_heads[i], kind, split_size[i], last, mlp_ratio, qkv_bias,
                                 proj_drop_rate, rates[i][j])
                for j, kind in enumerate(attn_types[i])]
            stages.append(InLineCSwinStage(embed_dim * 2 ** max(i - 1, 0), dim, blocks))
            self.feature_info.append(dict(num_chs=dim, reduction=4 * 2 ** i, module=f"stages.{i}"))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(embed_dim * 2 ** (num_stages - 1))
        self._init_head(embed_dim * 2 ** (num_stages - 1), num_classes, global_pool, drop_rate)
        self.apply(self._init_weights)

    def _check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_scripting():
            return
        if is_fx_proxy(x):  # torch.fx symbolic tracing: nothing to check (zoo.layers.checks)
            return
        check_image_input(x, self.in_chans, model_name(self))
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(
                f"{model_name(self)} takes {self.img_size[0]}x{self.img_size[1]} inputs "
                f"(stripes are built for it), got {x.shape[-2]}x{x.shape[-1]}; "
                f"build it with img_size=... (a multiple of 32) for another size")


# --------------------------------------------------------------------------- checkpoints


def _next_stage_downsample(match: re.Match) -> str:
    # Official Swin: PatchMerging at the end of layer i; ours: at the start of stage i + 1.
    return f"stages.{int(match.group(1)) + 1}.downsample."


# Official key (`InLineSwin` state dict, models/inline_swin.py) -> ours, applied in order.
SWIN_KEY_RULES = [
    (r"\.(relative_position_index|attn_mask)$", None),  # buffers, rebuilt from the geometry
    (r"^patch_embed\.", "stem."),
    (r"^layers\.(\d+)\.downsample\.", _next_stage_downsample),
    (r"^layers\.(\d+)\.blocks\.", r"stages.\1.blocks."),
    (r"^head\.(weight|bias)$", r"head.fc.\1"),
]
PVT_KEY_RULES = [
    (r"^patch_embed(\d)\.", lambda m: f"stages.{int(m.group(1)) - 1}.patch_embed."),
    (r"^pos_embed(\d)$", lambda m: f"stages.{int(m.group(1)) - 1}.pos_embed"),
    (r"^block(\d)\.", lambda m: f"stages.{int(m.group(1)) - 1}.blocks."),
    (r"^head\.(weight|bias)$", r"head.fc.\1"),
]
CSWIN_KEY_RULES = [
    (r"^stage1_conv_embed\.0\.", "stem.conv."),
    (r"^stage1_conv_embed\.2\.", "stem.norm."),
    (r"^merge(\d)\.", r"stages.\1.downsample."),
    (r"^stage(\d)\.(\d+)\.", lambda m: f"stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}."),
    (r"^head\.(weight|bias)$", r"head.fc.\1"),
]


def _drop_absent_head(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """A model without a classifier or final norm (features_only, num_classes=0) ignores the checkpoint's."""
    expected = model.state_dict()
    return {k: v for k, v in state_dict.items() if k in expected or not k.startswith(("head", "norm."))}


def _filter_deit(state_dict: dict[str, torch.Tensor], model: InLineDeiT) -> dict[str, torch.Tensor]:
    if "pos_embed" in state_dict and state_dict["pos_embed"].shape != model.pos_embed.shape:
        state_dict["pos_embed"] = resample_abs_pos_embed(
            state_dict["pos_embed"], new_size=model.patch_embed.grid_size, num_prefix_tokens=model.num_prefix_tokens)
    if isinstance(model.norm, nn.Identity) and not isinstance(model.fc_norm, nn.Identity):
        state_dict = rename_keys(state_dict, [(r"^norm\.", "fc_norm.")])  # global_pool='avg' normalises after pooling
    return check_state_dict(_drop_absent_head(state_dict, model), model, classifier="head")


def _filter_swin(state_dict: dict[str, torch.Tensor], model: InLineSwin) -> dict[str, torch.Tensor]:
    if "stem.proj.weight" not in state_dict:  # official layout
        state_dict = rename_keys(state_dict, SWIN_KEY_RULES)
    state_dict = {k: v for k, v in state_dict.items() if not k.endswith(("relative_position_index", "attn_mask"))}
    expected = model.state_dict()
    for key, value in state_dict.items():
        if key.endswith("relative_position_bias_table") and key in expected and value.shape != expected[key].shape:
            # The official load_pretrained: plain bicubic F.interpolate of the (2w-1)^2 grid per head
            # (utils.py), not timm's BEiT-style geometric resampling.
            attn = model.get_submodule(key.rsplit(".", 1)[0])
            state_dict[key] = resize_rel_pos_bias_table_simple(
                value, new_window_size=to_2tuple(attn.table_window), new_bias_shape=tuple(expected[key].shape))
    return check_state_dict(_drop_absent_head(state_dict, model), model, classifier="head.fc")


def _filter_pvt(state_dict: dict[str, torch.Tensor], model: InLinePVT) -> dict[str, torch.Tensor]:
    if "stages.0.pos_embed" not in state_dict:  # official layout
        state_dict = rename_keys(state_dict, PVT_KEY_RULES)
    for i, stage in enumerate(model.stages):
        key = f"stages.{i}.pos_embed"
        if key in state_dict and state_dict[key].shape != stage.pos_embed.shape:
            old = state_dict[key]
            side = math.isqrt(old.shape[1])
            if side * side != old.shape[1]:
                raise ValueError(f"{key}: cannot resample a {old.shape[1]}-token embedding of unknown grid")
            state_dict[key] = resample_abs_pos_embed(
                old, new_size=stage.grid, old_size=(side, side), num_prefix_tokens=0, interpolation="bilinear",
                antialias=False)
    return check_state_dict(_drop_absent_head(state_dict, model), model, classifier="head.fc")


def _filter_cswin(state_dict: dict[str, torch.Tensor], model: InLineCSwin) -> dict[str, torch.Tensor]:
    if "stem.conv.weight" not in state_dict:  # official layout
        state_dict = rename_keys(state_dict, CSWIN_KEY_RULES)
    return check_state_dict(_drop_absent_head(state_dict, model), model, classifier="head.fc")


def checkpoint_filter_fn(state_dict: dict[str, Any], model: nn.Module) -> dict[str, torch.Tensor]:
    """Official InLine checkpoint (any of the four backbones) -> this model's state dict.

    Accepts the training-script wrapper (`model`), `module.` / `backbone.` prefixes
    and already-converted state dicts. Residual kernels stay Conv1d (C, C/heads, 1);
    Swin's index / mask buffers are dropped (rebuilt from the geometry) and its
    relative-position tables resized when the window differs; position
    embeddings are resampled when the resolution differs (DeiT bicubic, as timm;
    PVT bilinear, as the official runtime interpolation).
    """
    state_dict = strip_prefixes(unwrap_state_dict(state_dict, model), ("module.", "backbone."))
    for cls, fn in ((InLineDeiT, _filter_deit), (InLineSwin, _filter_swin), (InLinePVT, _filter_pvt),
                    (InLineCSwin, _filter_cswin)):
        if isinstance(model, cls):
            return fn(state_dict, model)
    raise TypeError(f"not an InLine model: {type(model).__name__}")


# --------------------------------------------------------------------------- factory


def _create(cls: type, variant: str, pretrained: bool, default_out_indices: Any, **kwargs: Any) -> nn.Module:
    out_indices = kwargs.pop("out_indices", default_out_indices)
    return build_zoo_model(
        cls, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **kwargs,
    )


_TSINGHUA = "https://cloud.tsinghua.edu.cn/f/{}/?dl=1"
_COMMON = dict(
    num_classes=1000, interpolation="bicubic", mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD,
    license="unknown", paper_ids="arXiv:2412.06590",
    paper_name="Bridging the Divide: Reconsidering Softmax and Linear Attention",
    origin_url="https://github.com/LeapLabTHU/InLine",
)


def _cfg(share_id: str | None, size: int = 224, crop_pct: float = 0.875, **kwargs: Any) -> dict[str, Any]:
    notes = ("the official repository has no license file; the InLine parts are all rights reserved until "
             "clarified",)
    if share_id is None:
        notes += ("no official checkpoint was released for this configuration",)
    return {
        **_COMMON, "url": _TSINGHUA.format(share_id) if share_id else None,
        "input_size": (3, size, size), "crop_pct": crop_pct, "fixed_input_size": True, "notes": notes, **kwargs,
    }


_deit = partial(_cfg, first_conv="patch_embed.proj", classifier="head", pool_size=None)
_swin = partial(_cfg, first_conv="stem.proj", classifier="head.fc")
_pvt = partial(_cfg, first_conv="stages.0.patch_embed.proj", classifier="head.fc", fixed_input_size=False)
_cswin = partial(_cfg, first_conv="stem.conv", classifier="head.fc")

default_cfgs = generate_default_cfgs({
    "inline_deit_tiny.in1k": _deit("1d6b8191ad6d4114b291"),
    "inline_deit_small.in1k": _deit("2f3898b07e9247f3beb3", size=288),
    "inline_deit_base.in1k": _deit("10bdd726d4b0435eb34e", size=448),
    "inline_swin_tiny.in1k": _swin("32810869fcc34410966b", pool_size=(7, 7)),
    "inline_swin_small.in1k": _swin("e9657fd247c04c7cb1a1", pool_size=(7, 7)),
    "inline_swin_base.in1k": _swin("bf23564bb64c420aafe1", pool_size=(7, 7)),
    # Swin codebase TEST.CROP False: the whole image resized to 384x384.
    "inline_swin_base_384.in1k": _swin(None, size=384, crop_pct=1.0, crop_mode="squash", pool_size=(12, 12)),
    "inline_pvt_tiny.in1k": _pvt("90ac52b1555b401eb5e6", pool_size=(7, 7)),
    "inline_pvt_small.in1k": _pvt("1ab953b2479d433080a3", pool_size=(7, 7)),
    "inline_pvt_medium.in1k": _pvt("a72aec31e6084bc0a280", pool_size=(7, 7)),
    "inline_pvt_large.in1k": _pvt("efd91318ba964f01b288", pool_size=(7, 7)),
    "inline_cswin_tiny.in1k": _cswin("49fa2ecc543647c4b970", pool_size=(7, 7)),
    "inline_cswin_small.in1k": _cswin("59f4e65f776f4052b93c", pool_size=(7, 7)),
    "inline_cswin_base.in1k": _cswin("91e17121df284ae38521", pool_size=(7, 7)),
    "inline_cswin_base_384.in1k": _cswin(None, size=384, pool_size=(12, 12)),
})

# The share links carry no file name: downloads are saved (and looked up in
# $ZOO_WEIGHTS_DIR) as `<variant>.pth`. The files pickle their yacs config,
# which zoo.pretrained reads back as an OrderedDict. CSwin's main_ema.py saves
# `state_dict_ema` beside `model`; its EMA weights are taken when present.
register_official_files({
    f"{name}.{tag}": OfficialFile(
        f"{name}.pth", cfg.cfgs[tag].url, weights_key="state_dict_ema" if "cswin" in name else "model")
    for name, cfg in default_cfgs.items() for tag in cfg.tags if cfg.cfgs[tag].url
})


@supports_ggem  # global_pool="ggem" (zoo.layers.ggem)
def _deit_model(variant: str, pretrained: bool, **kwargs: Any) -> InLineDeiT:
    return _create(InLineDeiT, variant, pretrained, 3, **kwargs)


@supports_ggem  # global_pool="ggem" (zoo.layers.ggem)
def _swin_model(variant: str, pretrained: bool, **kwargs: Any) -> InLineSwin:
    return _create(InLineSwin, variant, pretrained, (0, 1, 2, 3), **kwargs)


@supports_ggem  # global_pool="ggem" (zoo.layers.ggem)
def _pvt_model(variant: str, pretrained: bool, **kwargs: Any) -> InLinePVT:
    return _create(InLinePVT, variant, pretrained, (0, 1, 2, 3), **kwargs)


@supports_ggem  # global_pool="ggem" (zoo.layers.ggem)
def _cswin_model(variant: str, pretrained: bool, **kwargs: Any) -> InLineCSwin:
    return _create(InLineCSwin, variant, pretrained, (0, 1, 2, 3), **kwargs)


# Official builders (models/inline_*.py) and cfgs/*.yaml; drop_path_rate is the training value.
@register_model
def inline_deit_tiny(pretrained: bool = False, **kwargs: Any) -> InLineDeiT:
    args = dict(img_size=224, embed_dim=192, depth=12, num_heads=6, drop_path_rate=0.1)
    return _deit_model("inline_deit_tiny", pretrained, **{**args, **kwargs})


@register_model
def inline_deit_small(pretrained: bool = False, **kwargs: Any) -> InLineDeiT:
    args = dict(img_size=288, embed_dim=320, depth=12, num_heads=10, drop_path_rate=0.1)
    return _deit_model("inline_deit_small", pretrained, **{**args, **kwargs})


@register_model
def inline_deit_base(pretrained: bool = False, **kwargs: Any) -> InLineDeiT:
    args = dict(img_size=448, embed_dim=384, depth=12, num_heads=12, drop_path_rate=0.1)
    return _deit_model("inline_deit_base", pretrained, **{**args, **kwargs})


@register_model
def inline_swin_tiny(pretrained: bool = False, **kwargs: Any) -> InLineSwin:
    args = dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), attn_type="IIIS", drop_path_rate=0.2)
    return _swin_model("inline_swin_tiny", pretrained, **{**args, **kwargs})


@register_model
def inline_swin_small(pretrained: bool = False, **kwargs: Any) -> InLineSwin:
    args = dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), attn_type="IISS", drop_path_rate=0.3)
    return _swin_model("inline_swin_small", pretrained, **{**args, **kwargs})


@register_model
def inline_swin_base(pretrained: bool = False, **kwargs: Any) -> InLineSwin:
    args = dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), attn_type="IIMS2", drop_path_rate=0.5)
    return _swin_model("inline_swin_base", pretrained, **{**args, **kwargs})


@register_model
def inline_swin_base_384(pretrained: bool = False, **kwargs: Any) -> InLineSwin:
    args = dict(img_size=384, window_size=96, embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32),
                attn_type="IIMS2", drop_path_rate=0.5)
    return _swin_model("inline_swin_base_384", pretrained, **{**args, **kwargs})


_PVT = dict(embed_dims=(64, 128, 320, 512), num_heads=(2, 4, 10, 16), mlp_ratios=(8, 8, 4, 4))


@register_model
def inline_pvt_tiny(pretrained: bool = False, **kwargs: Any) -> InLinePVT:
    args = dict(_PVT, depths=(2, 2, 2, 2), drop_path_rate=0.1)
    return _pvt_model("inline_pvt_tiny", pretrained, **{**args, **kwargs})


@register_model
def inline_pvt_small(pretrained: bool = False, **kwargs: Any) -> InLinePVT:
    args = dict(_PVT, depths=(3, 4, 6, 3), drop_path_rate=0.1)
    return _pvt_model("inline_pvt_small", pretrained, **{**args, **kwargs})


@register_model
def inline_pvt_medium(pretrained: bool = False, **kwargs: Any) -> InLinePVT:
    args = dict(_PVT, depths=(3, 4, 18, 3), drop_path_rate=0.3)
    return _pvt_model("inline_pvt_medium", pretrained, **{**args, **kwargs})


@register_model
def inline_pvt_large(pretrained: bool = False, **kwargs: Any) -> InLinePVT:
    args = dict(_PVT, depths=(3, 8, 27, 3), drop_path_rate=0.3)
    return _pvt_model("inline_pvt_large", pretrained, **{**args, **kwargs})


@register_model
def inline_cswin_tiny(pretrained: bool = False, **kwargs: Any) -> InLineCSwin:
    args = dict(embed_dim=64, depths=(2, 4, 18, 1), num_heads=(2, 4, 8, 16), drop_path_rate=0.2)
    return _cswin_model("inline_cswin_tiny", pretrained, **{**args, **kwargs})


@register_model
def inline_cswin_small(pretrained: bool = False, **kwargs: Any) -> InLineCSwin:
    args = dict(embed_dim=64, depths=(3, 6, 29, 2), num_heads=(2, 4, 8, 16), drop_path_rate=0.4)
    return _cswin_model("inline_cswin_small", pretrained, **{**args, **kwargs})


@register_model
def inline_cswin_base(pretrained: bool = False, **kwargs: Any) -> InLineCSwin:
    args = dict(embed_dim=96, depths=(3, 6, 29, 2), num_heads=(4, 8, 16, 32), drop_path_rate=0.5)
    return _cswin_model("inline_cswin_base", pretrained, **{**args, **kwargs})


@register_model
def inline_cswin_base_384(pretrained: bool = False, **kwargs: Any) -> InLineCSwin:
    args = dict(img_size=384, embed_dim=96, depths=(3, 6, 29, 2), num_heads=(4, 8, 16, 32), drop_path_rate=0.7)
    return _cswin_model("inline_cswin_base_384", pretrained, **{**args, **kwargs})
