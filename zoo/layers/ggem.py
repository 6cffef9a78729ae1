"""GGeM: Group Generalized Mean pooling, as a timm pooling choice for any backbone.

*Group Generalized Mean Pooling for Vision Transformer*, Ko, Kim, Heo, Yun, Chun, Gu, Kim,
arXiv:2212.04114 (2022). There is no official code; the function below follows GeM
(Radenović et al., arXiv:1711.02512) and two public re-implementations (`model_cards/ggem.md`)
and is pinned by float64 golden fixtures.

For a sample, channel c of group g = g(c) and the N pooled positions (the patch tokens of a
ViT, class / register tokens excluded; every H*W position of a feature map):

    z[n, c] = max(x[n, c], eps)
    y[c]    = ( (1/N) * sum_n z[n, c] ** p[g] ) ** (1 / p[g])

with one learnable exponent per group (`p`, shape (G,), init 3). Groups are contiguous
channel blocks by default (`group_layout='contiguous'`: channels [g*C/G, (g+1)*C/G)), or
`'strided'` (g = c mod G). G = 1 is GeM, G = C is GeM with one p per channel.

Negative inputs (LayerNorm'ed ViT tokens are signed) are clamped to eps, as GeM and both
public re-implementations do: GGeM pools the positive part; a column that is all <= eps
pools to eps with zero gradient. p = 1 is average pooling only for non-negative inputs.

Numerics: the power mean is computed in float32 (float64 stays float64) whatever the input
dtype and whether or not autocast is on, in the max-scaled form

    s = max_n z (detached),   y = s * ( mean_n (z / s) ** p ) ** (1 / p)

which is exact (y is 1-homogeneous in z, so any constant s gives the same value and the
same gradients) and cannot overflow (z / s <= 1) or hit 0 ** (1/p) (the mean is >= 1/N),
so float16 tokens with outliers and large p neither overflow nor give NaN gradients.

Three ways to use it:

- `GGeM(...)`: the module, with the `SelectAdaptivePool2d` duck type timm heads use
  (`pool_type`, `feat_mult()`, `is_identity()`).
- `create_global_pool(pool_type, ...)`: for a model's own head, `'ggem'` or any timm pool.
- `zoo.models.apply_ggem(model, num_groups=None, ...)`: put GGeM on an already-built timm or
  zoo model (model surgery, so it lives with the models: `zoo/models/_ggem_surgery.py`).
"""
from __future__ import annotations

import warnings
from typing import Any

import torch
from timm.layers import SelectAdaptivePool2d
from torch import nn

from .amp import autocast_off
from .fx import fx_leaf, is_fx_proxy

__all__ = ["GGeM", "ggem", "create_global_pool"]

_LAYOUTS = ("contiguous", "strided")
# input_fmt -> (ndim, the shape it names) of the input GGeM takes.
_FORMATS = {"NCHW": (4, "(B, C, H, W)"), "NHWC": (4, "(B, H, W, C)"), "NLC": (3, "tokens (B, T, C)")}


def _check_choice(name: str, value: str, allowed: Any) -> None:
    if value not in allowed:
        raise ValueError(f"GGeM: {name} must be one of {tuple(allowed)}, got {value!r}")


def _check_input_shape(x: torch.Tensor, input_fmt: str) -> None:
    _check_choice("input_fmt", input_fmt, _FORMATS)
    ndim, shape = _FORMATS[input_fmt]
    if x.ndim != ndim:
        raise ValueError(f"GGeM: input_fmt={input_fmt!r} takes {shape}, got {tuple(x.shape)}")


def _channel_exponents(p: torch.Tensor, num_channels: int, group_layout: str) -> torch.Tensor:
    """p (G,) -> one exponent per channel (C,), in the group layout's order."""
    groups = p.shape[0]
    if num_channels % groups:
        raise ValueError(f"GGeM: {num_channels} channels cannot be split into {groups} equal groups; "
                         f"pass ggem_groups= (num_groups=) with a divisor of {num_channels}")
    per_group = num_channels // groups
    if group_layout == "contiguous":  # channel c -> group c // (C / G)
        return p.repeat_interleave(per_group)
    return p.repeat(per_group)  # strided: channel c -> group c % G


