"""Inception Transformer (iFormer): high/low-frequency inception token mixer.

*Inception Transformer*, Si, Yu, Zhou, Zhou, Wang, Yan, NeurIPS 2022,
arXiv:2205.12956. Official code: https://github.com/sail-sg/iFormer
(`models/inception_transformer.py`, commit 725d8e7), Apache-2.0.

Registered as `inception_transformer_{small,base,large}[_384]`: timm's own
`iformer_*` is an unrelated model (iFormer, ICLR 2025), never shadowed.

Each block splits its (layer-normed) channels: the first `high_dim` go to a
high-frequency mixer (a 1x1 + depthwise 3x3 conv branch and a 3x3 max-pool +
1x1 branch), the last `low_dim = attention_head * head_dim` to softmax
attention (on a 2x2 average-pooled grid, then nearest-upsampled, in stages 1-2).
`attention_head` grows with depth (the "frequency ramp"). The two outputs are
concatenated, fused by a residual depthwise 3x3 and projected back by a 1x1.
Blocks run channels-last (B, H, W, C), as in the official code.

Differences from the official code, none of which changes what it computes
where it runs:
- timm layout: `stem`, then `stages.i` = (`downsample`, `pos_embed`,
  `blocks`), with the classifier under `head.fc` (`checkpoint_filter_fn`
  maps the official keys).
- Attention uses `F.scaled_dot_product_attention`.
- Non-square inputs work: the attention output is laid out on the pooled
  (H, W) grid instead of (sqrt N, sqrt N) (identical for square inputs), and
  a stage's position embedding is resized whenever its grid differs from the
  stage's (official: whenever the *areas* differ; identical for square inputs).
  Stage-1/2 token grids must be even (2x2 pooling then 2x upsampling must
  restore them); other sizes are rejected with a ValueError.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import ClassifierHead, DropPath, LayerScale, Mlp, to_2tuple, trunc_normal_, use_fused_attn
from timm.models import checkpoint_seq, generate_default_cfgs, register_model
from torch import nn

from ..layers.checks import check_image_input, check_model_args, handles_empty_batch, model_name
from ..layers.fx import fx_leaf, is_fx_proxy
from ..pretrained import build_zoo_model
from ._checkpoint import check_state_dict, rename_keys, strip_prefixes, unwrap_state_dict
from ._features import prune_stages, staged_intermediates
from ._ggem_surgery import supports_ggem
from ._staged import StagedModelApi

__all__ = ["InceptionTransformer"]

NORM_EPS = 1e-6  # every LayerNorm of the official model (BatchNorm keeps 1e-5)


class FirstPatchEmbed(nn.Module):
    """Stem: two 3x3 stride-2 convs with BatchNorm, GELU between; NCHW in, NHWC out."""

    def __init__(self, in_chans: int, dim: int):
        super().__init__()
        self.proj1 = nn.Conv2d(in_chans, dim // 2, 3, 2, 1)
        self.norm1 = nn.BatchNorm2d(dim // 2)
        self.act = nn.GELU()
        self.proj2 = nn.Conv2d(dim // 2, dim, 3, 2, 1)
        self.norm2 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.proj1(x)))
        return self.norm2(self.proj2(x)).permute(0, 2, 3, 1)


class PatchEmbed(nn.Module):
    """3x3 stride-2 conv + BatchNorm between stages; NHWC in and out."""

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_dim, dim, 3, 2, 1)
        self.norm = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)


class HighMixer(nn.Module):
    """High-frequency mixer on NCHW: [1x1 conv -> depthwise 3x3 -> GELU] on the first half
    of the channels, [3x3 max-pool -> 1x1 conv -> GELU] on the second; each doubles its width."""

    def __init__(self, dim: int):
        super().__init__()
        self.cnn_in = dim // 2
        pool_in = dim // 2
        self.conv1 = nn.Conv2d(self.cnn_in, 2 * self.cnn_in, 1, bias=False)
        self.proj1 = nn.Conv2d(2 * self.cnn_in, 2 * self.cnn_in, 3, 1, 1, groups=2 * self.cnn_in, bias=False)
        self.act1 = nn.GELU()
        self.pool = nn.MaxPool2d(3, 1, 1)
        self.proj2 = nn.Conv2d(pool_in, 2 * pool_in, 1)
        self.act2 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cx = self.act1(self.proj1(self.conv1(x[:, :self.cnn_in])))
        px = self.act2(self.proj2(self.pool(x[:, self.cnn_in:])))
        return torch.cat((cx, px), dim=1)


class LowMixer(nn.Module):
    """Low-frequency mixer on NCHW: (optional 2x2 avg-pool) -> multi-head softmax attention
    over the grid's tokens, no output projection -> (nearest upsample back)."""

    fused_attn: torch.jit.Final[bool]

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0, pool_size: int = 2):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.fused_attn = use_fused_attn()
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.pool_size = pool_size
        if pool_size > 1:
            self.pool = nn.AvgPool2d(pool_size, pool_size, count_include_pad=False)
            self.upsample = nn.Upsample(scale_factor=pool_size, mode="nearest")
        else:
            self.pool, self.upsample = nn.Identity(), nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        B, C, H, W = x.shape
        # Tokens in row-major order; channels of each token split into (head, head_dim).
        qkv = self.qkv(x.flatten(2).transpose(1, 2))
        q, k, v = qkv.reshape(B, H * W, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        drop = self.attn_drop if self.training else 0.0
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        else:
            attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
            x = F.dropout(attn, drop) @ v
        # (B, heads, N, head_dim) -> channels (head, head_dim) on the pooled grid.
        x = x.transpose(2, 3).reshape(B, C, H, W)
        return self.upsample(x)


class InceptionMixer(nn.Module):
    """The inception token mixer on NHWC: high mixer on the first `high_dim` channels,
    attention on the last `low_dim`, concat, residual depthwise 3x3 fuse, 1x1 projection."""

    def __init__(
            self,
            dim: int,
            num_heads: int,
            attention_head: int,
            qkv_bias: bool = True,
            attn_drop: float = 0.0,
            pool_size: int = 2,
    ):
        super().__init__()
        head_dim = dim // num_heads
        self.low_dim = attention_head * head_dim
        self.high_dim = dim - self.low_dim
        if not (0 < attention_head < num_heads) or self.high_dim % 2:
            raise ValueError(
                f"the inception mixer of width {dim} with {num_heads} heads of {head_dim} needs "
                f"0 < attention_head < num_heads and an even high-frequency width; got attention_head="
                f"{attention_head} (high-frequency width {self.high_dim})")
        self.high_mixer = HighMixer(self.high_dim)
        self.low_mixer = LowMixer(self.low_dim, attention_head, qkv_bias, attn_drop, pool_size)
        fused = 2 * self.high_dim + self.low_dim
        self.conv_fuse = nn.Conv2d(fused, fused, 3, 1, 1, groups=fused, bias=False)
        self.proj = nn.Conv2d(fused, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)
        x = torch.cat((self.high_mixer(x[:, :self.high_dim]), self.low_mixer(x[:, self.high_dim:])), dim=1)
        x = x + self.conv_fuse(x)
        return self.proj(x).permute(0, 2, 3, 1)


class InceptionBlock(nn.Module):
    """Pre-norm mixer and MLP branches (NHWC), optional layer scale, drop path."""

    def __init__(
            self,
            dim: int,
            num_heads: int,
            attention_head: int,
            pool_size: int,
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            proj_drop: float = 0.0,
            attn_drop: float = 0.0,
            layer_scale_init_value: float | None = None,
            drop_path: float = 0.0,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.attn = InceptionMixer(dim, num_heads, attention_head, qkv_bias, attn_drop, pool_size)
        self.ls1 = LayerScale(dim, layer_scale_init_value) if layer_scale_init_value else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=proj_drop)
        self.ls2 = LayerScale(dim, layer_scale_init_value) if layer_scale_init_value else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class InceptionStage(nn.Module):
    """(Downsample,) add the stage's absolute position embedding, run the blocks; NHWC."""

    def __init__(
            self,
            in_dim: int | None,
            dim: int,
            grid: tuple[int, int],
            depth: int,
            num_heads: int,
            attention_heads: Sequence[int],
            pool_size: int,
            mlp_ratio: float,
            qkv_bias: bool,
            proj_drop: float,
            attn_drop: float,
            layer_scale_init_value: float | None,
            drop_path_rates: Sequence[float],
    ):
        super().__init__()
        self.grad_checkpointing = False
        self.downsample = PatchEmbed(in_dim, dim) if in_dim else nn.Identity()
        self.pos_embed = nn.Parameter(torch.zeros(1, *grid, dim))
        self.blocks = nn.Sequential(*[
            InceptionBlock(dim, num_heads, attention_heads[i], pool_size, mlp_ratio, qkv_bias, proj_drop, attn_drop,
                           layer_scale_init_value, drop_path_rates[i])
            for i in range(depth)])

    @fx_leaf  # torch.fx: resized only for another grid size
    def _pos_embed(self, H: int, W: int) -> torch.Tensor:
        if self.pos_embed.shape[1:3] == (H, W):
            return self.pos_embed
        # Official: bilinear, align_corners=False, in NCHW.
        return F.interpolate(self.pos_embed.permute(0, 3, 1, 2), size=(H, W), mode="bilinear").permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        x = x + self._pos_embed(x.shape[1], x.shape[2])
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


@handles_empty_batch
class InceptionTransformer(StagedModelApi, nn.Module):
    """Inception Transformer: conv stem, four stages of inception-mixer blocks, LayerNorm,
    global pooling and a linear classifier.

    Args:
        img_size: the size the position embeddings are learnt for (int or (H, W)); stage i's
            grid is img_size // 4 // 2**i. Other input sizes resize them bilinearly.
        in_chans: input channels.
        num_classes: classifier outputs (0: no classifier).
        global_pool: 'avg' (official), 'max', ... or '' for the unpooled (B, H, W, C) map.
        embed_dims, depths, num_heads: per stage (num_heads sets head_dim = dim // heads).
        attention_heads: per block (sum(depths) entries): how many heads of the block's
            channels go to the low-frequency (attention) mixer; the rest go to the
            high-frequency mixer.
        pool_sizes: per stage, the low mixer's avg-pool / upsample factor (official 2, 2, 1, 1).
        layer_scale_init_values: per stage, None for no layer scale (official None, None,
            1e-6, 1e-6).
        mlp_ratio, qkv_bias: as in the official model (4, True).
        drop_rate: dropout in the MLPs (the official model's meaning of `drop_rate`).
        head_drop_rate: dropout before the classifier (not in the official model).
        attn_drop_rate: attention dropout.
        drop_path_rate: stochastic depth, linear over all blocks.
    """

    # no_weight_decay stays empty: the official model names {"pos_embed", "cls_token", "dist_token"}, which
    # match no parameter (they are pos_embed1..4), so the official recipe decayed the position embeddings.
    stage_openers = "downsample|pos_embed"
    final_patterns = (r"^norm",)

    output_fmt = "NHWC"  # forward_features' layout, declared as timm's NHWC models do

    def __init__(
            self,
            img_size: int | tuple[int, int] = 224,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            embed_dims: Sequence[int] = (96, 192, 320, 384),
            depths: Sequence[int] = (3, 3, 9, 3),
            num_heads: Sequence[int] = (3, 6, 10, 12),
            attention_heads: Sequence[int] = (1,) * 3 + (3,) * 3 + (7,) * 4 + (9,) * 5 + (11,) * 3,
            pool_sizes: Sequence[int] = (2, 2, 1, 1),
            layer_scale_init_values: Sequence[float | None] = (None, None, 1e-6, 1e-6),
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            drop_rate: float = 0.0,
            head_drop_rate: float = 0.0,
            attn_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
    ):
        super().__init__()
        check_model_args(type(self).__name__, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                         head_drop_rate=head_drop_rate, attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate)
        num_stages = len(depths)
        if not (len(embed_dims) == len(num_heads) == len(pool_sizes) == len(layer_scale_init_values) == num_stages):
            raise ValueError(
                "embed_dims, depths, num_heads, pool_sizes and layer_scale_init_values need one entry per stage; "
                f"got {len(embed_dims)}, {num_stages}, {len(num_heads)}, {len(pool_sizes)}, "
                f"{len(layer_scale_init_values)}")
        total = sum(depths)
        if len(attention_heads) != total:
            raise ValueError(f"attention_heads needs one entry per block ({total}), got {len(attention_heads)}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = self.head_hidden_size = embed_dims[-1]
        self.pool_sizes = tuple(pool_sizes)

        self.stem = FirstPatchEmbed(in_chans, embed_dims[0])
        # Stochastic depth grows linearly over all blocks (float math: works on the meta device).
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        grid = tuple(s // 4 for s in to_2tuple(img_size))
        stages, self.feature_info = [], []
        start = 0
        for i in range(num_stages):
            if i:
                grid = (grid[0] // 2, grid[1] // 2)
            end = start + depths[i]
            stages.append(InceptionStage(
                embed_dims[i - 1] if i else None, embed_dims[i], grid, depths[i], num_heads[i],
                attention_heads[start:end], pool_sizes[i], mlp_ratio, qkv_bias, drop_rate, attn_drop_rate,
                layer_scale_init_values[i], rates[start:end]))
            start = end
            self.feature_info.append(dict(num_chs=embed_dims[i], reduction=4 * 2 ** i, module=f"stages.{i}"))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(embed_dims[-1], eps=NORM_EPS)
        self.head = ClassifierHead(
            self.num_features, num_classes, pool_type=global_pool, drop_rate=head_drop_rate, input_fmt="NHWC")

        for stage in self.stages:
            trunc_normal_(stage.pos_embed, std=0.02)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # Official `_init_vit_weights` (applied with name '', so the head is not zeroed).
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def _check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_scripting():
            return
        if is_fx_proxy(x):  # torch.fx symbolic tracing: nothing to check (zoo.layers.checks)
            return
        name = model_name(self)
        check_image_input(x, self.in_chans, name)
        # Token grid of stage i: ceil(size / 4 / 2**i) (3x3 stride-2 convs with padding 1).
        h, w = x.shape[-2:]
        for i, pool in enumerate(self.pool_sizes[:len(self.stages)]):
            reduction = 4 * 2 ** i
            gh, gw = -(-h // reduction), -(-w // reduction)
            if pool > 1 and (gh % pool or gw % pool):
                raise ValueError(
                    f"{name} takes inputs whose stride-{reduction} token grid is a multiple of {pool} in both "
                    f"directions (its attention pools {pool}x{pool} and upsamples back), e.g. H and W multiples "
                    f"of 16; got {h}x{w}, a {gh}x{gw} grid")

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
            x: image batch (B, in_chans, H, W).
            indices: take the last n stages if int, all if None, these stages if a sequence.
            norm: apply the final LayerNorm to the last stage's output (when taken).
            stop_early: stop after the last stage taken.
            output_fmt: 'NCHW' or 'NHWC' (the blocks' own layout).
            intermediates_only: return only the intermediates.
        Returns the final (B, H, W, C) map, normed as `forward_features` when the last stage ran
        (stop_early before it returns the unnormed map of the last stage run), and the list.
        """
        self._check_input(x)
        return staged_intermediates(self, x, indices, norm, stop_early, output_fmt, intermediates_only,
                                    final_norm=self.norm, stage_fmt="NHWC", output_fmts=("NCHW", "NHWC"))

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
        # The head is resized in place, keeping its classes unless prune_head (InLine builds a new one).
        if pruned_end:
            self.head.reset(self.num_classes, in_features=self.num_features)
        if prune_head:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The normed last-stage map, (B, H/32, W/32, C) channels-last."""
        self._check_input(x)
        return self.norm(self.stages(self.stem(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def resample_pos_embed(pos_embed: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """A (1, h, w, C) position embedding resized to `grid` as the official forward resizes
    it at run time (bilinear, align_corners=False), so a checkpoint learnt at one size and
    a model built for another compute what the official model computes at that size."""
    if tuple(pos_embed.shape[1:3]) == tuple(grid):
        return pos_embed
    x = pos_embed if pos_embed.dtype in (torch.float32, torch.float64) else pos_embed.float()
    resized = F.interpolate(x.permute(0, 3, 1, 2), size=tuple(grid), mode="bilinear")
    return resized.permute(0, 2, 3, 1).to(pos_embed.dtype).contiguous()


# Official key (models/inception_transformer.py state dict) -> ours, applied in order.
OFFICIAL_KEY_RULES = [
    (r"^patch_embed\.", "stem."),
    (r"^patch_embed(\d)\.", lambda m: f"stages.{int(m.group(1)) - 1}.downsample."),
    (r"^pos_embed(\d)$", lambda m: f"stages.{int(m.group(1)) - 1}.pos_embed"),
    (r"^blocks(\d)\.", lambda m: f"stages.{int(m.group(1)) - 1}.blocks."),
    (r"\.layer_scale_([12])$", r".ls\1.gamma"),
    (r"^head\.(weight|bias)$", r"head.fc.\1"),
]


def checkpoint_filter_fn(state_dict: dict[str, Any], model: InceptionTransformer) -> dict[str, torch.Tensor]:
    """Official iFormer checkpoint -> this model.

    Accepts the released bare state dicts, timm train.py's `model_best.pth.tar`
    (`state_dict` wrapper), `module.` prefixes and already-converted state dicts.
    Position embeddings learnt at another resolution are resized to the model's
    grids (see `resample_pos_embed`). Keys of a pruned norm / head (features_only,
    num_classes=0) are dropped.
    """
    state_dict = strip_prefixes(unwrap_state_dict(state_dict, model), ("module.",))
    if "stem.proj1.weight" not in state_dict:  # official layout
        state_dict = rename_keys(state_dict, OFFICIAL_KEY_RULES)
    expected = model.state_dict()
    out = {}
    for key, value in state_dict.items():
        if key not in expected and (key.startswith("head.") or key.startswith("norm.")):
            continue  # the model has no such head / final norm
        if key.endswith(".pos_embed") and key in expected and value.ndim == 4:
            value = resample_pos_embed(value, expected[key].shape[1:3])
        out[key] = value
    return check_state_dict(out, model, classifier="head.fc")


@supports_ggem  # global_pool="ggem" (zoo.layers.ggem)
def _create_inception_transformer(variant: str, pretrained: bool = False, **kwargs: Any) -> InceptionTransformer:
    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3))
    return build_zoo_model(
        InceptionTransformer, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **kwargs,
    )


_URL = "https://huggingface.co/sail/dl2/resolve/main/iformer/"


def _cfg(filename: str, size: int = 224, **kwargs: Any) -> dict[str, Any]:
    return {
        "hf_hub_id": "sail/dl2", "hf_hub_filename": f"iformer/{filename}", "url": _URL + filename,
        "num_classes": 1000, "input_size": (3, size, size), "pool_size": (size // 32, size // 32),
        "crop_pct": 0.9 if size == 224 else 1.0, "interpolation": "bicubic", "fixed_input_size": True,
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.proj1", "classifier": "head.fc",
        "license": "apache-2.0", "paper_ids": "arXiv:2205.12956", "paper_name": "Inception Transformer",
        "origin_url": "https://github.com/sail-sg/iFormer",
        **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "inception_transformer_small.in1k": _cfg("iformer_small.pth"),
    "inception_transformer_base.in1k": _cfg("iformer_base.pth"),
    "inception_transformer_large.in1k": _cfg("iformer_large.pth"),
    "inception_transformer_small_384.in1k": _cfg("iformer_small_384.pth", 384),
    "inception_transformer_base_384.in1k": _cfg("iformer_base_384.pth", 384),
    "inception_transformer_large_384.in1k": _cfg("iformer_large_384.pth", 384),
})


def _heads(*runs: tuple[int, int]) -> tuple[int, ...]:
    """attention_heads per block from (value, count) runs."""
    return tuple(v for v, n in runs for _ in range(n))


# The official factories (`iformer_*` in models/inception_transformer.py); the _384 models only learn
# larger position embeddings.
_SIZES = dict(
    small=dict(depths=(3, 3, 9, 3), embed_dims=(96, 192, 320, 384), num_heads=(3, 6, 10, 12),
               attention_heads=_heads((1, 3), (3, 3), (7, 4), (9, 5), (11, 3))),
    base=dict(depths=(4, 6, 14, 6), embed_dims=(96, 192, 384, 512), num_heads=(3, 6, 12, 16),
              attention_heads=_heads((1, 4), (3, 6), (8, 7), (10, 7), (15, 6))),
    large=dict(depths=(4, 6, 18, 8), embed_dims=(96, 192, 448, 640), num_heads=(3, 6, 14, 20),
               attention_heads=_heads((1, 4), (3, 6), (10, 9), (12, 9), (19, 8))),
)


def _inception_transformer(size: str, resolution: int, pretrained: bool, **kwargs: Any) -> InceptionTransformer:
    variant = f"inception_transformer_{size}" + ("_384" if resolution == 384 else "")
    return _create_inception_transformer(variant, pretrained, **{**_SIZES[size], "img_size": resolution, **kwargs})


@register_model
def inception_transformer_small(pretrained: bool = False, **kwargs: Any) -> InceptionTransformer:
    return _inception_transformer("small", 224, pretrained, **kwargs)


@register_model
def inception_transformer_base(pretrained: bool = False, **kwargs: Any) -> InceptionTransformer:
    return _inception_transformer("base", 224, pretrained, **kwargs)


@register_model
def inception_transformer_large(pretrained: bool = False, **kwargs: Any) -> InceptionTransformer:
    return _inception_transformer("large", 224, pretrained, **kwargs)


@register_model
def inception_transformer_small_384(pretrained: bool = False, **kwargs: Any) -> InceptionTransformer:
    return _inception_transformer("small", 384, pretrained, **kwargs)


@register_model
def inception_transformer_base_384(pretrained: bool = False, **kwargs: Any) -> InceptionTransformer:
    return _inception_transformer("base", 384, pretrained, **kwargs)


@register_model
def inception_transformer_large_384(pretrained: bool = False, **kwargs: Any) -> InceptionTransformer:
    return _inception_transformer("large", 384, pretrained, **kwargs)
