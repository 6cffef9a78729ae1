"""Max-Former: a spiking vision transformer with high-frequency (max-pool / depth-wise conv) paths.

*Spiking Neural Networks Need High-Frequency Information* (v1: *Spiking
Transformers Need High Frequency Information*), Fang, Zhou, Wang, Ren, Zeng,
Li, Zhou, Xu, NeurIPS 2025, arXiv:2505.18608.
Official code: https://github.com/bic-L/MaxFormer (`imagenet/max_former.py`).

Every activation between layers is a time-major (T, B, C, H, W) tensor; convs
and BNs see it flattened to (T*B, ...), so training BN statistics pool T and
B as in the official code. The residual streams carry real-valued membrane
inputs; every branch starts with a LIF neuron (LIF -> conv -> BN, "membrane
shortcut"). The image is repeated over the T time steps inside the model and
the logits are averaged over T, so the model takes and returns ordinary
(B, C, H, W) -> (B, num_classes) tensors. The neurons keep no state between
calls (the official ones do until `functional.reset_net`), and they are the
zoo's own LIF (`zoo.layers.spiking.MultiStepLIF`, a fused Triton kernel on
CUDA), never spikingjelly.

Layout differences from the official code (mapped by `checkpoint_filter_fn`):
timm-style `stem` / `stages.i` with the Max-Pool patch embeddings as the
`downsample` at the start of stages 1 and 2; each LIF -> conv -> BN unit is a
`SpikeConvBN` (`.lif`, `.conv`, `.bn`, `.pool`); the classifier is `head.fc`.
`forward_features` returns the last stage's stream batch-first, (B, T, C, H, W).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, SelectAdaptivePool2d, trunc_normal_
from timm.models import checkpoint_seq, generate_default_cfgs, register_model
from timm.models._builder import resolve_pretrained_cfg
from timm.models._features import feature_take_indices
from timm.models._manipulate import adapt_input_conv
from torch import nn

from ..layers.checks import check_image_input, check_model_args, handles_empty_batch, model_name
from ..layers.fx import fx_leaf, is_fx_proxy
from ..layers.spiking import MultiStepLIF
from ..pretrained import OfficialFile, build_zoo_model, register_official_files
from ._checkpoint import CheckpointMismatchError, check_state_dict, rename_keys, strip_prefixes, unwrap_state_dict
from ._features import prune_stages
from ._ggem_surgery import supports_ggem
from ._staged import StagedModelApi

__all__ = ["MaxFormer"]

PATCH = 16  # every official reshape halves H and W four times: sizes must be multiples of 16


class SpikeConvBN(nn.Module):
    """[LIF] -> Conv -> BatchNorm [-> MaxPool 3/2] on a time-major (T, B, C, ...) tensor.

    The official `Embed` / `Max_Embed` unit (and the conv-BN pairs of the
    mixers, MLPs and attention). `lif=False` feeds the conv directly (the
    analog stem input, the spike shortcuts). `dims=1` builds Conv1d /
    BatchNorm1d on (T, B, C, N) tokens (the attention projections).
    """

    def __init__(
            self,
            in_chs: int,
            out_chs: int,
            kernel_size: int = 1,
            stride: int = 1,
            padding: int = 0,
            groups: int = 1,
            bias: bool = False,
            lif: bool = True,
            pool: bool = False,
            dims: int = 2,
            v_threshold: float = 1.0,
            lif_impl: str | None = None,
    ):
        super().__init__()
        conv, norm = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv1d, nn.BatchNorm1d)
        self.lif = MultiStepLIF(v_threshold=v_threshold, impl=lif_impl) if lif else nn.Identity()
        self.conv = conv(in_chs, out_chs, kernel_size, stride, padding, groups=groups, bias=bias)
        self.bn = norm(out_chs)
        # -inf padding, floor mode (PyTorch's defaults), as the official Max_Embed.
        self.pool = nn.MaxPool2d(3, 2, 1) if pool else nn.Identity()

    def forward(self, x: torch.Tensor, return_spikes: bool = False):
        s = self.lif(x)
        y = self.pool(self.bn(self.conv(s.flatten(0, 1))))
        y = y.reshape(x.shape[:2] + y.shape[1:])
        return (y, s) if return_spikes else y


class Stem(nn.Module):
    """Official `Embed_Orig_ImageNet`: stride 4, the analog image enters the first conv directly.

    a = BN(conv3x3/2(x)); s = LIF(a); out = BN(conv3x3(LIF(BN(conv3x3/2(s))))) + BN(conv1x1/2(s)).
    """

    def __init__(self, in_chans: int, dim: int, lif_impl: str | None = None):
        super().__init__()
        self.conv1 = SpikeConvBN(in_chans, dim // 2, 3, 2, 1, lif=False)
        self.conv2 = SpikeConvBN(dim // 2, dim, 3, 2, 1, lif_impl=lif_impl)
        self.conv3 = SpikeConvBN(dim, dim, 3, 1, 1, lif_impl=lif_impl)
        self.shortcut = SpikeConvBN(dim // 2, dim, 1, 2, 0, lif=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, spikes = self.conv2(self.conv1(x), return_spikes=True)
        return self.conv3(x) + self.shortcut(spikes)


class MaxPoolEmbed(nn.Module):
    """Official `Embed_Max`: stride-2 patch embedding by 3x3 max-pools on both branches.

    s = LIF(x); out = BN(conv3x3(LIF(pool(BN(conv3x3(s)))))) + pool(BN(conv1x1(s))).
    """

    def __init__(self, in_dim: int, dim: int, lif_impl: str | None = None):
        super().__init__()
        self.conv1 = SpikeConvBN(in_dim, dim, 3, 1, 1, pool=True, lif_impl=lif_impl)
        self.conv2 = SpikeConvBN(dim, dim, 3, 1, 1, lif_impl=lif_impl)
        self.shortcut = SpikeConvBN(in_dim, dim, 1, 1, 0, lif=False, pool=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, spikes = self.conv1(x, return_spikes=True)
        return self.conv2(x) + self.shortcut(spikes)


class SpikingMlp(nn.Module):
    """Official `S_MLP`: LIF -> 1x1 conv -> BN, twice (the residual is added by the block)."""

    def __init__(self, dim: int, hidden_dim: int, lif_impl: str | None = None):
        super().__init__()
        if hidden_dim == dim:
            # The official S_MLP adds an inner residual in that case; no variant has it.
            raise ValueError("SpikingMlp needs hidden_dim != dim (mlp_ratio != 1)")
        self.fc1 = SpikeConvBN(dim, hidden_dim, 1, bias=True, lif_impl=lif_impl)
        self.fc2 = SpikeConvBN(hidden_dim, dim, 1, bias=True, lif_impl=lif_impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x))


class SpikeLinearAttention(nn.Module):
    """(q @ (k^T @ v)) * scale on binary q, k, v of shape (T, B, heads, N, d): no softmax.

    With 0/1 inputs every product is an integer count, exact in float32.
    """

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (q @ (k.transpose(-2, -1) @ v)) * self.scale

    def synaptic_ops(self, inputs, output):
        """For `spiking_stats`: k^T v accumulates v where k fires; q (k^T v) where q fires."""
        q, k, _ = inputs
        t, b, h, n, d = q.shape
        macs = float(t * b * h * n * d * d)
        return [("k_t_v", macs, k.double().mean().item()), ("q_kv", macs, q.double().mean().item())]

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class SpikingSelfAttention(nn.Module):
    """Official `SSA`: LIF, q/k/v 1x1 Conv1d-BN-LIF, q (k^T v) * 0.125, LIF (threshold 0.5), proj Conv1d-BN.

    Heads are contiguous channel groups (channel c -> head c // head_dim).
    """

    def __init__(
            self,
            dim: int,
            num_heads: int,
            scale: float = 0.125,
            attn_v_threshold: float = 0.5,
            lif_impl: str | None = None,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.x_lif = MultiStepLIF(impl=lif_impl)
        self.q = SpikeConvBN(dim, dim, 1, lif=False, dims=1)
        self.q_lif = MultiStepLIF(impl=lif_impl)
        self.k = SpikeConvBN(dim, dim, 1, lif=False, dims=1)
        self.k_lif = MultiStepLIF(impl=lif_impl)
        self.v = SpikeConvBN(dim, dim, 1, lif=False, dims=1)
        self.v_lif = MultiStepLIF(impl=lif_impl)
        self.attn = SpikeLinearAttention(scale)
        self.attn_lif = MultiStepLIF(v_threshold=attn_v_threshold, impl=lif_impl)
        self.proj = SpikeConvBN(dim, dim, 1, bias=True, lif=False, dims=1)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        t, b, c, n = x.shape
        return x.reshape(t, b, self.num_heads, c // self.num_heads, n).transpose(-2, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b, c, h, w = x.shape
        s = self.x_lif(x).flatten(3)  # (T, B, C, N)
        q = self._heads(self.q_lif(self.q(s)))
        k = self._heads(self.k_lif(self.k(s)))
        v = self._heads(self.v_lif(self.v(s)))
        y = self.attn(q, k, v).transpose(-2, -1).reshape(t, b, c, h * w)
        return self.proj(self.attn_lif(y)).reshape(t, b, c, h, w)


def _drop_path_time_major(drop_path: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # timm's DropPath drops along dim 0; drop whole samples (dim 1) at every time step.
    return drop_path(x.transpose(0, 1)).transpose(0, 1)


class MaxFormerBlock(nn.Module):
    """x = x + mixer(x); x = x + mlp(x). Mixer: depth-wise conv unit (stages 0-1) or spiking attention."""

    def __init__(
            self,
            dim: int,
            mixer: nn.Module,
            mlp_ratio: float = 4.0,
            drop_path: float = 0.0,
            lif_impl: str | None = None,
    ):
        super().__init__()
        self.mixer = mixer
        self.mlp = SpikingMlp(dim, int(dim * mlp_ratio), lif_impl=lif_impl)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_path is None:
            x = x + self.mixer(x)
            return x + self.mlp(x)
        x = x + _drop_path_time_major(self.drop_path, self.mixer(x))
        return x + _drop_path_time_major(self.drop_path, self.mlp(x))


class MaxFormerStage(nn.Module):
    def __init__(self, downsample: nn.Module, blocks: Sequence[nn.Module]):
        super().__init__()
        self.grad_checkpointing = False
        self.downsample = downsample
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


class SpikingHead(nn.Module):
    """Spatial pool per time step -> LIF -> [dropout] -> Linear per step -> mean over T.

    `pre_logits` returns the firing rate mean_t(LIF(pool(x))) (the official
    model's output with num_classes=0). `global_pool=''` (no pooling) is
    allowed without a classifier only: it returns the per-position firing rate.
    """

    def __init__(self, in_dim: int, num_classes: int, pool_type: str = "avg", drop_rate: float = 0.0,
                 lif_impl: str | None = None):
        super().__init__()
        self.in_dim = in_dim
        self.lif = MultiStepLIF(impl=lif_impl)
        self.drop = nn.Dropout(drop_rate)
        self.reset(num_classes, pool_type)

    def reset(self, num_classes: int, pool_type: str | None = None) -> None:
        if pool_type is not None:
            if not pool_type and num_classes > 0:
                raise ValueError("global_pool='' (no pooling) needs num_classes=0")
            self.global_pool = SelectAdaptivePool2d(pool_type=pool_type, flatten=True)
        if not self.global_pool.is_identity() or num_classes == 0:
            width = self.in_dim * self.global_pool.feat_mult()
            self.fc = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()
        else:
            raise ValueError("a classifier needs pooling: give global_pool ('avg', 'max', ...)")

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        b, t = x.shape[:2]
        x = x.transpose(0, 1)  # time-major (T, B, C, H, W)
        if not self.global_pool.is_identity():
            x = self.global_pool(x.flatten(0, 1)).reshape(t, b, -1)
        s = self.lif(x)
        if pre_logits:
            return s.mean(0)
        return self.fc(self.drop(s)).mean(0)


@fx_leaf  # torch.fx: the layout follows the input's rank
def _time_major(x: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, C, H, W) image -> (steps, B, C, H, W), the image at every step; (B, T', C, H, W) frames (event
    data, as the official forward accepts) -> (T', B, C, H, W)."""
    if x.ndim == 5:
        return x.transpose(0, 1).contiguous()
    return x.unsqueeze(0).repeat(steps, 1, 1, 1, 1)


@handles_empty_batch
class MaxFormer(StagedModelApi, nn.Module):
    """Max-Former (ImageNet): stride-4 spiking stem, DWC7 x1, Max-Pool embed, DWC5 x2, Max-Pool embed, SSA x7.

    Args:
        in_chans: input channels.
        num_classes: classifier outputs (0: the head returns the firing rate of its LIF).
        global_pool: spatial pooling before the head's LIF ('avg' official; 'max', 'avgmax', ...).
        embed_dim: width of the last stage; stage widths are embed_dim / 4, / 2, / 1.
        depths: blocks per stage (official 1, 2, 7).
        num_heads: attention heads of the last stage (default embed_dim // 64, as official).
        mlp_ratio: MLP expansion.
        T: time steps the image is presented for (official configs: 1 or 4).
        mixer_kernels: depth-wise kernel of the conv mixers of stages 0 and 1 (official 7, 5).
        attn_scale: constant attention scale (official 0.125 for every head_dim).
        attn_v_threshold: firing threshold of the LIF after the attention product (official 0.5).
        drop_rate: dropout on the head's spikes (official 0).
        drop_path_rate: stochastic depth on the residual branches (official 0; not in the paper).
        lif_impl: 'auto', 'triton' or 'reference' for every LIF (None: ZOO_KERNELS_IMPL, then the device).
    """

    # forward_features' layout: (B, T, C, H, W), the time steps kept for the head's LIF. timm's formats
    # (NCHW, NHWC, NCL, NLC) have no time axis, so `output_fmt` is not set: timm's checks that assume a
    # 4-D map (its test_model_default_cfgs) do not apply: a declared exception (tests/timm_suite).
    features_fmt = "NTCHW"

    def __init__(
            self,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            embed_dim: int = 384,
            depths: Sequence[int] = (1, 2, 7),
            num_heads: int | None = None,
            mlp_ratio: float = 4.0,
            T: int = 4,
            mixer_kernels: Sequence[int] = (7, 5),
            attn_scale: float = 0.125,
            attn_v_threshold: float = 0.5,
            drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            lif_impl: str | None = None,
    ):
        super().__init__()
        check_model_args(type(self).__name__, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                         drop_path_rate=drop_path_rate)
        if len(depths) != 3 or len(mixer_kernels) != 2:
            raise ValueError(f"Max-Former has 3 stages and 2 conv-mixer kernels; got depths={depths}, "
                             f"mixer_kernels={mixer_kernels}")
        if embed_dim % 8:
            raise ValueError(f"embed_dim must be a multiple of 8 (stem width embed_dim / 8), got {embed_dim}")
        if int(T) < 1:
            raise ValueError(f"T (time steps) must be >= 1, got {T}")
        num_heads = num_heads or max(embed_dim // 64, 1)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.T = int(T)
        dims = (embed_dim // 4, embed_dim // 2, embed_dim)
        self.num_features = self.head_hidden_size = embed_dim
        self.drop_rate = drop_rate

        self.stem = Stem(in_chans, dims[0], lif_impl)
        total = sum(depths)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        stages, self.feature_info = [], []
        for i, depth in enumerate(depths):
            blocks = []
            for j in range(depth):
                if i < 2:
                    k = mixer_kernels[i]
                    mixer = SpikeConvBN(dims[i], dims[i], k, 1, k // 2, groups=dims[i], bias=True, lif_impl=lif_impl)
                else:
                    mixer = SpikingSelfAttention(dims[i], num_heads, attn_scale, attn_v_threshold, lif_impl)
                blocks.append(MaxFormerBlock(dims[i], mixer, mlp_ratio, rates[sum(depths[:i]) + j], lif_impl))
            downsample = MaxPoolEmbed(dims[i - 1], dims[i], lif_impl) if i else nn.Identity()
            stages.append(MaxFormerStage(downsample, blocks))
            self.feature_info.append(dict(num_chs=dims[i], reduction=4 * 2 ** i, module=f"stages.{i}"))
        self.stages = nn.Sequential(*stages)
        self.head = SpikingHead(embed_dim, num_classes, global_pool, drop_rate, lif_impl)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # Official: trunc_normal(0.02) / zero bias on Conv2d, BN2d (1, 0); Conv1d, BN1d
        # and the Linear head keep PyTorch's defaults.
        if isinstance(m, nn.Conv2d):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def set_lif_impl(self, impl: str | None) -> None:
        """Route every LIF to 'triton', 'reference' or 'auto' (None: ZOO_KERNELS_IMPL, then the device)."""
        for m in self.modules():
            if isinstance(m, MultiStepLIF):
                m.impl = impl

    def _time_major_input(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) image -> (T, B, C, H, W), the image at every step; (B, T', C, H, W) frames -> (T', B, ...)."""
        if torch.jit.is_scripting():
            return x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        if not is_fx_proxy(x):  # (torch.fx symbolic tracing: nothing to check)
            check_image_input(x.flatten(0, 1) if x.ndim == 5 else x, self.in_chans, model_name(self),
                              multiple_of=PATCH)
        return _time_major(x, self.T)

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
            time_mean: bool = True,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs (strides 4, 8, 16): the membrane streams, averaged over T.

        Args:
            x: image batch (B, in_chans, H, W), H and W multiples of 16 (or frames (B, T, C, H, W)).
            indices: take the last n stages if int, all if None, these stages if a sequence.
            norm: no feature norms exist; must be False.
            stop_early: stop after the last stage taken.
            output_fmt: only 'NCHW'.
            intermediates_only: return only the intermediates.
            time_mean: average each stage output over T (B, C, H, W); False keeps the
                time steps, (B, T, C, H, W).
        """
        # Own loop, not staged_intermediates: the stages run time-major (T, B, ...) and each output is reduced over T.
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        if norm:
            raise ValueError("Max-Former has no feature norms: norm must be False")
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        stages = self.stages if torch.jit.is_scripting() or not stop_early else self.stages[:max_index + 1]
        intermediates = []
        x = self.stem(self._time_major_input(x))
        for i, stage in enumerate(stages):
            x = stage(x)
            if i in take_indices:
                intermediates.append(x.mean(0) if time_mean else x.transpose(0, 1))
        if intermediates_only:
            return intermediates
        return x.transpose(0, 1), intermediates

    def prune_intermediate_layers(
            self,
            indices: int | list[int] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> list[int]:
        """Drop the stages (and the head) that the requested intermediates do not need."""
        # prune_staged's head step without feature norms or reset_other (the head's LIF is its pre-logits).
        take_indices, pruned_end = prune_stages(self, indices)
        if pruned_end:
            self.head.in_dim = self.num_features
        if prune_head or pruned_end:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the last stage's membrane stream, batch-first (B, T, C, H/16, W/16)."""
        x = self.stem(self._time_major_input(x))
        return self.stages(x).transpose(0, 1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# Official key (`Max_Former` state dict, imagenet/max_former.py) -> ours, applied in order.
OFFICIAL_KEY_RULES = [
    (r"^patch_embed1\.embed1\.", "stem.conv1."),
    (r"^patch_embed1\.embed2\.", "stem.conv2."),
    (r"^patch_embed1\.embed3\.", "stem.conv3."),
    (r"^patch_embed1\.embed4\.", "stem.shortcut."),
    (r"^patch_embed([23])\.max_embed1\.", lambda m: f"stages.{int(m[1]) - 1}.downsample.conv1."),
    (r"^patch_embed([23])\.embed1\.", lambda m: f"stages.{int(m[1]) - 1}.downsample.conv2."),
    (r"^patch_embed([23])\.max_embed2\.", lambda m: f"stages.{int(m[1]) - 1}.downsample.shortcut."),
    (r"\.embed_(conv|bn)\.", r".\1."),
    (r"^stage([123])\.", lambda m: f"stages.{int(m[1]) - 1}.blocks."),
    (r"\.mixer\.conv5?\.", ".mixer.conv."),        # stage 1 names its 7x7 conv `conv5`
    (r"\.mixer\.conv5?_bn\.", ".mixer.bn."),
    (r"\.mlp\.fc([12])_(conv|bn)\.", r".mlp.fc\1.\2."),
    (r"\.attn\.(q|k|v|proj)_(conv|bn)\.", r".mixer.\1.\2."),
    (r"^head\.(weight|bias)$", r"head.fc.\1"),
]


def official_key_order(depths: Sequence[int] = (1, 2, 7)) -> list[str]:
    """The official model's state_dict keys in registration order (`Max_Former`, imagenet/max_former.py).

    Not the forward order: all three patch embeddings come before the stages.
    """
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

    def unit(prefix: str, conv: str, norm: str, bias: bool = False) -> list[str]:
        biases = [f"{prefix}{conv}.bias"] if bias else []
        return [f"{prefix}{conv}.weight", *biases, *(f"{prefix}{norm}.{b}" for b in bn)]

    keys = []
    for name in ("embed1", "embed2", "embed3", "embed4"):
        keys += unit(f"patch_embed1.{name}.", "embed_conv", "embed_bn")
    for i in (2, 3):
        for name in ("max_embed1", "embed1", "max_embed2"):
            keys += unit(f"patch_embed{i}.{name}.", "embed_conv", "embed_bn")
    mlp = lambda p: unit(p, "fc1_conv", "fc1_bn", True) + unit(p, "fc2_conv", "fc2_bn", True)
    for j in range(depths[0]):
        keys += unit(f"stage1.{j}.mixer.", "conv5", "conv5_bn", True) + mlp(f"stage1.{j}.mlp.")
    for j in range(depths[1]):
        keys += unit(f"stage2.{j}.mixer.", "conv", "conv_bn", True) + mlp(f"stage2.{j}.mlp.")
    for j in range(depths[2]):
        p = f"stage3.{j}.attn."
        keys += unit(p, "q_conv", "q_bn") + unit(p, "k_conv", "k_bn") + unit(p, "v_conv", "v_bn")
        keys += unit(p, "proj_conv", "proj_bn", True) + mlp(f"stage3.{j}.mlp.")
    return keys + ["head.weight", "head.bias"]


def _official_names_by_position(state_dict: dict[str, torch.Tensor], model: MaxFormer) -> dict[str, torch.Tensor]:
    """Give a checkpoint with other key names the official names by position (as `imagenet/test.py` loads).

    Requires the official count and every shape to match the official key at that position.
    """
    depths = [len(stage.blocks) for stage in model.stages]
    official = official_key_order(depths)
    if len(state_dict) != len(official):
        raise CheckpointMismatchError(
            f"checkpoint keys are not the official Max-Former names and there are {len(state_dict)} of them, "
            f"not the official {len(official)}: cannot map them by position")
    ours = model.state_dict()
    our_names = list(rename_keys(dict.fromkeys(official), OFFICIAL_KEY_RULES))
    out = {}
    for i, ((key, value), name) in enumerate(zip(state_dict.items(), official)):
        expected = ours.get(our_names[i])
        if expected is not None and expected.shape != value.shape and not name.startswith("head."):
            raise CheckpointMismatchError(
                f"position {i}: checkpoint key {key!r} has shape {tuple(value.shape)}, the official key there "
                f"({name!r}) has {tuple(expected.shape)}: not an official Max-Former checkpoint in official order")
        out[name] = value
    return out


def checkpoint_filter_fn(state_dict: dict[str, Any], model: MaxFormer) -> dict[str, torch.Tensor]:
    """Official Max-Former checkpoint -> this model.

    Accepts the training wrappers (`state_dict` of timm's CheckpointSaver, `model`),
    `module.` prefixes, already-converted state dicts, and files whose key names
    differ from the current official code but follow its registration order
    (mapped by position, shape-checked, as the official `test.py` loads the
    released files). A head whose shape does not fit (other num_classes) is
    dropped and stays at its init; a first conv for other `in_chans` is adapted.
    """
    state_dict = strip_prefixes(unwrap_state_dict(state_dict, model), ("module.",))
    if "stem.conv1.conv.weight" not in state_dict:  # official layout
        official = set(official_key_order([len(s.blocks) for s in model.stages]))
        if 2 * sum(k in official for k in state_dict) < len(state_dict):  # mostly other names
            state_dict = _official_names_by_position(state_dict, model)
        state_dict = rename_keys(state_dict, OFFICIAL_KEY_RULES)
    expected = model.state_dict()
    for key in ("head.fc.weight", "head.fc.bias"):
        if key in state_dict and (key not in expected or expected[key].shape != state_dict[key].shape):
            del state_dict[key]
    if "head.fc.weight" in expected and "head.fc.weight" not in state_dict:
        for key in ("head.fc.weight", "head.fc.bias"):
            state_dict.pop(key, None)
            state_dict[key] = expected[key]
    first = "stem.conv1.conv.weight"
    if first in state_dict and state_dict[first].shape[1] != model.in_chans:
        state_dict[first] = adapt_input_conv(model.in_chans, state_dict[first])
    return check_state_dict(state_dict, model, classifier="head.fc")


def _time_steps_of(variant: str, kwargs: dict[str, Any]) -> int:
    """T of the weights a tag names (`.t4_in1k` -> 4); the default tag's when none is given."""
    cfg = resolve_pretrained_cfg(variant, kwargs.get("pretrained_cfg"), kwargs.get("pretrained_cfg_overlay"))
    match = re.match(r"t(\d+)_", cfg.tag or "")
    return int(match.group(1)) if match else 4


@supports_ggem  # global_pool="ggem" (zoo.layers.ggem)
def _create_maxformer(variant: str, pretrained: bool = False, **kwargs: Any) -> MaxFormer:
    out_indices = kwargs.pop("out_indices", (0, 1, 2))
    kwargs.setdefault("T", _time_steps_of(variant, kwargs))
    return build_zoo_model(
        MaxFormer, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **kwargs,
    )


_RELEASE = "https://github.com/bic-L/MaxFormer/releases/download/checkpoints/"


def _cfg(filename: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "url": _RELEASE + filename,
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (14, 14), "min_input_size": (3, 16, 16),
        "crop_pct": 0.875, "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.conv1.conv", "classifier": "head.fc",
        "license": "unknown", "paper_ids": "arXiv:2505.18608",
        "paper_name": "Spiking Neural Networks Need High-Frequency Information",
        "origin_url": "https://github.com/bic-L/MaxFormer",
        "notes": ("no license file in the official repository; the weights are unlicensed",
                  "the tag's T (time steps) is the model's default T"),
        **kwargs,
    }


# The first tag of each name is its default (and sets its default T).
default_cfgs = generate_default_cfgs({
    "maxformer_10_384.t4_in1k": _cfg("10-384-T4.pth.tar"),
    "maxformer_10_512.t4_in1k": _cfg("10-512-T4.pth.tar"),
    "maxformer_10_512.t1_in1k": _cfg("10-512-T1.pth.tar"),
    "maxformer_10_768.t4_in1k": _cfg("10-768-T4.pth.tar"),
    "maxformer_10_768.t1_in1k": _cfg("10-768-T1.pth.tar"),
})

# The release files are timm CheckpointSaver dicts; the official evaluation
# (no EMA in the recipe) loads `state_dict`.
register_official_files({
    f"{name}.{tag}": OfficialFile(cfg.cfgs[tag].url.rsplit("/", 1)[-1], cfg.cfgs[tag].url, weights_key="state_dict")
    for name, cfg in default_cfgs.items() for tag in cfg.tags
})


@register_model
def maxformer_10_384(pretrained: bool = False, **kwargs: Any) -> MaxFormer:
    return _create_maxformer("maxformer_10_384", pretrained, **{"embed_dim": 384, **kwargs})


@register_model
def maxformer_10_512(pretrained: bool = False, **kwargs: Any) -> MaxFormer:
    return _create_maxformer("maxformer_10_512", pretrained, **{"embed_dim": 512, **kwargs})


@register_model
def maxformer_10_768(pretrained: bool = False, **kwargs: Any) -> MaxFormer:
    return _create_maxformer("maxformer_10_768", pretrained, **{"embed_dim": 768, **kwargs})