@fx_leaf  # torch.fx: its input checks and dtype / autocast choices are Python control flow
def ggem(
        x: torch.Tensor,
        p: torch.Tensor,
        eps: float = 1e-6,
        input_fmt: str = "NCHW",
        num_prefix_tokens: int = 0,
        group_layout: str = "contiguous",
        p_min: float | None = None,
) -> torch.Tensor:
    """Group generalized mean over the positions of x; returns (B, C) in x's dtype.

    Args:
        x: (B, C, H, W) for 'NCHW', (B, H, W, C) for 'NHWC', (B, T, C) tokens for 'NLC'.
        p: (G,) exponents, one per channel group; G must divide C.
        eps: inputs are clamped to >= eps before the power.
        num_prefix_tokens: 'NLC' only: leading tokens (class / register) left out of the pool.
        group_layout: 'contiguous' (channel c in group c // (C/G)) or 'strided' (c % G).
        p_min: if set, the exponents are clamped to >= p_min in the forward pass.
    """
    _check_input_shape(x, input_fmt)
    _check_choice("group_layout", group_layout, _LAYOUTS)
    if input_fmt == "NCHW":
        tokens, pos_dim, chan_dim = x.flatten(2), 2, 1
    elif input_fmt == "NHWC":
        tokens, pos_dim, chan_dim = x.flatten(1, 2), 1, 2
    else:  # NLC
        tokens, pos_dim, chan_dim = x[:, num_prefix_tokens:], 1, 2
    if tokens.shape[pos_dim] == 0:
        raise ValueError(f"GGeM: no positions to pool in an input of shape {tuple(x.shape)}")

    compute_dtype = torch.promote_types(x.dtype, torch.float32)  # float32, or float64 for float64 input
    with autocast_off(x.device.type):
        exps = _channel_exponents(p.to(compute_dtype), tokens.shape[chan_dim], group_layout)
        if p_min is not None:
            exps = exps.clamp(min=p_min)
        if chan_dim == 1:  # (B, C, N): exponents broadcast over the positions
            exps = exps[:, None]
        z = tokens.to(compute_dtype).clamp(min=eps)
        # Max-scaled power mean: exact for any constant scale (1-homogeneity), so the
        # scale is detached; every ratio is in (0, 1] and the mean is >= 1/N.
        scale = z.amax(dim=pos_dim, keepdim=True).detach()
        mean = (z / scale).pow(exps).mean(dim=pos_dim, keepdim=True)
        y = (scale * mean.pow(exps.reciprocal())).squeeze(pos_dim)
    return y.to(x.dtype)


