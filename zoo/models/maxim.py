"""MAXIM: multi-axis gated-MLP UNet for image restoration, loading the official Flax checkpoints.

*MAXIM: Multi-Axis MLP for Image Processing*, Zhengzhong Tu, Hossein Talebi,
Han Zhang, Feng Yang, Peyman Milanfar, Alan Bovik, Yinxiao Li, CVPR 2022,
arXiv:2201.02973. Official code (JAX / Flax linen, Apache-2.0):
https://github.com/google-research/maxim (`maxim/models/maxim.py`,
`maxim/run_eval.py`).

Not a classifier: the model maps an RGB image in [0, 1] (no mean/std
normalisation) to the restored image of the same size. `forward(x)` is the
official inference protocol (`run_eval.py`): reflect-pad to even sides and then
symmetrically to multiples of 64, run the network, take the last stage's
full-resolution output, crop back to the input's size; outputs are not clipped.
`forward_features(x)` runs the network alone on sizes it takes (multiples of
`model.size_multiple`, 64 for the official configurations) and returns every
stage's outputs, coarsest scale first, as the official list does;
`forward_head` picks the final one.

Everything runs channels-last (B, H, W, C) inside, as the official NHWC code
does: LayerNorms (eps 1e-6) and channel Denses act on the last axis; 3x3 / 4x4
convolutions see a channels-last NCHW view. Numerics that differ from
PyTorch defaults and are kept as the official code computes them: GELU in its
tanh form, LayerNorm eps 1e-6, LeakyReLU slope 0.2, bilinear resizing with
antialiasing and half-pixel centres (`jax.image.resize`), nearest resizing with
half-pixel centres (`nearest-exact`), and the 2x2 ConvTranspose whose Flax
kernel is flipped spatially on conversion (`zoo/models/_flax_layout.py`).
`grid_size_lr` is accepted and, as in the official code, never read: low-res
levels and the bottleneck use `block_size_lr` as their grid size.

Layout differences from the official tree (mapped by `checkpoint_filter_fn`):
timm-style `stages.<s>.<part>.<level>` modules; the official `UpSampleRatio_<k>`
(one counter over the whole model) become `skip_resizes[i][j]` /
`decoder_resizes[i][l]` indexed by target level i and source level j / l; an
upsampling resize applies its 1x1 conv before the bilinear upsampling instead
of after (the two commute exactly: both are linear and bilinear weights sum to
one; only float rounding differs), so the conv runs on 4x or 16x fewer pixels.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from timm.models import generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..layers.checks import check_image_input, check_model_args, handles_empty_batch, model_name
from ..layers.fx import fx_leaf, is_fx_proxy
from ..pretrained import OPTIMIZER_TARGET, OfficialFile, build_zoo_model, register_official_files
from ._checkpoint import check_state_dict, strip_prefixes, unwrap_state_dict
from ._flax_layout import conv_kernel, conv_transpose_kernel, dense_kernel, is_flax_tree
from ._placement import keeps_device_dtype
from ._staged import StagedModelApi

__all__ = ["MAXIM"]

NORM_EPS = 1e-6        # flax.linen.LayerNorm default
LRELU_SLOPE = 0.2      # RCAB's own default; the official MAXIM never passes its lrelu_slope down
PAD_MULTIPLE = 64      # run_eval.mod_padding_symmetric(factor=64)

Size2 = tuple[int, int]

GELU = partial(nn.GELU, approximate="tanh")  # flax.linen.gelu: approximate=True


def _pair(v: int | Sequence[int]) -> Size2:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


# ---------------------------------------------------------------------------- primitives (NHWC in, NHWC out)

class LayerNorm(nn.LayerNorm):
    """LayerNorm over the last (channel) axis, eps 1e-6 as flax.linen.LayerNorm."""

    def __init__(self, dim: int):
        super().__init__(dim, eps=NORM_EPS)


class Conv(nn.Conv2d):
    """A Flax `nn.Conv` with 'SAME' padding on a channels-last tensor.

    3x3/s1: pad 1; 4x4/s2: Flax pads (1, 2) for odd sides and (1, 1) for even
    ones; the network only ever sees even sides here, so padding=1 is exact.
    """

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int = 3, stride: int = 1):
        super().__init__(in_dim, out_dim, kernel_size, stride, padding=(kernel_size - stride + 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class PointwiseConv(nn.Conv2d):
    """A Flax 1x1 `nn.Conv`: a matmul over the channel axis of a channels-last tensor (Conv2d weights)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__(in_dim, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.flatten(1), self.bias)


