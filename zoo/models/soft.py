"""SOFT and SOFT-Norm: softmax-free vision transformers with Gaussian-kernel attention.

- SOFT: *SOFT: Softmax-free Transformer with Linear Complexity*, Lu, Yao, Zhang, Zhu, Xu, Gao, Xu,
  Xiang, Zhang, NeurIPS 2021, arXiv:2110.11945.
- SOFT-Norm: *Softmax-free Linear Transformers*, Lu, Zhang, Zhu, Feng, Xiang, Zhang, IJCV 2024,
  arXiv:2207.03341 (symmetric normalisation of the landmark kernel's Newton inverse).
- Official code: https://github.com/fudan-zvg/SOFT (commit d3febc3), MIT.

A four-stage pyramid: a 3-conv stem (stride 4), then three stages of post-norm
SOFT blocks (Gaussian kernel between queries and r x r-pooled landmarks, a
20-step Newton-Raphson inverse of the landmark kernel, a per-head depthwise
conv on V) behind stride-2 conv + BN + ReLU downsamplings, and a last stage of
pre-norm softmax-attention blocks with a cls token, which the classifier
reads. Positional tables are fixed-size (56^2 / 28^2 / 14^2 / 1 + 7^2) and
resized bilinearly to every input, so any input of at least 29 x 29 works.

SOFT-Norm's Newton start is chosen over the WHOLE batch (official
`SoftmaxFreeNormAttentionKernel.newton_inv`): in eval an image's logits depend
(by ~1e-4) on the other images of its batch.
`per_sample_step=True` decouples them (not the official behaviour, off by default).

Layout differences from the official code (mapped by `checkpoint_filter_fn`):
`stem` for `patch_embed1.proj`, `stages.i` with the downsampling (`patch_embed`),
positional table and cls token of stage i, `blocks.j.attn.{q,v,landmark,
landmark_norm,dwconv,proj}` for `block{i}.j.att.mha.{W_q,W_v,attn.Qlandmark_op,
attn.Qnorm_act.0,attn.conv,ff}` and `mlp.fc1/fc2` for `att.ff1/ff2`.
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
from timm.layers import DropPath, Mlp, trunc_normal_, use_fused_attn
from timm.models import checkpoint_seq, generate_default_cfgs, register_model
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..layers.checks import check_image_input, check_model_args, handles_empty_batch, model_name
from ..layers.fx import fx_leaf, is_fx_proxy
from ..layers.soft_attention import SoftAttention
from ..pretrained import OfficialFile, build_zoo_model, register_official_files, unconfirmed_weights
from ._checkpoint import CheckpointMismatchError, check_state_dict, rename_keys, strip_prefixes, unwrap_state_dict
from ._features import prune_stages, staged_intermediates
from ._ggem_surgery import supports_ggem
from ._placement import keeps_device_dtype
from ._staged import StagedModelApi

__all__ = ["SOFT"]

GLOBAL_POOLS = ("token", "avg", "max", "avgmax", "")


def _conv_bn_relu(in_dim: int, out_dim: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(in_dim, out_dim, 3, stride, 1), nn.BatchNorm2d(out_dim), nn.ReLU()]


def conv_stem(in_chans: int, dim: int) -> nn.Sequential:
    """3x3 convs (stride 2, 1, 2; 32, 32, dim channels), each with BatchNorm and ReLU: stride 4."""
    return nn.Sequential(*_conv_bn_relu(in_chans, 32, 2), *_conv_bn_relu(32, 32, 1), *_conv_bn_relu(32, dim, 2))


class Downsample(nn.Module):
    """3x3 stride-2 conv + BatchNorm + ReLU between stages (the official `patch_embed2..4`)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, 3, 2, 1)
        self.norm = nn.BatchNorm2d(out_dim)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