class GGeM(nn.Module):
    """Group Generalized Mean pooling with one learnable exponent per channel group.

    Args:
        num_features: channels C (checked against G at build time and against the input at
            run time); None to take C from the input.
        num_groups: G, the number of exponents; must divide C. For ViTs the zoo uses the
            number of attention heads; CNNs have no natural choice (1 = GeM).
        p_init: initial value of every exponent (3, as GeM).
        eps: clamp floor for the input.
        input_fmt: 'NCHW' / 'NHWC' feature maps, or 'NLC' tokens.
        num_prefix_tokens: 'NLC' only: leading tokens (class / register) excluded.
        group_layout: 'contiguous' (zoo default) or 'strided' channel grouping.
        flatten: feature maps only: return (B, C) (True) or (B, C, 1, 1) (False, for heads
            that flatten later, as timm's NormMlpClassifierHead and MetaFormer do).
        p_min: clamp the exponents to >= p_min in the forward pass (None: unconstrained).
        p_learnable: train p (True) or keep it fixed.

    State: `p`, float32, shape (G,). Output: the input's dtype.
    """

    pool_type = "ggem"

    def __init__(
            self,
            num_features: int | None,
            num_groups: int,
            p_init: float = 3.0,
            eps: float = 1e-6,
            input_fmt: str = "NCHW",
            num_prefix_tokens: int = 0,
            group_layout: str = "contiguous",
            flatten: bool = True,
            p_min: float | None = None,
            p_learnable: bool = True,
            device: Any = None,
    ):
        super().__init__()
        if num_groups < 1:
            raise ValueError(f"GGeM: num_groups must be >= 1, got {num_groups}")
        if num_features is not None and num_features % num_groups:
            raise ValueError(f"GGeM: num_groups={num_groups} must divide num_features={num_features}")
        _check_choice("input_fmt", input_fmt, _FORMATS)
        _check_choice("group_layout", group_layout, _LAYOUTS)
        if num_prefix_tokens and input_fmt != "NLC":
            raise ValueError("GGeM: num_prefix_tokens applies to token input (input_fmt='NLC') only")
        self.num_features = num_features
        self.num_groups = num_groups
        self.p_init = float(p_init)
        self.eps = eps
        self.input_fmt = input_fmt
        self.num_prefix_tokens = num_prefix_tokens
        self.group_layout = group_layout
        self.flatten = flatten
        self.p_min = p_min
        self.p = nn.Parameter(torch.full((num_groups,), self.p_init, dtype=torch.float32, device=device),
                              requires_grad=p_learnable)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self.p.fill_(self.p_init)

    def feat_mult(self) -> int:
        return 1

    def is_identity(self) -> bool:
        return False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1] if self.input_fmt == "NCHW" else x.shape[-1]
        if self.num_features is not None and not is_fx_proxy(x) and channels != self.num_features:
            raise ValueError(f"GGeM: built for {self.num_features} channels, got an input of shape {tuple(x.shape)}")
        y = ggem(x, self.p, self.eps, self.input_fmt, self.num_prefix_tokens, self.group_layout, self.p_min)
        if self.input_fmt != "NLC" and not self.flatten:
            y = y[:, :, None, None]
        return y

    def extra_repr(self) -> str:
        return (f"num_features={self.num_features}, num_groups={self.num_groups}, p_init={self.p_init}, "
                f"eps={self.eps}, input_fmt={self.input_fmt!r}, num_prefix_tokens={self.num_prefix_tokens}, "
                f"group_layout={self.group_layout!r}, flatten={self.flatten}, p_min={self.p_min}")


def create_global_pool(
        pool_type: str,
        num_features: int | None = None,
        num_groups: int | None = None,
        flatten: bool = False,
        input_fmt: str = "NCHW",
        **ggem_kwargs: Any,
) -> nn.Module:
    """A head's global pool: `GGeM` for 'ggem', else timm's `SelectAdaptivePool2d`.

    `ggem_kwargs` are GGeM's (p_init, eps, group_layout, p_min, p_learnable).
    """
    if pool_type == "ggem":
        if num_groups is None:
            raise ValueError(
                "global_pool='ggem' needs ggem_groups (the number of channel groups, one exponent each; "
                "1 = GeM) for a model without attention heads")
        return GGeM(num_features, num_groups, input_fmt=input_fmt, flatten=flatten, **ggem_kwargs)
    if ggem_kwargs:
        raise ValueError(f"{sorted(ggem_kwargs)} apply only to global_pool='ggem', not {pool_type!r}")
    return SelectAdaptivePool2d(pool_type=pool_type, flatten=flatten, input_fmt=input_fmt)


# Moved to zoo.models (model surgery, not a layer); the old names keep working for a while.
_MOVED_TO_MODELS = ("apply_ggem", "remove_ggem", "supports_ggem", "default_ggem_groups", "pop_ggem_kwargs",
                    "fill_missing_ggem_p", "check_ggem_groups", "pooled_width", "GGEM_KWARGS")


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_MODELS:
        warnings.warn(f"zoo.layers.ggem.{name} moved to zoo.models.{name}", DeprecationWarning, stacklevel=2)
        import zoo.models
        return getattr(zoo.models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