class ConvUp(nn.ConvTranspose2d):
    """Flax `nn.ConvTranspose(k=2, s=2)` on a channels-last tensor (weights flipped at conversion)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__(in_dim, out_dim, 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


@fx_leaf  # torch.fx: skipped, and antialiased, by the sizes
def resize_bilinear(x: torch.Tensor, size: Size2) -> torch.Tensor:
    """`jax.image.resize(..., 'bilinear')` of a channels-last tensor: half-pixel centres, antialiased when shrinking."""
    if tuple(x.shape[1:3]) == tuple(size):
        return x  # jax skips dimensions whose scale is 1
    antialias = size[0] < x.shape[1] or size[1] < x.shape[2]
    # PyTorch's CPU antialiased resize has no float16 / bfloat16 kernel: resize in float32, round once.
    reduced_on_cpu = x.device.type == "cpu" and x.dtype in (torch.float16, torch.bfloat16)
    y = F.interpolate(x.permute(0, 3, 1, 2).float() if reduced_on_cpu else x.permute(0, 3, 1, 2), size=size,
                      mode="bilinear", align_corners=False, antialias=antialias)
    return y.to(x.dtype).permute(0, 2, 3, 1)


@fx_leaf  # torch.fx: skipped by the sizes
def resize_nearest(x: torch.Tensor, size: Size2) -> torch.Tensor:
    """`jax.image.resize(..., 'nearest')` of a channels-last tensor: source index floor((o + 0.5) * in / out)."""
    if tuple(x.shape[1:3]) == tuple(size):
        return x
    return F.interpolate(x.permute(0, 3, 1, 2), size=size, mode="nearest-exact").permute(0, 2, 3, 1)


def mix_block_tokens(x: torch.Tensor, dense: nn.Linear, block: Size2) -> torch.Tensor:
    """Dense over the ph*pw pixels of each non-overlapping ph x pw window (official `block_images`, axis -2)."""
    n, h, w, c = x.shape
    ph, pw = block
    gh, gw = h // ph, w // pw
    x = x.reshape(n, gh, ph, gw, pw, c).permute(0, 1, 3, 5, 2, 4).reshape(n, gh, gw, c, ph * pw)
    x = dense(x)
    return x.reshape(n, gh, gw, c, ph, pw).permute(0, 1, 4, 2, 5, 3).reshape(n, h, w, c)


def mix_grid_tokens(x: torch.Tensor, dense: nn.Linear, grid: Size2) -> torch.Tensor:
    """Dense over the gh*gw pixels of a dilated gh x gw grid spanning the image (official grid axis -3)."""
    n, h, w, c = x.shape
    gh, gw = grid
    fh, fw = h // gh, w // gw
    x = x.reshape(n, gh, fh, gw, fw, c).permute(0, 2, 4, 5, 1, 3).reshape(n, fh, fw, c, gh * gw)
    x = dense(x)
    return x.reshape(n, fh, fw, c, gh, gw).permute(0, 4, 1, 5, 2, 3).reshape(n, h, w, c)


def _mix(x: torch.Tensor, dense: nn.Linear, axis: str, size: Size2) -> torch.Tensor:
    return mix_grid_tokens(x, dense, size) if axis == "grid" else mix_block_tokens(x, dense, size)


# ---------------------------------------------------------------------------- blocks

class GatingUnit(nn.Module):
    """gMLP spatial gating (`BlockGatingUnit` / `GridGatingUnit`): u * (Dense_tokens(LN(v)) + 1)."""

    def __init__(self, dim: int, axis: str, size: Size2):
        super().__init__()
        self.axis, self.size = axis, size
        self.norm = LayerNorm(dim)
        self.proj = nn.Linear(size[0] * size[1], size[0] * size[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = x.chunk(2, dim=-1)
        v = _mix(self.norm(v), self.proj, self.axis, self.size)
        return u * (v + 1.0)


class GmlpLayer(nn.Module):
    """`BlockGmlpLayer` (local windows) / `GridGmlpLayer` (dilated global grid), residual inside."""

    def __init__(self, dim: int, axis: str, size: Size2, factor: int = 2):
        super().__init__()
        self.norm = LayerNorm(dim)
        self.in_proj = nn.Linear(dim, dim * factor)
        self.act = GELU()
        self.gate = GatingUnit(dim * factor // 2, axis, size)
        self.out_proj = nn.Linear(dim * factor // 2, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out_proj(self.gate(self.act(self.in_proj(self.norm(x)))))


class MultiAxisGmlpBlock(nn.Module):
    """MAB (`ResidualSplitHeadMultiAxisGmlpLayer`): first channel half -> grid gMLP, second -> block gMLP."""

    def __init__(self, dim: int, block_size: Size2, grid_size: Size2, input_proj_factor: int = 2,
                 block_gmlp_factor: int = 2, grid_gmlp_factor: int = 2):
        super().__init__()
        hidden = dim * input_proj_factor
        self.norm = LayerNorm(dim)
        self.in_proj = nn.Linear(dim, hidden)
        self.act = GELU()
        self.grid_mlp = GmlpLayer(hidden // 2, "grid", grid_size, grid_gmlp_factor)
        self.block_mlp = GmlpLayer(hidden // 2, "block", block_size, block_gmlp_factor)
        self.out_proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = self.act(self.in_proj(self.norm(x))).chunk(2, dim=-1)
        return x + self.out_proj(torch.cat([self.grid_mlp(u), self.block_mlp(v)], dim=-1))


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation (`CALayer`): x * sigmoid(fc2(relu(fc1(mean_HW(x)))))."""

    def __init__(self, dim: int, reduction: int = 4):
        super().__init__()
        self.fc1 = PointwiseConv(dim, dim // reduction)
        self.fc2 = PointwiseConv(dim // reduction, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean(dim=(1, 2), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(y))))


class RCAB(nn.Module):
    """Residual channel attention block: x + CA(conv2(lrelu_0.2(conv1(LN(x)))))."""

    def __init__(self, dim: int, reduction: int = 4):
        super().__init__()
        self.norm = LayerNorm(dim)
        self.conv1 = Conv(dim, dim, 3)
        self.conv2 = Conv(dim, dim, 3)
        self.ca = ChannelAttention(dim, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(self.norm(x)), LRELU_SLOPE)
        return x + self.ca(self.conv2(y))


class RDCAB(nn.Module):
    """Residual dense channel attention block (bottleneck): x + CA(MLP(LN(x))), MLP C -> C -> C."""

    def __init__(self, dim: int, reduction: int = 4):
        super().__init__()
        self.norm = LayerNorm(dim)
        self.mlp = Mlp(dim, dim, dim, act_layer=GELU)
        self.ca = ChannelAttention(dim, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ca(self.mlp(self.norm(x)))


class MaximGroup(nn.Module):
    """One of the `num_groups` pairs: a MAB then a channel-attention block (RCAB, or RDCAB in the bottleneck)."""

    def __init__(self, dim: int, block_size: Size2, grid_size: Size2, reduction: int, dense: bool, **factors: int):
        super().__init__()
        self.mab = MultiAxisGmlpBlock(dim, block_size, grid_size, **factors)
        if dense:
            self.rdcab = RDCAB(dim, reduction)
        else:
            self.rcab = RCAB(dim, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mab(x)
        return self.rdcab(x) if hasattr(self, "rdcab") else self.rcab(x)


class SpatialGatingWeights(nn.Module):
    """`GetSpatialGatingWeights`: LN, Dense C->2C, GELU; grid Dense on one half, block Dense on the other;
    Dense 2C->C."""

    def __init__(self, dim: int, block_size: Size2, grid_size: Size2, input_proj_factor: int = 2):
        super().__init__()
        hidden = dim * input_proj_factor
        self.block_size, self.grid_size = block_size, grid_size
        self.norm = LayerNorm(dim)
        self.in_proj = nn.Linear(dim, hidden)
        self.act = GELU()
        self.grid_proj = nn.Linear(grid_size[0] * grid_size[1], grid_size[0] * grid_size[1])
        self.block_proj = nn.Linear(block_size[0] * block_size[1], block_size[0] * block_size[1])
        self.out_proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = self.act(self.in_proj(self.norm(x))).chunk(2, dim=-1)
        u = mix_grid_tokens(u, self.grid_proj, self.grid_size)
        v = mix_block_tokens(v, self.block_proj, self.block_size)
        return self.out_proj(torch.cat([u, v], dim=-1))


class CrossGatingBlock(nn.Module):
    """CGB: x and y gate each other's features; returns (x, y) with x = ... + y + shortcut_x as officially."""

    def __init__(self, x_dim: int, y_dim: int, dim: int, block_size: Size2, grid_size: Size2,
                 upsample_y: bool, input_proj_factor: int = 2):
        super().__init__()
        self.up = ConvUp(y_dim, dim) if upsample_y else None
        self.conv_x = PointwiseConv(x_dim, dim)
        self.conv_y = PointwiseConv(dim if upsample_y else y_dim, dim)
        self.norm_x = LayerNorm(dim)
        self.in_proj_x = nn.Linear(dim, dim)
        self.gate_x = SpatialGatingWeights(dim, block_size, grid_size, input_proj_factor)
        self.norm_y = LayerNorm(dim)
        self.in_proj_y = nn.Linear(dim, dim)
        self.gate_y = SpatialGatingWeights(dim, block_size, grid_size, input_proj_factor)
        self.out_proj_y = nn.Linear(dim, dim)
        self.out_proj_x = nn.Linear(dim, dim)
        self.act = GELU()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.up is not None:
            y = self.up(y)
        x, y = self.conv_x(x), self.conv_y(y)
        shortcut_x, shortcut_y = x, y
        x = self.act(self.in_proj_x(self.norm_x(x)))
        gx = self.gate_x(x)
        y = self.act(self.in_proj_y(self.norm_y(y)))
        gy = self.gate_y(y)
        y = self.out_proj_y(y * gx) + shortcut_y
        x = self.out_proj_x(x * gy) + y + shortcut_x
        return x, y


class EncoderBlock(nn.Module):
    """`UNetEncoderBlock`: [concat skip], 1x1 conv, (MAB, RCAB) x G, long skip, [CGB with the previous stage],
    [4x4/s2 down]."""

    def __init__(self, in_dim: int, dim: int, block_size: Size2, grid_size: Size2, num_groups: int,
                 reduction: int, cross_gate: bool, downsample: bool, **factors: int):
        super().__init__()
        self.conv_in = PointwiseConv(in_dim, dim)
        self.blocks = nn.ModuleList([
            MaximGroup(dim, block_size, grid_size, reduction, dense=False, **factors) for _ in range(num_groups)])
        self.cross_gate = CrossGatingBlock(
            dim, dim, dim, block_size, grid_size, upsample_y=False,
            input_proj_factor=factors.get("input_proj_factor", 2)) if cross_gate else None
        self.downsample = Conv(dim, dim, 4, 2) if downsample else None

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None,
                gate: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if skip is not None:
            x = torch.cat([x, skip], dim=-1)
        x = self.conv_in(x)
        shortcut = x
        for block in self.blocks:
            x = block(x)
        x = x + shortcut
        if self.cross_gate is not None and gate is not None:
            x = self.cross_gate(x, gate)[0]
        if self.downsample is not None:
            return self.downsample(x), x
        return x


class DecoderBlock(nn.Module):
    """`UNetDecoderBlock`: 2x2/s2 ConvTranspose, then an encoder block (no cross-gating, no downsampling)
    with the skip."""

    def __init__(self, in_dim: int, skip_dim: int, dim: int, block_size: Size2, grid_size: Size2, num_groups: int,
                 reduction: int, **factors: int):
        super().__init__()
        self.up = ConvUp(in_dim, dim)
        self.block = EncoderBlock(dim + skip_dim, dim, block_size, grid_size, num_groups, reduction,
                                  cross_gate=False, downsample=False, **factors)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(self.up(x), skip)


class BottleneckBlock(nn.Module):
    """`BottleneckBlock`: 1x1 conv, (MAB, RDCAB) x G, long skip."""

    def __init__(self, dim: int, block_size: Size2, num_groups: int, reduction: int, **factors: int):
        super().__init__()
        self.input_proj = PointwiseConv(dim, dim)
        # The official bottleneck passes block_size_lr as both block and grid size.
        self.blocks = nn.ModuleList([
            MaximGroup(dim, block_size, block_size, reduction, dense=True, **factors) for _ in range(num_groups)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_proj(x)
        shortcut = x
        for block in self.blocks:
            x = block(x)
        return x + shortcut


class SAM(nn.Module):
    """Supervised attention module (MPRNet): returns (features for the next stage, this stage's image)."""

    def __init__(self, dim: int, out_chans: int = 3):
        super().__init__()
        self.conv_feat = Conv(dim, dim, 3)
        self.conv_image = Conv(dim, out_chans, 3)
        self.conv_attn = Conv(out_chans, dim, 3)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.conv_image(x) + image
        return self.conv_feat(x) * torch.sigmoid(self.conv_attn(image)) + x, image


@fx_leaf  # torch.fx: from the traced sizes
def _scaled_size(h: int, w: int, ratio: float) -> tuple[int, int]:
    return int(h * ratio), int(w * ratio)


class ResizeConv(PointwiseConv):
    """`UpSampleRatio`: bilinear resize by `ratio`, then a 1x1 conv (conv first when upsampling: exact, cheaper)."""

    def __init__(self, in_dim: int, out_dim: int, ratio: float):
        super().__init__(in_dim, out_dim)
        self.ratio = ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = _scaled_size(x.shape[1], x.shape[2], self.ratio)
        if self.ratio > 1:
            return resize_bilinear(super().forward(x), size)
        return super().forward(resize_bilinear(x, size))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ratio={self.ratio}"


# ---------------------------------------------------------------------------- stage and model

class MaximStage(nn.Module):
    """One UNet of the multi-stage model: input convs [+ fusion with the previous SAM], encoder,
    bottleneck, cross-gated skips, decoder, then SAMs (not the last stage) or output convs (last)."""

    def __init__(self, index: int, num_stages: int, widths: Sequence[int], sizes: Sequence[tuple[Size2, Size2]],
                 bottleneck_size: Size2, num_groups: int, num_scales: int, num_bottleneck_blocks: int,
                 reduction: int, in_chans: int, factors: dict[str, int]):
        super().__init__()
        depth = len(widths)
        self.depth, self.num_scales = depth, num_scales
        ipf = factors["input_proj_factor"]
        self.input_convs = nn.ModuleList([Conv(in_chans, widths[i], 3) for i in range(num_scales)])
        self.input_fuses = nn.ModuleList([
            CrossGatingBlock(widths[i], widths[i], widths[i], *sizes[i], upsample_y=False, input_proj_factor=ipf)
            for i in range(num_scales)]) if index > 0 else None
        encoders = []
        for i in range(depth):
            in_dim = (widths[0] if i == 0 else widths[i - 1]) + (widths[i] if i < num_scales else 0)
            encoders.append(EncoderBlock(in_dim, widths[i], *sizes[i], num_groups, reduction,
                                         cross_gate=index > 0, downsample=True, **factors))
        self.encoders = nn.ModuleList(encoders)
        self.bottleneck = nn.ModuleList([
            BottleneckBlock(widths[-1], bottleneck_size, num_groups, reduction, **factors)
            for _ in range(num_bottleneck_blocks)])
        self.skip_resizes = nn.ModuleList([
            nn.ModuleList([ResizeConv(widths[j], widths[i], 2.0 ** (j - i)) for j in range(depth)])
            for i in range(depth)])
        self.skip_gates = nn.ModuleList([
            CrossGatingBlock(depth * widths[i], widths[min(i + 1, depth - 1)], widths[i], *sizes[i],
                             upsample_y=True, input_proj_factor=ipf)
            for i in range(depth)])
        self.decoder_resizes = nn.ModuleList([
            nn.ModuleList([ResizeConv(widths[j], widths[i], 2.0 ** (j - i)) for j in range(depth)])
            for i in range(depth)])
        self.decoders = nn.ModuleList([
            DecoderBlock(widths[min(i + 1, depth - 1)], depth * widths[i], widths[i], *sizes[i], num_groups,
                         reduction, **factors)
            for i in range(depth)])
        last = index == num_stages - 1
        self.sams = None if last else nn.ModuleList([SAM(widths[i], in_chans) for i in range(num_scales)])
        self.output_convs = nn.ModuleList([Conv(widths[i], in_chans, 3) for i in range(num_scales)]) if last else None
        self.grad_checkpointing = False

    def _call(self, module: nn.Module, *args: Any) -> Any:
        if self.grad_checkpointing and self.training and not torch.jit.is_scripting():
            return checkpoint(module, *args, use_reentrant=False)
        return module(*args)

    def encode(self, shortcuts: list[torch.Tensor], previous: dict[str, list[torch.Tensor]] | None,
               stop_after: int | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Input fusion, encoder and bottleneck: (bottleneck output, encoder bridges per level)."""
        x_scales = []
        for i, conv in enumerate(self.input_convs):
            x = conv(shortcuts[i])
            if self.input_fuses is not None:
                x = self._call(self.input_fuses[i], x, previous["sams"][i])[0]
            x_scales.append(x)
        x, bridges = x_scales[0], []
        for i, encoder in enumerate(self.encoders):
            skip = x_scales[i] if i < self.num_scales else None
            gate = previous["encs"][i] + previous["decs"][i] if previous is not None else None
            x, bridge = self._call(encoder, x, skip, gate)
            bridges.append(bridge)
            if stop_after is not None and i >= stop_after:
                return x, bridges
        for block in self.bottleneck:
            x = self._call(block, x)
        return x, bridges

    def decode(self, x: torch.Tensor, bridges: list[torch.Tensor], shortcuts: list[torch.Tensor]
               ) -> tuple[list[torch.Tensor], dict[str, list[torch.Tensor]]]:
        """Cross-gated skips and decoder: (outputs coarsest first, what the next stage takes)."""
        depth = self.depth
        skips: list[torch.Tensor | None] = [None] * depth
        g = x
        for i in reversed(range(depth)):
            signal = torch.cat([resize(bridges[j]) for j, resize in enumerate(self.skip_resizes[i])], dim=-1)
            skips[i], g = self._call(self.skip_gates[i], signal, g)
        decs: list[torch.Tensor | None] = [None] * depth
        sams: list[torch.Tensor | None] = [None] * self.num_scales
        outputs = []
        for i in reversed(range(depth)):
            signal = torch.cat([self.decoder_resizes[i][j](skips[j]) for j in reversed(range(depth))], dim=-1)
            x = self._call(self.decoders[i], x, signal)
            decs[i] = x
            if i < self.num_scales:
                if self.sams is not None:
                    sams[i], image = self.sams[i](x, shortcuts[i])
                else:
                    image = self.output_convs[i](x) + shortcuts[i]
                outputs.append(image)
        return outputs, dict(sams=sams, encs=bridges, decs=decs)

    def forward(self, shortcuts: list[torch.Tensor], previous: dict[str, list[torch.Tensor]] | None = None
                ) -> tuple[list[torch.Tensor], dict[str, list[torch.Tensor]]]:
        x, bridges = self.encode(shortcuts, previous)
        return self.decode(x, bridges, shortcuts)


def _reflect_index(n: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    """Indices of numpy's 'reflect' padding (edge not repeated), also for pads >= n (repeated reflection)."""
    idx = torch.arange(-before, n + after, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = idx.remainder(period)
    return torch.where(idx >= n, period - idx, idx)


def reflect_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """`np.pad(mode='reflect')` of the last two axes (any pad size, unlike F.pad's reflect)."""
    h, w = x.shape[-2:]
    if top or bottom:
        x = x.index_select(-2, _reflect_index(h, top, bottom, x.device))
    if left or right:
        x = x.index_select(-1, _reflect_index(w, left, right, x.device))
    return x


def official_padding(height: int, width: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of run_eval: make_shape_even (bottom/right) then mod_padding_symmetric."""
    pads = []
    for n in (height, width):
        even = n + n % 2
        extra = ((even + multiple) // multiple) * multiple - even if even % multiple else 0
        pads.append((extra // 2, extra // 2 + n % 2))
    return pads[0][0], pads[0][1], pads[1][0], pads[1][1]


@fx_leaf  # torch.fx: the padding follows the input size
def pad_input(x: torch.Tensor, multiple: int = PAD_MULTIPLE) -> tuple[torch.Tensor, tuple[int, int]]:
    """The official padding of an NCHW batch: (padded batch, (top, left) offset of the original pixels).

    run_eval reflect-pads one row/column at the bottom/right of odd sides, then
    pads an even side that is not a multiple of `multiple` symmetrically (reflect)
    up to the next multiple; the prediction is cropped at (top, left) to the
    original H x W (the extra odd row/column is dropped).
    """
    top, bottom, left, right = official_padding(x.shape[-2], x.shape[-1], multiple)
    h, w = x.shape[-2:]
    # make_shape_even first (its reflected row is the original's second-to-last), then the symmetric pad
    x = reflect_pad(x, 0, h % 2, 0, w % 2)
    x = reflect_pad(x, top, bottom - h % 2, left, right - w % 2)
    return x, (top, left)


@handles_empty_batch
class MAXIM(StagedModelApi, nn.Module):
    """MAXIM (`maxim.models.maxim.MAXIM`): a multi-stage, multi-scale multi-axis gated-MLP UNet.

    Args (official names):
        features: width of level 0 (level i has 2^i * features).
        depth: UNet levels (downsamplings).
        num_stages: UNets in sequence (2 for MAXIM-2S, 3 for MAXIM-3S).
        num_groups: (MAB, channel-attention) pairs per block.
        num_supervision_scales: image scales fed in and predicted (3 in every official checkpoint).
        high_res_stages: levels (not stages) that use the *_hr block/grid sizes.
        block_size_hr, block_size_lr, grid_size_hr: window / grid sizes.
        grid_size_lr: accepted and never read, as in the official code (low-res levels use block_size_lr).
        num_bottleneck_blocks: bottleneck blocks per stage.
        block_gmlp_factor, grid_gmlp_factor, input_proj_factor: hidden-width factors of the gMLPs.
        channels_reduction: squeeze-and-excitation reduction.
        in_chans: image channels (input and output; 3 for every checkpoint).
        num_classes: must be 0 (image-to-image model, no classifier).
        pad_multiple: `forward` pads to multiples of this (run_eval: 64).
    """

    def __init__(
            self,
            features: int = 32,
            depth: int = 3,
            num_stages: int = 3,
            num_groups: int = 2,
            num_supervision_scales: int = 3,
            high_res_stages: int = 2,
            block_size_hr: Sequence[int] = (16, 16),
            block_size_lr: Sequence[int] = (8, 8),
            grid_size_hr: Sequence[int] = (16, 16),
            grid_size_lr: Sequence[int] = (8, 8),
            num_bottleneck_blocks: int = 2,
            block_gmlp_factor: int = 2,
            grid_gmlp_factor: int = 2,
            input_proj_factor: int = 2,
            channels_reduction: int = 4,
            in_chans: int = 3,
            num_classes: int = 0,
            pad_multiple: int = PAD_MULTIPLE,
            drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
    ):
        super().__init__()
        check_model_args(type(self).__name__, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                         drop_path_rate=drop_path_rate)
        if num_classes:
            raise ValueError(f"MAXIM is an image-to-image model without a classifier: num_classes must be 0, "
                             f"got {num_classes}")
        if drop_rate or drop_path_rate:
            raise ValueError("MAXIM has no stochastic depth, and dropout (0 in every official model) is not "
                             f"implemented: got drop_rate={drop_rate}, drop_path_rate={drop_path_rate}")
        if not 1 <= num_supervision_scales <= depth:
            raise ValueError(f"num_supervision_scales must be in 1..depth={depth}, got {num_supervision_scales}")
        self.in_chans = in_chans
        self.num_classes = 0
        self.depth, self.num_stages, self.num_supervision_scales = depth, num_stages, num_supervision_scales
        self.grid_size_lr = _pair(grid_size_lr)  # recorded, never read (official quirk)
        self.pad_multiple = pad_multiple
        widths = [features * 2 ** i for i in range(depth)]
        hr, lr = (_pair(block_size_hr), _pair(grid_size_hr)), (_pair(block_size_lr), _pair(block_size_lr))
        sizes = [hr if i < high_res_stages else lr for i in range(depth)]
        self.level_sizes = sizes
        self.num_features = self.head_hidden_size = widths[0]
        factors = dict(block_gmlp_factor=block_gmlp_factor, grid_gmlp_factor=grid_gmlp_factor,
                       input_proj_factor=input_proj_factor)
        self.stages = nn.ModuleList([
            MaximStage(s, num_stages, widths, sizes, _pair(block_size_lr), num_groups, num_supervision_scales,
                       num_bottleneck_blocks, channels_reduction, in_chans, factors)
            for s in range(num_stages)])
        # Every level i needs H / 2^i divisible by its block and grid sizes;
        # the bottleneck H / 2^depth by block_size_lr.
        needs_h = ([2 ** i * s[k][0] for i, s in enumerate(sizes) for k in (0, 1)]
                   + [2 ** depth * _pair(block_size_lr)[0]])
        needs_w = ([2 ** i * s[k][1] for i, s in enumerate(sizes) for k in (0, 1)]
                   + [2 ** depth * _pair(block_size_lr)[1]])
        self.size_multiple = (math.lcm(*needs_h), math.lcm(*needs_w))
        if pad_multiple % self.size_multiple[0] or pad_multiple % self.size_multiple[1]:
            raise ValueError(f"pad_multiple={pad_multiple} is not a multiple of the sizes this configuration "
                             f"takes ({self.size_multiple[0]} x {self.size_multiple[1]})")
        last = f"stages.{num_stages - 1}"
        self.feature_info = [
            dict(num_chs=widths[i], reduction=2 ** i, module=f"{last}.encoders.{i}") for i in range(depth)
        ] + [dict(num_chs=widths[-1], reduction=2 ** depth, module=f"{last}.bottleneck")]
        self._pruned = False
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # As the official model file initialises (no training code was released): Dense kernels
        # N(0, 0.02) and zero biases, except the cross-gating token Denses whose biases start at 1.
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        if isinstance(m, SpatialGatingWeights):
            nn.init.ones_(m.grid_proj.bias)
            nn.init.ones_(m.block_proj.bias)

    # ------------------------------------------------------------------ timm API

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^stages\.0\.input_convs", blocks=r"^stages\.(\d+)")

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return nn.Identity()

    @keeps_device_dtype
    def reset_classifier(self, num_classes: int = 0, global_pool: str | None = None) -> None:
        if num_classes:
            raise ValueError("MAXIM is an image-to-image model and has no classifier to reset")

    @property
    def _name(self) -> str:
        return model_name(self)

    def _check_input(self, x: torch.Tensor, network: bool) -> None:
        if is_fx_proxy(x):  # torch.fx symbolic tracing: nothing to check (zoo.layers.checks)
            return
        check_image_input(x, self.in_chans, self._name)
        if network:
            h, w = x.shape[-2:]
            mh, mw = self.size_multiple
            if h % mh or w % mw:
                raise ValueError(
                    f"{self._name}'s network takes H a multiple of {mh} and W a multiple of {mw}, got {h}x{w}; "
                    f"model(x) pads any size as the official evaluation does (zoo.models.maxim.pad_input)")

    def _shortcuts(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.permute(0, 2, 3, 1)
        h, w = x.shape[1:3]
        return [x] + [resize_nearest(x, (h // 2 ** i, w // 2 ** i)) for i in range(1, self.num_supervision_scales)]

    def forward_features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Every stage's outputs (NCHW, not clipped), each stage's list coarsest scale first, as the official
        `MAXIM.__call__` returns them; x: (B, in_chans, H, W) with H, W multiples of `size_multiple`."""
        self._check_input(x, network=True)
        if self._pruned:
            raise RuntimeError("this MAXIM was pruned to its encoder features (prune_intermediate_layers)")
        shortcuts = self._shortcuts(x)
        previous, outputs_all = None, []
        for stage in self.stages:
            outputs, previous = stage(shortcuts, previous)
            outputs_all.append([o.permute(0, 3, 1, 2) for o in outputs])
        return outputs_all

    def forward_head(self, x: list[list[torch.Tensor]], pre_logits: bool = False) -> torch.Tensor:
        """The restored image: the last stage's full-resolution output (`outputs[-1][-1]`)."""
        return x[-1][-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore an NCHW batch in [0, 1] of any size with the official protocol (pad, run, crop); not clipped."""
        self._check_input(x, network=False)
        h, w = x.shape[-2:]
        padded, (top, left) = pad_input(x, self.pad_multiple)
        out = self.forward_head(self.forward_features(padded))
        return out[..., top:top + h, left:left + w]

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[list[list[torch.Tensor]], list[torch.Tensor]]:
        """The last stage's encoder features (levels 0..depth-1, strides 1, 2, 4, ...) and its bottleneck output.

        Args:
            x: (B, in_chans, H, W), H and W multiples of `size_multiple` (no padding here).
            indices: take the last n features if int, all if None, these if a sequence.
            norm: accepted for timm's feature API; MAXIM has no feature norms.
            stop_early: stop after the last feature taken.
            output_fmt: only 'NCHW'.
            intermediates_only: return only the features; otherwise also `forward_features(x)`.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        self._check_input(x, network=True)
        take_indices, max_index = feature_take_indices(self.depth + 1, indices)
        shortcuts = self._shortcuts(x)
        previous, outputs_all = None, []
        for stage in self.stages[:-1]:
            outputs, previous = stage(shortcuts, previous)
            outputs_all.append([o.permute(0, 3, 1, 2) for o in outputs])
        last = self.stages[-1]
        early = (intermediates_only or stop_early) and max_index < self.depth
        h, bridges = last.encode(shortcuts, previous, stop_after=max_index if early else None)
        features = bridges + [h]
        intermediates = [features[i].permute(0, 3, 1, 2) for i in take_indices]
        if intermediates_only:
            return intermediates
        if self._pruned or stop_early:
            return outputs_all, intermediates
        outputs, _ = last.decode(h, bridges, shortcuts)
        outputs_all.append([o.permute(0, 3, 1, 2) for o in outputs])
        return outputs_all, intermediates

    def prune_intermediate_layers(
            self,
            indices: int | list[int] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> list[int]:
        """Drop what the requested encoder features do not need: the last stage's decoder side (and bottleneck)."""
        take_indices, max_index = feature_take_indices(self.depth + 1, indices)
        if prune_head:
            last = self.stages[-1]
            for name in ("skip_resizes", "skip_gates", "decoder_resizes", "decoders", "output_convs", "sams"):
                setattr(last, name, None)
            if max_index < self.depth:
                last.bottleneck = nn.ModuleList()
            self._pruned = True
        return take_indices


# ---------------------------------------------------------------------------- official checkpoints

def _resize_key(match: re.Match, depth: int) -> str:
    """`UpSampleRatio_<k>` (one counter over the model, 2 * depth^2 per stage) -> our resize module."""
    k = int(match.group(1))
    stage, k = divmod(k, 2 * depth * depth)
    side, k = divmod(k, depth * depth)
    level = depth - 1 - k // depth        # target level i, visited coarse to fine
    source = k % depth                    # skip side: encoder level j; decoder side: j-th skip, coarsest first
    if side == 0:
        return f"stages.{stage}.skip_resizes.{level}.{source}/"
    return f"stages.{stage}.decoder_resizes.{level}.{depth - 1 - source}/"


# Official Flax path (module names of maxim/models/maxim.py) -> ours, applied in order to every
# '/'-joined path.
_PART_RULES = [
    (r"^stage_(\d+)_input_conv_(\d+)/", r"stages.\1.input_convs.\2/"),
    (r"^stage_(\d+)_input_fuse_sam_(\d+)/", r"stages.\1.input_fuses.\2/"),
    (r"^stage_(\d+)_encoder_block_(\d+)/", r"stages.\1.encoders.\2/"),
    (r"^stage_(\d+)_global_block_(\d+)/", r"stages.\1.bottleneck.\2/"),
    (r"^stage_(\d+)_cross_gating_block_(\d+)/", r"stages.\1.skip_gates.\2/"),
    (r"^stage_(\d+)_decoder_block_(\d+)/", r"stages.\1.decoders.\2/"),
    (r"^stage_(\d+)_supervised_attention_module_(\d+)/", r"stages.\1.sams.\2/"),
    (r"^stage_(\d+)_output_conv_(\d+)/", r"stages.\1.output_convs.\2/"),
    # decoder: ConvTranspose then an encoder-style block
    (r"(decoders\.\d+/)ConvTranspose_0/", r"\1up/"),
    (r"(decoders\.\d+/)UNetEncoderBlock_0/", r"\1block/"),
    # encoder-style blocks
    (r"/cross_gating_block/", "/cross_gate/"),
    (r"(encoders\.\d+/|/block/)Conv_0/", r"\1conv_in/"),
    (r"(encoders\.\d+/)Conv_1/", r"\1downsample/"),
    (r"/SplitHeadMultiAxisGmlpLayer_(\d+)/", r"/blocks.\1/mab/"),
    (r"/channel_attention_block_1_(\d+)/", r"/blocks.\1/rdcab/"),   # bottleneck (with underscore)
    (r"/channel_attention_block_1(\d+)/", r"/blocks.\1/rcab/"),     # encoder / decoder (without)
    (r"/channel_attention/Conv_0/", "/ca/fc1/"),
    (r"/channel_attention/Conv_1/", "/ca/fc2/"),
    (r"/channel_mixing/Dense_0/", "/mlp/fc1/"),
    (r"/channel_mixing/Dense_1/", "/mlp/fc2/"),
    (r"/GridGmlpLayer/", "/grid_mlp/"),
    (r"/BlockGmlpLayer/", "/block_mlp/"),
    (r"/(Grid|Block)GatingUnit/intermediate_layernorm/", "/gate/norm/"),
    (r"/(Grid|Block)GatingUnit/Dense_0/", "/gate/proj/"),
    # cross-gating blocks (skip gates, input fusion, encoder cross gate)
    (r"(skip_gates\.\d+/)ConvTranspose_0/", r"\1up/"),
    (r"(skip_gates\.\d+/|input_fuses\.\d+/|/cross_gate/)Conv_0/", r"\1conv_x/"),
    (r"(skip_gates\.\d+/|input_fuses\.\d+/|/cross_gate/)Conv_1/", r"\1conv_y/"),
    (r"/SplitHeadMultiAxisGating_([xy])/", r"/gate_\1/"),
    (r"(/gate_[xy]/)Dense_0/", r"\1grid_proj/"),
    (r"(/gate_[xy]/)Dense_1/", r"\1block_proj/"),
    (r"/LayerNorm_(x|y)/", r"/norm_\1/"),
    (r"/LayerNorm(_in)?/", "/norm/"),
    (r"/in_project", "/in_proj"),
    (r"/out_project", "/out_proj"),
    # SAM
    (r"(sams\.\d+/)Conv_0/", r"\1conv_feat/"),
    (r"(sams\.\d+/)Conv_1/", r"\1conv_image/"),
    (r"(sams\.\d+/)Conv_2/", r"\1conv_attn/"),
]


def _convert_leaf(path: str, value: torch.Tensor) -> tuple[str, torch.Tensor]:
    """'<module path>/<leaf>' in our names -> (state-dict key, PyTorch-layout tensor)."""
    module, leaf = path.rsplit("/", 1)
    key = module.replace("/", ".")
    if leaf == "kernel":
        if value.ndim == 2:
            value = dense_kernel(value)
        elif module.endswith("/up"):
            value = conv_transpose_kernel(value)
        else:
            value = conv_kernel(value)
        return f"{key}.weight", value
    if leaf == "scale":
        return f"{key}.weight", value
    if leaf == "bias":
        return f"{key}.bias", value
    raise ValueError(f"unexpected Flax leaf {path!r}")


def convert_flax_params(params: dict[str, torch.Tensor], depth: int = 3) -> dict[str, torch.Tensor]:
    """The official Flax parameter tree (flattened with '/', no `opt/target/` or `params/` prefix) -> our state dict."""
    out = {}
    for path, value in params.items():
        path = re.sub(r"^UpSampleRatio_(\d+)/Conv_0/", lambda m: _resize_key(m, depth), path)
        for pattern, repl in _PART_RULES:
            path = re.sub(pattern, repl, path)
        key, tensor = _convert_leaf(path, value.float() if value.is_floating_point() else value)
        out[key] = tensor
    return out


def checkpoint_filter_fn(state_dict: dict[str, Any], model: MAXIM) -> dict[str, torch.Tensor]:
    """An official MAXIM checkpoint (the Flax tree of `checkpoint.npz`) -> this model's state dict.

    Accepts the official `.npz` content (keys `opt/target/<flax path>`, optimizer
    moments ignored), a Flax tree under `params/` (the golden fixtures) or bare,
    and already-converted PyTorch state dicts (timm hub layout, `zoo-convert`).
    """
    state_dict = unwrap_state_dict(state_dict, model)
    if is_flax_tree(state_dict):
        if any(k.startswith(OPTIMIZER_TARGET) for k in state_dict):
            state_dict = {k[len(OPTIMIZER_TARGET):]: v for k, v in state_dict.items() if k.startswith(OPTIMIZER_TARGET)}
        state_dict = strip_prefixes(state_dict, ("params/",))
        state_dict = convert_flax_params(state_dict, depth=model.depth)
    else:
        state_dict = strip_prefixes(state_dict, ("module.",))
    return check_state_dict(state_dict, model)


# ---------------------------------------------------------------------------- registry

# Task facts per checkpoint: official directory in the GCS bucket, variant, how the paper / run_eval score it.
CHECKPOINTS = {
    "maxim_3s_denoising_sidd": ("Denoising/SIDD", "S-3", "denoising"),
    "maxim_3s_deblurring_gopro": ("Deblurring/GoPro", "S-3", "deblurring"),
    "maxim_3s_deblurring_reds": ("Deblurring/REDS", "S-3", "deblurring"),
    "maxim_3s_deblurring_realblur_j": ("Deblurring/RealBlur_J", "S-3", "deblurring"),
    "maxim_3s_deblurring_realblur_r": ("Deblurring/RealBlur_R", "S-3", "deblurring"),
    "maxim_2s_deraining_rain13k": ("Deraining/Rain13k", "S-2", "deraining"),
    "maxim_2s_deraining_raindrop": ("Deraining/Raindrop", "S-2", "deraining"),
    "maxim_2s_dehazing_sots_indoor": ("Dehazing/SOTS-Indoor", "S-2", "dehazing"),
    "maxim_2s_dehazing_sots_outdoor": ("Dehazing/SOTS-Outdoor", "S-2", "dehazing"),
    "maxim_2s_enhancement_lol": ("Enhancement/LOL", "S-2", "enhancement"),
    "maxim_2s_enhancement_fivek": ("Enhancement/FiveK", "S-2", "enhancement"),
}

GCS_URL = "https://storage.googleapis.com/gresearch/maxim/ckpt/{}/checkpoint.npz"
GCS_BROWSER = "https://console.cloud.google.com/storage/browser/gresearch/maxim/ckpt/{}"

# Factory variants of the official `Model(variant=...)`, with num_supervision_scales=3 as run_eval builds them.
VARIANTS = {
    "S-1": dict(features=32, num_stages=1), "S-2": dict(features=32, num_stages=2),
    "S-3": dict(features=32, num_stages=3),
    "M-1": dict(features=64, num_stages=1), "M-2": dict(features=64, num_stages=2),
    "M-3": dict(features=64, num_stages=3),
}


def _create_maxim(variant: str, pretrained: bool = False, **kwargs: Any) -> MAXIM:
    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3))
    return build_zoo_model(
        MAXIM, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **{**VARIANTS[CHECKPOINTS[variant][1]], **kwargs},
    )


def _cfg(name: str) -> dict[str, Any]:
    folder, variant, task = CHECKPOINTS[name]
    stages = VARIANTS[variant]["num_stages"]
    return {
        "url": GCS_URL.format(folder),
        # min_input_size: the smallest size every entry point takes (forward_features, forward_intermediates and
        # features_only take multiples of 64); model(x) itself pads any size, as the official evaluation does.
        "num_classes": 0, "input_size": (3, 256, 256), "min_input_size": (3, 64, 64), "fixed_input_size": False,
        "crop_pct": 1.0, "interpolation": "bicubic", "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0),
        "first_conv": "stages.0.input_convs.0",
        # No classifier: the layer that produces the restored image stands in for timm's `classifier` field.
        "classifier": f"stages.{stages - 1}.output_convs.0",
        "license": "apache-2.0",
        "paper_ids": "arXiv:2201.02973", "paper_name": "MAXIM: Multi-Axis MLP for Image Processing",
        "origin_url": "https://github.com/google-research/maxim",
        "description": f"MAXIM-{variant[-1]}S {task} ({folder}); input RGB in [0, 1], output the restored image",
        "notes": ("official Flax checkpoint (.npz) converted on load by zoo.models.maxim.checkpoint_filter_fn",
                  "any input size: forward pads as run_eval does (reflect, to multiples of 64) and crops back"),
    }


default_cfgs = generate_default_cfgs({name: _cfg(name) for name in CHECKPOINTS})

# Every official file is called checkpoint.npz: each is kept in the weights directory under its model's name.
register_official_files({
    name: OfficialFile(
        filename=f"{name}.npz",
        download=GCS_URL.format(folder),  # public bucket `gresearch`; browse: GCS_BROWSER
        fetchable=True,
        weights_key="opt/target",  # run_eval.get_params: tree['opt']['target']
    )
    for name, (folder, _, _) in CHECKPOINTS.items()
})


@register_model
def maxim_3s_denoising_sidd(pretrained: bool = False, **kwargs: Any) -> MAXIM:
    return _create_maxim("maxim_3s_denoising_sidd", pretrained, **kwargs)


@register_model
def maxim_3s_deblurring_gopro(pretrained: bool = False, **kwargs: Any) -> MAXIM:
    return _create_maxim("maxim_3s_deblurring_gopro", pretrained, **kwargs)


@register_model
def maxim_3s_deblurring_reds(pretrained: bool = False, **kwargs: Any) -> MAXIM:
    return _create_maxim("maxim_3s_deblurring_reds", pretrained, **kwargs)


@register_model
def maxim_3s_deblurring_realblur_j(pretrained: bool = False, **kwargs: Any) -> MAXIM:
    return _create_maxim("maxim_3s_deblurring_realblur_j", pretrained, **kwargs)


@register_model
def maxim_3s_deblurring_realblur_r(pretrained: bool = False, **kwargs: Any) -> MAXIM:
    return _create_maxim("maxim_3s_deblurring_realblur_r", pretrained, **kwargs)


@register_model
def maxim_2s_deraining_rain13k(pretrained: bool = False, **kwargs: Any) -> MAXIM:
    return _create_maxim("maxim_2s_deraining_rain13k", pretrained, **kwargs)


@register_model
def maxim_2s_deraining_raindrop(pretrained: bool = False, **kwargs: Any) -> MAXIM:
    return _create_maxim("maxim_2s_deraining_raindrop", pretrained, **kwargs)


@register_model
def maxim_2s_dehazing_sots_indoor(pretrained: bool = False, **kwargs: Any) -> MAXIM:
    return _create_maxim("maxim_2s_dehazing_sots_indoor", pretrained, **kwargs)


@register_model
def maxim_2s_dehazing_sots_outdoor(pretrained: bool = False, **kwargs: Any) -> MAXIM:
    return _create_maxim("maxim_2s_dehazing_sots_outdoor", pretrained, **kwargs)


@register_model
def maxim_2s_enhancement_lol(pretrained: bool = False, **kwargs: Any) -> MAXIM:
    return _create_maxim("maxim_2s_enhancement_lol", pretrained, **kwargs)


@register_model
def maxim_2s_enhancement_fivek(pretrained: bool = False, **kwargs: Any) -> MAXIM:
    return _create_maxim("maxim_2s_enhancement_fivek", pretrained, **kwargs)