@fx_leaf  # torch.fx: resized only for another grid size
def resize_pos_embed(pos_embed: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, g*g, C) table -> (1, H*W, C): bilinear, align_corners=False, as every official forward."""
    g = int(pos_embed.shape[1] ** 0.5)
    if (g, g) == tuple(size):
        return pos_embed
    grid = pos_embed.reshape(1, g, g, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)
    return grid.flatten(2).transpose(1, 2)


class SoftBlock(nn.Module):
    """Post-norm SOFT block: LN(x + Drop(SoftAttn(x))), LN(y + Drop(FFN(y))); FFN 4x, tanh-GELU.

    The dropouts take the block's stochastic-depth rate as an element-wise dropout
    probability, as the official code does; LayerNorm eps is PyTorch's default 1e-5.
    """

    def __init__(self, dim: int, num_heads: int, ratio: int, conv_size: int, drop: float = 0.0, **attn_kwargs: Any):
        super().__init__()
        self.attn = SoftAttention(dim, num_heads, ratio, conv_size, **attn_kwargs)
        self.drop1 = nn.Dropout(drop)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim, act_layer=partial(nn.GELU, approximate="tanh"))
        self.drop2 = nn.Dropout(drop)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = self.norm1(x + self.drop1(self.attn(x, size)))
        return self.norm2(x + self.drop2(self.mlp(x)))


class Attention(nn.Module):
    """PVT softmax attention (sr_ratio 1): q and kv projections, all tokens attend to all."""

    fused_attn: torch.jit.Final[bool]

    def __init__(self, dim: int, num_heads: int, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.fused_attn = use_fused_attn()
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q = self.q(x).reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(x).reshape(b, n, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0)
        else:
            attn = self.attn_drop((q @ k.transpose(-2, -1) * self.scale).softmax(-1))
            x = attn @ v
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))


class Block(nn.Module):
    """Pre-norm transformer block of the last stage (LayerNorm eps 1e-6, exact GELU)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SoftStage(nn.Module):
    """Downsample, add the resized positional table, SOFT blocks; NCHW in and out."""

    def __init__(self, in_dim: int, dim: int, depth: int, num_heads: int, ratio: int, conv_size: int,
                 pos_grid: int, downsample: bool, drop_rates: Sequence[float], pos_drop: float = 0.0,
                 **attn_kwargs: Any):
        super().__init__()
        self.grad_checkpointing = False
        self.ratio = ratio
        self.downsample = Downsample(in_dim, dim) if downsample else nn.Identity()
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_grid * pos_grid, dim))
        self.pos_drop = nn.Dropout(pos_drop)
        self.blocks = nn.ModuleList([
            SoftBlock(dim, num_heads, ratio, conv_size, drop_rates[i], **attn_kwargs) for i in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        b, c, h, w = x.shape
        x = self.pos_drop(x.flatten(2).transpose(1, 2) + resize_pos_embed(self.pos_embed, (h, w)))
        for blk in self.blocks:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x, (h, w), use_reentrant=False)
            else:
                x = blk(x, (h, w))
        return x.transpose(1, 2).reshape(b, c, h, w)


class ClsStage(nn.Module):
    """Downsample, prepend the cls token, add the resized positional table, softmax blocks; NCHW -> tokens."""

    def __init__(self, in_dim: int, dim: int, depth: int, num_heads: int, mlp_ratio: float, pos_grid: int,
                 drop_rates: Sequence[float], drop: float = 0.0, attn_drop: float = 0.0):
        super().__init__()
        self.grad_checkpointing = False
        self.downsample = Downsample(in_dim, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + pos_grid * pos_grid, dim))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.Sequential(*[
            Block(dim, num_heads, mlp_ratio, drop, attn_drop, drop_rates[i]) for i in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        b, _, h, w = x.shape
        pos = torch.cat([self.pos_embed[:, :1], resize_pos_embed(self.pos_embed[:, 1:], (h, w))], dim=1)
        x = torch.cat([self.cls_token.expand(b, -1, -1), x.flatten(2).transpose(1, 2)], dim=1) + pos
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


def _tokens_to_map(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 1 + H*W, C) with a leading cls token -> (B, C, H, W)."""
    return x[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, *size)


@handles_empty_batch
class SOFT(StagedModelApi, nn.Module):
    """SOFT / SOFT-Norm: conv stem, three SOFT stages, a softmax stage with cls token, linear head.

    Args:
        in_chans: input channels.
        num_classes: classifier outputs (0: no classifier).
        global_pool: 'token' (the cls token, official), 'avg' / 'max' / 'avgmax' over the
            spatial tokens, or '' (all tokens, unpooled).
        embed_dims, depths, num_heads: per stage (heads of dim // num_heads channels).
        sr_ratios: landmark pooling of the three SOFT stages (official 8, 4, 2).
        conv_sizes: per-head depthwise-conv size on V of the SOFT stages (official 9, 5, 3).
        mlp_ratio: FFN expansion of the last stage (SOFT stages always use 4).
        pos_grids: side of each stage's fixed positional table (official 56, 28, 14, 7).
        normalized: SOFT-Norm (symmetric normalisation, halving Newton start).
        newton_iters: Newton-Raphson steps (official 20).
        newton_init: original SOFT's Newton start: 'regularized' (current official code) or
            'halving' (the official code until 2022-07-05, i.e. when the 2021 Tiny checkpoints
            were trained; plain autograd through the steps).
        per_sample_step: the halving start's maxima per image instead of over the batch
            (SOFT-Norm, or newton_init='halving'); off = official.
        kernel_method: 'fused' (default, `zoo.kernels.gaussian_attention`) or 'torch'
            (the official materialised |q|^2 + |l|^2 - 2 q.l path).
        drop_rate: dropout after the positional tables and in the last stage's attention
            output and MLP (official `drop_rate`).
        attn_drop_rate: attention dropout of the last stage.
        drop_path_rate: stochastic depth, linear over all blocks: DropPath in the last stage,
            element-wise dropout in SOFT blocks (as official).
    """

    stage_openers = "downsample|pos_embed|cls_token"
    final_patterns = (r"^norm",)

    def __init__(
            self,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "token",
            embed_dims: Sequence[int] = (64, 128, 320, 512),
            depths: Sequence[int] = (1, 2, 3, 2),
            num_heads: Sequence[int] = (2, 4, 10, 16),
            sr_ratios: Sequence[int] = (8, 4, 2),
            conv_sizes: Sequence[int] = (9, 5, 3),
            mlp_ratio: float = 4.0,
            pos_grids: Sequence[int] = (56, 28, 14, 7),
            normalized: bool = False,
            newton_iters: int = 20,
            newton_init: str = "regularized",
            per_sample_step: bool = False,
            kernel_method: str = "fused",
            drop_rate: float = 0.0,
            attn_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
    ):
        super().__init__()
        check_model_args(type(self).__name__, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                         attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate)
        num_soft = len(depths) - 1
        if not (len(embed_dims) == len(num_heads) == len(pos_grids) == num_soft + 1
                and len(sr_ratios) == len(conv_sizes) == num_soft):
            raise ValueError(
                "embed_dims, depths, num_heads and pos_grids need one entry per stage, sr_ratios and conv_sizes "
                f"one per SOFT stage (all but the last); got {len(embed_dims)}, {len(depths)}, {len(num_heads)}, "
                f"{len(pos_grids)}, {len(sr_ratios)}, {len(conv_sizes)}")
        if global_pool not in GLOBAL_POOLS:
            raise ValueError(f"global_pool must be one of {GLOBAL_POOLS}, got {global_pool!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.global_pool = global_pool
        self.attn_pool = None  # GGeM hook (zoo.models.apply_ggem): pools the patch tokens when set
        self.num_features = self.head_hidden_size = embed_dims[-1]
        self.sr_ratios = tuple(sr_ratios)
        self.normalized = normalized

        self.stem = conv_stem(in_chans, embed_dims[0])
        total = sum(depths)
        all_rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]  # torch.linspace(0, rate, total)
        rates = [all_rates[sum(depths[:i]):sum(depths[:i + 1])] for i in range(len(depths))]
        attn_kwargs = dict(newton_iters=newton_iters, normalized=normalized, newton_init=newton_init,
                           per_sample_step=per_sample_step, kernel_method=kernel_method)
        stages: list[nn.Module] = []
        self.feature_info = []
        for i in range(num_soft):
            stages.append(SoftStage(
                embed_dims[i - 1] if i else embed_dims[0], embed_dims[i], depths[i], num_heads[i], sr_ratios[i],
                conv_sizes[i], pos_grids[i], downsample=i > 0, drop_rates=rates[i], pos_drop=drop_rate,
                **attn_kwargs))
            self.feature_info.append(dict(num_chs=embed_dims[i], reduction=4 * 2 ** i, module=f"stages.{i}"))
        stages.append(ClsStage(
            embed_dims[-2], embed_dims[-1], depths[-1], num_heads[-1], mlp_ratio, pos_grids[-1], rates[-1],
            drop_rate, attn_drop_rate))
        self.feature_info.append(dict(num_chs=embed_dims[-1], reduction=4 * 2 ** num_soft, module=f"stages.{num_soft}"))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(embed_dims[-1], eps=1e-6)
        self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()

        if not self.norm.weight.is_meta:  # on the meta device (shapes only) initialising is wasted time
            for stage in self.stages:
                trunc_normal_(stage.pos_embed, std=0.02)
            trunc_normal_(self.stages[-1].cls_token, std=0.02)
            self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # Official init: trunc_normal(0.02) Linear weights, zero biases; convs and norms PyTorch defaults.
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        # Official: only the cls token (the positional tables are decayed); 1-D params are
        # exempted by timm's optimizer factory.
        return {f"stages.{len(self.stages) - 1}.cls_token"} if isinstance(self.stages[-1], ClsStage) else set()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    @keeps_device_dtype
    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            if global_pool not in GLOBAL_POOLS:
                raise ValueError(f"global_pool must be one of {GLOBAL_POOLS}, got {global_pool!r}")
            self.global_pool = global_pool
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def min_input_size(self) -> tuple[int, int]:
        """The smallest (H, W) every SOFT stage's landmark pooling can take (29 x 29 for 8, 4, 2)."""
        side = next(s for s in range(1, 1 << 16) if all(t >= r for t, r in zip(self._token_sides(s), self.sr_ratios)))
        return side, side

    def _token_sides(self, side: int) -> list[int]:
        sides = [math.ceil(math.ceil(side / 2) / 2)]  # the stem's two stride-2 convs
        for _ in range(len(self.stages) - 1):
            sides.append(math.ceil(sides[-1] / 2))
        return sides

    def _check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_scripting():
            return
        if is_fx_proxy(x):  # torch.fx symbolic tracing: nothing to check (zoo.layers.checks)
            return
        name = model_name(self)
        check_image_input(x, self.in_chans, name)
        h, w = x.shape[-2:]
        for i, (th, tw, r) in enumerate(zip(self._token_sides(h), self._token_sides(w), self.sr_ratios)):
            if th < r or tw < r:
                mh, mw = self.min_input_size()
                raise ValueError(
                    f"{name} takes inputs of at least {mh}x{mw}: stage {i + 1} pools {r}x{r} tokens into each "
                    f"landmark and a {h}x{w} input leaves it {th}x{tw} tokens; got {h}x{w}")

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs at strides 4, 8, 16, 32 (NCHW; the last without its cls token).

        Args:
            x: image batch (B, in_chans, H, W), H and W at least `min_input_size()`.
            indices: take the last n stages if int, all if None, these stages if a sequence.
            norm: pass the last stage's output through the final LayerNorm (the norm the
                classifier uses; the other stages have none).
            stop_early: stop after the last stage taken.
            output_fmt: only 'NCHW'.
            intermediates_only: return only the intermediates.
        Returns:
            the intermediates, or (final tokens as `forward_features` gives them, intermediates).
        """
        self._check_input(x)
        last_map = None
        if isinstance(self.stages[-1], ClsStage):  # SOFT's own part: the last stage gives tokens behind a cls token
            size = (self._token_sides(x.shape[-2])[-1], self._token_sides(x.shape[-1])[-1])  # its token grid
            last_map = partial(_tokens_to_map, size=size)
        return staged_intermediates(self, x, indices, norm, stop_early, output_fmt, intermediates_only,
                                    final_norm=self.norm, last_map=last_map)

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
        if prune_head or pruned_end:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normed tokens (B, 1 + H*W, C) of the last stage, cls token first."""
        self._check_input(x)
        return self.norm(self.stages(self.stem(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.attn_pool is not None:
            x = self.attn_pool(x[:, 1:])  # the patch tokens, not the class token
        elif self.global_pool == "token":
            x = x[:, 0]
        elif self.global_pool == "avg":
            x = x[:, 1:].mean(1)
        elif self.global_pool == "max":
            x = x[:, 1:].amax(1)
        elif self.global_pool == "avgmax":
            x = 0.5 * (x[:, 1:].mean(1) + x[:, 1:].amax(1))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# ---------------------------------------------------------------------------------------------
# Checkpoints

def _block_rule(match: re.Match) -> str:
    return f"stages.{int(match.group(1)) - 1}.blocks.{match.group(2)}."


def _downsample_rule(match: re.Match) -> str:
    return f"stages.{int(match.group(1)) - 1}.downsample.{'conv' if match.group(2) == '0' else 'norm'}."


# Official key (models/softmax_free_vision_transformer.py state dict) -> ours, applied in order.
OFFICIAL_KEY_RULES = [
    (r"^patch_embed1\.proj\.", "stem."),
    (r"^patch_embed([234])\.proj\.([01])\.", _downsample_rule),
    (r"^pos_embed([1-4])$", lambda m: f"stages.{int(m.group(1)) - 1}.pos_embed"),
    (r"^cls_token$", "stages.3.cls_token"),
    (r"^block([1-4])\.(\d+)\.", _block_rule),
    (r"\.att\.mha\.W_q\.", ".attn.q."),
    (r"\.att\.mha\.W_v\.", ".attn.v."),
    (r"\.att\.mha\.attn\.Qlandmark_op\.", ".attn.landmark."),
    (r"\.att\.mha\.attn\.Qnorm_act\.0\.", ".attn.landmark_norm."),
    (r"\.att\.mha\.attn\.conv\.", ".attn.dwconv."),
    (r"\.att\.mha\.ff\.", ".attn.proj."),
    (r"\.att\.norm([12])\.", r".norm\1."),
    (r"\.att\.ff([12])\.", r".mlp.fc\1."),
]

# (embed_dims, depths) of every registered size, to name the one a checkpoint was trained as.
_SIZES = dict(
    tiny=dict(embed_dims=(64, 128, 320, 512), depths=(1, 2, 3, 2), num_heads=(2, 4, 10, 16)),
    small=dict(embed_dims=(64, 128, 320, 512), depths=(1, 3, 20, 4), num_heads=(2, 4, 10, 16)),
    small_24m=dict(embed_dims=(64, 128, 320, 512), depths=(1, 3, 7, 4), num_heads=(2, 4, 10, 16)),
    medium=dict(embed_dims=(64, 128, 288, 512), depths=(1, 3, 29, 5), num_heads=(2, 4, 9, 16)),
    large=dict(embed_dims=(64, 128, 320, 512), depths=(1, 3, 40, 5), num_heads=(2, 4, 10, 16)),
    huge=dict(embed_dims=(64, 128, 352, 512), depths=(1, 5, 49, 5), num_heads=(2, 4, 11, 16)),
)


def _depths_of(state_dict: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """Blocks per stage of a state dict in our layout."""
    found: dict[int, set[int]] = {}
    for key in state_dict:
        match = re.match(r"^stages\.(\d+)\.blocks\.(\d+)\.", key)
        if match:
            found.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    return tuple(max(found[s]) + 1 if s in found else 0 for s in range(max(found, default=-1) + 1))


def _check_depths(state_dict: dict[str, torch.Tensor], model: SOFT) -> None:
    have = _depths_of(state_dict)
    want = tuple(len(stage.blocks) for stage in model.stages)
    if have == want or not have:
        return
    pos_embeds = sorted(k for k in state_dict if re.match(r"^stages\.\d+\.pos_embed$", k))
    width = tuple(state_dict[k].shape[-1] for k in pos_embeds)
    prefix = "soft_norm_" if model.normalized else "soft_"
    names = [prefix + size for size, cfg in _SIZES.items() if cfg["depths"] == have and cfg["embed_dims"] == width]
    hint = f"; that is {names[0]}: create that model instead" if names else ""
    raise CheckpointMismatchError(
        f"checkpoint has {list(have)} blocks per stage, {model_name(model)} has {list(want)}{hint}")


def checkpoint_filter_fn(state_dict: dict[str, Any], model: SOFT) -> dict[str, torch.Tensor]:
    """Official SOFT / SOFT-Norm checkpoint -> this model.

    Accepts the timm-0.3.2 training checkpoint (the entry of the registered official
    file first: `state_dict_ema`, as the official evaluation), `module.` prefixes and
    already-converted state dicts. A checkpoint of another depth (e.g. the
    README's 24M Small given to `soft_norm_small`) fails naming the model it fits.
    """
    state_dict = strip_prefixes(unwrap_state_dict(state_dict, model), ("module.", "backbone."))
    if "stem.0.weight" not in state_dict:  # official layout
        state_dict = rename_keys(state_dict, OFFICIAL_KEY_RULES)
    _check_depths(state_dict, model)
    expected = model.state_dict()
    # A pruned / head-less model (features_only, num_classes=0) ignores the parts it lacks.
    n_stages = len(model.stages)

    def pruned_away(key: str) -> bool:
        stage = re.match(r"^stages\.(\d+)\.", key)
        return key.startswith(("head.", "norm.")) or (stage is not None and int(stage.group(1)) >= n_stages)

    state_dict = {k: v for k, v in state_dict.items() if k in expected or not pruned_away(k)}
    return check_state_dict(state_dict, model, classifier="head")


@supports_ggem  # global_pool="ggem" (zoo.layers.ggem)
def _create_soft(variant: str, pretrained: bool = False, **kwargs: Any) -> SOFT:
    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3))
    if kwargs.get("features_only"):
        kwargs["num_classes"] = 0
    return build_zoo_model(
        SOFT, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **kwargs,
    )


# Google Drive ids of the official checkpoints (README of fudan-zvg/SOFT).
_DRIVE = dict(
    SOFT_Tiny="1S04DCotIOkP0DaBb8WStQ513z82qT9de",
    SOFT_Tiny_cuda="1inDKh3Wz_2KQgGH_2ywU5H_gLKZpIz_u",
    SOFT_Tiny_norm="1Isy5b9v_4pyIXDqhKPNRq3WKH0etDlfl",
    SOFT_Small_norm="1OBjn7FzVdNP1Urqxq7X0yDykyPhxAAW1",
    SOFT_Medium_norm="1K2C6daaJn3jwurWh38uvV7rexirWjuzh",
    SOFT_Large_norm="1aRYuF_gbBGyiXUDKEcpHJmM04SdvTUdP",
)


def _drive_link(checkpoint: str) -> str:
    return f"https://drive.usercontent.google.com/download?id={_DRIVE[checkpoint]}&export=download&confirm=t"


def _drive_page(checkpoint: str) -> str:
    return f"https://drive.google.com/file/d/{_DRIVE[checkpoint]}/view?usp=sharing"


def _cfg(checkpoint: str | None = None, normalized: bool = False, **kwargs: Any) -> dict[str, Any]:
    source: dict[str, Any] = {}
    notes: tuple[str, ...] = ("no official weights were released for this variant",)
    if checkpoint:
        source = dict(url=_drive_link(checkpoint))
        notes = (_drive_page(checkpoint), f"official {checkpoint}.pth (EMA weights, state_dict_ema)")
    return {
        **source,
        "num_classes": 1000, "input_size": (3, 224, 224), "min_input_size": (3, 29, 29), "pool_size": None,
        "crop_pct": 0.9, "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.0", "classifier": "head",
        "license": "mit", "origin_url": "https://github.com/fudan-zvg/SOFT",
        "paper_ids": "arXiv:2207.03341" if normalized else "arXiv:2110.11945",
        "paper_name": "Softmax-free Linear Transformers" if normalized
        else "SOFT: Softmax-free Transformer with Linear Complexity",
        "notes": notes,
        **kwargs,
    }


# Released variants: tag -> the Drive file's README name.
_RELEASED = {
    "soft_tiny.in1k": "SOFT_Tiny",
    "soft_tiny.in1k_cuda": "SOFT_Tiny_cuda",
    "soft_norm_tiny.in1k": "SOFT_Tiny_norm",
    # The released Small-Norm file most likely has the README's 24M depths (model_cards/soft.md, Variants);
    # both names point at it and the filter says which one it fits.
    "soft_norm_small.in1k": "SOFT_Small_norm",
    "soft_norm_small_24m.in1k": "SOFT_Small_norm",
    "soft_norm_medium.in1k": "SOFT_Medium_norm",
    "soft_norm_large.in1k": "SOFT_Large_norm",
}

# One file, two architectures: it fits at most one of them (the checkpoint filter says which).
_SMALL_NORM_UNCONFIRMED = unconfirmed_weights(
    "contents unconfirmed: SOFT_Small_norm.pth is the README's 24M model, which the code's soft_small depths "
    "(38.9M) cannot be; soft_norm_small_24m's depths are inferred from the README's size")


def _released_cfg(tag: str, checkpoint: str) -> dict[str, Any]:
    cfg = _cfg(checkpoint, tag.startswith("soft_norm_"))
    if checkpoint == "SOFT_Small_norm":
        cfg["notes"] += (_SMALL_NORM_UNCONFIRMED,)
    return cfg


default_cfgs = generate_default_cfgs({
    **{tag: _released_cfg(tag, checkpoint) for tag, checkpoint in _RELEASED.items()},
    "soft_small": _cfg(),
    "soft_small_24m": _cfg(),
    "soft_medium": _cfg(),
    "soft_large": _cfg(),
    "soft_huge": _cfg(),
    "soft_norm_huge": _cfg(None, True),
})

# Google Drive serves public files to a program through the direct link, but it answers with a
# web page when a file's quota is spent (zoo.pretrained then says to download it by hand from the
# view page). The official evaluation loads the EMA weights (`state_dict_ema`, main.py).
register_official_files({
    tag: OfficialFile(f"{checkpoint}.pth", _drive_link(checkpoint), weights_key="state_dict_ema",
                      page=_drive_page(checkpoint))
    for tag, checkpoint in _RELEASED.items()
})


def _soft(size: str, pretrained: bool, normalized: bool = False, **kwargs: Any) -> SOFT:
    name = f"soft_norm_{size}" if normalized else f"soft_{size}"
    return _create_soft(name, pretrained, **{**_SIZES[size], "normalized": normalized, **kwargs})


@register_model
def soft_tiny(pretrained: bool = False, **kwargs: Any) -> SOFT:
    return _soft("tiny", pretrained, **kwargs)


@register_model
def soft_small(pretrained: bool = False, **kwargs: Any) -> SOFT:
    """The code's soft_small (depths 1, 3, 20, 4; 38.9M), not the README's 24M model."""
    return _soft("small", pretrained, **kwargs)


@register_model
def soft_small_24m(pretrained: bool = False, **kwargs: Any) -> SOFT:
    """The README's 24M SOFT-Small: depths 1, 3, 7, 4 (inferred from its params / FLOPs)."""
    return _soft("small_24m", pretrained, **kwargs)


@register_model
def soft_medium(pretrained: bool = False, **kwargs: Any) -> SOFT:
    return _soft("medium", pretrained, **kwargs)


@register_model
def soft_large(pretrained: bool = False, **kwargs: Any) -> SOFT:
    return _soft("large", pretrained, **kwargs)


@register_model
def soft_huge(pretrained: bool = False, **kwargs: Any) -> SOFT:
    return _soft("huge", pretrained, **kwargs)


@register_model
def soft_norm_tiny(pretrained: bool = False, **kwargs: Any) -> SOFT:
    return _soft("tiny", pretrained, normalized=True, **kwargs)


@register_model
def soft_norm_small(pretrained: bool = False, **kwargs: Any) -> SOFT:
    """The code's soft_norm_small (depths 1, 3, 20, 4; 38.9M)."""
    return _soft("small", pretrained, normalized=True, **kwargs)


@register_model
def soft_norm_small_24m(pretrained: bool = False, **kwargs: Any) -> SOFT:
    """The README's 24M SOFT-Small-Norm: depths 1, 3, 7, 4."""
    return _soft("small_24m", pretrained, normalized=True, **kwargs)


@register_model
def soft_norm_medium(pretrained: bool = False, **kwargs: Any) -> SOFT:
    return _soft("medium", pretrained, normalized=True, **kwargs)


@register_model
def soft_norm_large(pretrained: bool = False, **kwargs: Any) -> SOFT:
    return _soft("large", pretrained, normalized=True, **kwargs)


@register_model
def soft_norm_huge(pretrained: bool = False, **kwargs: Any) -> SOFT:
    return _soft("huge", pretrained, normalized=True, **kwargs)
