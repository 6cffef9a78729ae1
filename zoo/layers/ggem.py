"""GGeM: Group Generalized Mean pooling, as a timm pooling choice for any backbone.

*Group Generalized Mean Pooling for Vision Transformer*, Ko, Kim, Heo, Yun, Chun, Gu, Kim,
arXiv:2212.04114 (2022). There is no official code; the function is fixed by the zoo's
spec (`specs/ggem.md`, §2.2) and pinned by float64 golden fixtures.

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
- `apply_ggem(model, num_groups=None, ...)`: put GGeM on an already-built timm or zoo model
  (after its pretrained weights are loaded; no checkpoint has `p`). Works on timm's
  VisionTransformer / DeiT / Eva (`attn_pool`), and on every model whose head pools with a
  `SelectAdaptivePool2d` (ResNet, ConvNeXt, EfficientNet, MetaFormer, the zoo's families).
  `supports_ggem(create_fn)` wraps a family's `_create_*` function so that
  `timm.create_model(name, global_pool='ggem')` does exactly that.
"""
from __future__ import annotations

import contextlib
import functools
import types
from typing import Any, Callable, Optional

import torch
from timm.layers import SelectAdaptivePool2d
from torch import nn

from .checks import model_name

__all__ = [
    "GGeM", "ggem", "create_global_pool", "apply_ggem", "remove_ggem", "default_ggem_groups",
    "supports_ggem", "pop_ggem_kwargs", "fill_missing_ggem_p", "GGEM_KWARGS", "pooled_width",
]

_LAYOUTS = ("contiguous", "strided")
_FORMATS = ("NCHW", "NHWC", "NLC")


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


def ggem(
        x: torch.Tensor,
        p: torch.Tensor,
        eps: float = 1e-6,
        input_fmt: str = "NCHW",
        num_prefix_tokens: int = 0,
        group_layout: str = "contiguous",
        p_min: Optional[float] = None,
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
    if input_fmt == "NCHW":
        if x.ndim != 4:
            raise ValueError(f"GGeM with input_fmt='NCHW' takes (B, C, H, W), got {tuple(x.shape)}")
        tokens, pos_dim, chan_dim = x.flatten(2), 2, 1
    elif input_fmt == "NHWC":
        if x.ndim != 4:
            raise ValueError(f"GGeM with input_fmt='NHWC' takes (B, H, W, C), got {tuple(x.shape)}")
        tokens, pos_dim, chan_dim = x.flatten(1, 2), 1, 2
    elif input_fmt == "NLC":
        if x.ndim != 3:
            raise ValueError(f"GGeM with input_fmt='NLC' takes tokens (B, T, C), got {tuple(x.shape)}")
        tokens, pos_dim, chan_dim = x[:, num_prefix_tokens:], 1, 2
    else:
        raise ValueError(f"input_fmt must be one of {_FORMATS}, got {input_fmt!r}")
    if tokens.shape[pos_dim] == 0:
        raise ValueError(f"GGeM: no positions to pool in an input of shape {tuple(x.shape)}")
    if group_layout not in _LAYOUTS:
        raise ValueError(f"group_layout must be one of {_LAYOUTS}, got {group_layout!r}")

    compute_dtype = torch.promote_types(x.dtype, torch.float32)  # float32, or float64 for float64 input
    autocast_off = (torch.autocast(x.device.type, enabled=False)
                    if x.device.type in ("cpu", "cuda") and torch.is_autocast_enabled(x.device.type)
                    else contextlib.nullcontext())
    with autocast_off:
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
            num_features: Optional[int],
            num_groups: int,
            p_init: float = 3.0,
            eps: float = 1e-6,
            input_fmt: str = "NCHW",
            num_prefix_tokens: int = 0,
            group_layout: str = "contiguous",
            flatten: bool = True,
            p_min: Optional[float] = None,
            p_learnable: bool = True,
            device: Any = None,
    ):
        super().__init__()
        if num_groups < 1:
            raise ValueError(f"GGeM needs num_groups >= 1, got {num_groups}")
        if num_features is not None and num_features % num_groups:
            raise ValueError(f"GGeM: num_groups={num_groups} must divide num_features={num_features}")
        if input_fmt not in _FORMATS:
            raise ValueError(f"input_fmt must be one of {_FORMATS}, got {input_fmt!r}")
        if group_layout not in _LAYOUTS:
            raise ValueError(f"group_layout must be one of {_LAYOUTS}, got {group_layout!r}")
        if num_prefix_tokens and input_fmt != "NLC":
            raise ValueError("num_prefix_tokens applies to token input (input_fmt='NLC') only")
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
        if self.num_features is not None and channels != self.num_features:
            raise ValueError(f"GGeM built for {self.num_features} channels got an input of shape {tuple(x.shape)}")
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
        num_features: Optional[int] = None,
        num_groups: Optional[int] = None,
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


# ---------------------------------------------------------------------------------------------
# GGeM on an already-built model.

# The create_model keyword arguments that configure GGeM (global_pool='ggem' plus these).
GGEM_KWARGS = {
    "ggem_groups": "num_groups", "ggem_p_init": "p_init", "ggem_eps": "eps",
    "ggem_layout": "group_layout", "ggem_p_min": "p_min",
}


def default_ggem_groups(model: nn.Module) -> Optional[int]:
    """G for a model: its `ggem_groups` attribute if set, else the head count of its last
    attention layer (ViT-B: 12, RAVLT-T: 8), else None (CNNs: no natural choice)."""
    groups = getattr(model, "ggem_groups", None)
    if isinstance(groups, int):
        return groups
    heads = None
    for module in model.modules():  # registration order: the last stage comes last
        value = getattr(module, "num_heads", None)
        if isinstance(value, int) and value > 0:
            heads = value
    return heads


def _vit_like_kind(model: nn.Module) -> Optional[str]:
    """'vit' / 'eva' for the token models whose head pools through `attn_pool`, else None.

    'vit': the model slices the prefix tokens off before `attn_pool`; 'eva': it does not."""
    from timm.models.eva import Eva
    from timm.models.vision_transformer import VisionTransformer
    if type(model).__name__ == "VisionTransformerDistilled" or getattr(model, "dist_token", None) is not None:
        raise ValueError(
            f"{type(model).__name__} averages a class- and a distillation-token head and never pools; "
            "GGeM cannot replace its pooling (use the non-distilled model)")
    if isinstance(model, Eva):
        return "eva"
    if isinstance(model, VisionTransformer) or "attn_pool" in model.__dict__ or "attn_pool" in model._modules:
        # timm ViT, and any token model following its convention (the hook for zoo families):
        # `self.attn_pool = None` at build, and in forward_head, before its own pooling,
        # `if self.attn_pool is not None: x = self.attn_pool(x[:, self.num_prefix_tokens:])`.
        return "vit"
    return None


def _pool_slots(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules()
            if isinstance(m, (SelectAdaptivePool2d, GGeM)) and name.split(".")[-1] == "global_pool"]


def _set_submodule(model: nn.Module, path: str, module: Optional[nn.Module]) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, module)


def _pool_format(pool: nn.Module) -> tuple[str, bool]:
    """(input_fmt, flatten) of a timm SelectAdaptivePool2d (or GGeM)."""
    if isinstance(pool, GGeM):
        return pool.input_fmt, pool.flatten
    inner = getattr(pool, "pool", None)
    input_fmt = "NHWC" if getattr(inner, "dim", (2, 3)) == (1, 2) else "NCHW"
    flatten = isinstance(getattr(pool, "flatten", None), nn.Flatten) or getattr(inner, "flatten", False) is True
    return input_fmt, flatten


def pooled_width(model: nn.Module) -> Optional[int]:
    """The channels a model's global pool sees: `model.pooled_features` where the head changes the
    width before pooling (RAVLT / MAViT pool their 1x1 projection, 1024 to 2560 wide), else
    `model.num_features` (timm's convention: the head pools the backbone's output)."""
    width = getattr(model, "pooled_features", None)
    if width is None:
        width = getattr(model, "num_features", None)
    return width if isinstance(width, int) else None


def check_ggem_groups(model: nn.Module, num_groups: int, default: bool = False) -> None:
    """Fail at build time, not at the first forward, when G does not divide the pooled channels."""
    channels = pooled_width(model)
    if not isinstance(channels, int) or num_groups < 1 or channels % num_groups == 0:
        return
    divisors = [d for d in range(1, channels + 1) if channels % d == 0]
    nearest = sorted(divisors, key=lambda d: (abs(d - num_groups), d))[:3]
    why = (f"the default, the last attention layer's head count, is {num_groups}" if default
           else f"ggem_groups={num_groups}")
    name = model_name(model)
    raise ValueError(
        f"GGeM cannot split the {channels} pooled channels of {name} into equal groups: {why}. "
        f"Pass ggem_groups= (num_groups=) with a divisor of {channels}, e.g. {', '.join(map(str, sorted(nearest)))}")


def apply_ggem(
        model: nn.Module,
        num_groups: Optional[int] = None,
        p_init: float = 3.0,
        eps: float = 1e-6,
        group_layout: str = "contiguous",
        p_min: Optional[float] = None,
        p_learnable: bool = True,
) -> nn.Module:
    """Replace the global pooling of a built timm / zoo model by GGeM, in place; returns the model.

    Call it after loading pretrained weights (they have no `p`). What it does:

    - timm `VisionTransformer` (ViT, DeiT, ...): `model.attn_pool = GGeM(..., 'NLC')`, which
      ViT's `pool` feeds the patch tokens (prefix tokens sliced off), and `model.global_pool =
      'ggem'`. Norm placement is the model's: a `global_pool='token'` model pools its final-
      normed tokens (the zoo default), an `'avg'` model pools raw tokens then applies `fc_norm`.
      Eva: the same, with the prefix tokens excluded by GGeM itself. Distilled models, models
      with `map`/`prr` attention pooling or `pool_include_prefix=True` are refused.
    - Any other model whose head pools with a `SelectAdaptivePool2d` named `global_pool`
      (ResNet, EfficientNet, ConvNeXt's NormMlpClassifierHead, MetaFormer, RAVLT, ...): that
      module is replaced by `GGeM(input_fmt='NCHW'|'NHWC', flatten=as before)`.
    - `model.reset_classifier(n)` and `(n, 'ggem')` keep the GGeM module (and its p); any
      other pool type removes it and restores the model's own pooling.

    Args:
        num_groups: G; default: `default_ggem_groups(model)` (the last attention layer's
            head count); required for models without attention heads (G = 1 is GeM).
        p_init, eps, group_layout, p_min, p_learnable: as `GGeM`.
    """
    if getattr(model, "_ggem_slot", None) is not None:
        remove_ggem(model)
    default = num_groups is None
    if default:
        num_groups = default_ggem_groups(model)
        if num_groups is None:
            raise ValueError(
                f"{type(model).__name__} has no attention heads to take the GGeM group count from: "
                "pass num_groups (ggem_groups=...); 1 is GeM")
    check_ggem_groups(model, num_groups, default)
    kwargs = dict(p_init=p_init, eps=eps, group_layout=group_layout, p_min=p_min, p_learnable=p_learnable)
    device = next((p.device for p in model.parameters()), None)
    kind = _vit_like_kind(model)
    if kind is not None:
        if getattr(model, "attn_pool", None) is not None:
            raise ValueError(
                f"{type(model).__name__} already pools with attention (global_pool={model.global_pool!r}); "
                "build it with global_pool='token' or 'avg' before applying GGeM")
        if getattr(model, "pool_include_prefix", False):
            raise ValueError("GGeM pools the patch tokens only; the model has pool_include_prefix=True")
        prefix = model.num_prefix_tokens if kind == "eva" else 0  # ViT's pool() slices them itself
        model.attn_pool = GGeM(pooled_width(model), num_groups, input_fmt="NLC", num_prefix_tokens=prefix,
                               device=device, **kwargs)
        slot = dict(path="attn_pool", base_pool=model.global_pool)
        model.global_pool = "ggem"
    else:
        slots = _pool_slots(model)
        if len(slots) != 1:
            raise ValueError(
                f"apply_ggem found {'no' if not slots else 'several'} global pooling layer(s) in "
                f"{type(model).__name__} ({slots}); it replaces exactly one SelectAdaptivePool2d named "
                "'global_pool'")
        path = slots[0]
        old = model.get_submodule(path)
        input_fmt, flatten = _pool_format(old)
        base_pool = old.pool_type if isinstance(old, SelectAdaptivePool2d) else "avg"
        _set_submodule(model, path, GGeM(None, num_groups, input_fmt=input_fmt, flatten=flatten, device=device,
                                         **kwargs).train(old.training))
        slot = dict(path=path, base_pool=base_pool or "avg", input_fmt=input_fmt, flatten=flatten)
    model._ggem_slot = slot
    model.reset_classifier = types.MethodType(_reset_classifier_keeping_ggem, model)
    return model


def _restore_pool(model: nn.Module) -> nn.Module:
    """Take the GGeM module out and put the model's own pooling back; returns the GGeM module."""
    slot = model._ggem_slot
    ggem_module = model.get_submodule(slot["path"])
    if slot["path"] == "attn_pool":
        model.attn_pool = None
        model.global_pool = slot["base_pool"]
    else:
        _set_submodule(model, slot["path"], SelectAdaptivePool2d(
            pool_type=slot["base_pool"], flatten=slot["flatten"], input_fmt=slot["input_fmt"]))
    return ggem_module


def remove_ggem(model: nn.Module) -> nn.Module:
    """Undo `apply_ggem`: the model's own pooling (as it was built) comes back."""
    if getattr(model, "_ggem_slot", None) is None:
        return model
    _restore_pool(model)
    del model._ggem_slot
    model.__dict__.pop("reset_classifier", None)
    return model


def _reset_classifier_keeping_ggem(model: nn.Module, num_classes: int, global_pool: Optional[str] = None,
                                   *args: Any, **kwargs: Any) -> None:
    base_reset = type(model).reset_classifier
    if global_pool not in (None, "ggem"):  # another pooling: GGeM goes
        remove_ggem(model)
        base_reset(model, num_classes, global_pool, *args, **kwargs)
        return
    slot = model._ggem_slot
    ggem_module = _restore_pool(model)
    if slot["path"] == "attn_pool":
        base_reset(model, num_classes, None, *args, **kwargs)
        model.attn_pool = ggem_module
        model.global_pool = "ggem"
    else:
        base_reset(model, num_classes, *args, **kwargs)  # the model's default pool for its head
        _set_submodule(model, slot["path"], ggem_module)


def pop_ggem_kwargs(kwargs: dict[str, Any]) -> Optional[dict[str, Any]]:
    """Take `global_pool='ggem'` and the `ggem_*` options out of create_model kwargs.

    Returns apply_ggem's keyword arguments, or None when GGeM is not asked for (then any
    `ggem_*` option is an error).
    """
    options = {GGEM_KWARGS[k]: kwargs.pop(k) for k in list(kwargs) if k in GGEM_KWARGS}
    if kwargs.get("global_pool") != "ggem":
        if options:
            raise ValueError(f"ggem options {sorted(options)} given without global_pool='ggem'")
        return None
    del kwargs["global_pool"]
    return options


def supports_ggem(create_fn: Callable[..., nn.Module], base_pool: str = "avg") -> Callable[..., nn.Module]:
    """Wrap a family's `_create_<family>(variant, pretrained=False, **kwargs)` so that
    `global_pool='ggem'` (with `ggem_groups`, `ggem_p_init`, `ggem_eps`, `ggem_layout`,
    `ggem_p_min`) builds the model with `base_pool`, loads pretrained weights, then applies
    GGeM. `features_only` models have no head: the GGeM options are ignored there."""

    @functools.wraps(create_fn)
    def create(variant: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
        options = pop_ggem_kwargs(kwargs)
        if options is None or kwargs.get("features_only"):
            return create_fn(variant, pretrained, **kwargs)
        model = create_fn(variant, pretrained, global_pool=base_pool, **kwargs)
        return apply_ggem(model, **options)

    return create


def fill_missing_ggem_p(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """For a checkpoint filter: a model with GGeM loads a checkpoint without `p` (every released
    checkpoint) by keeping its initial exponents. Returns the completed state dict."""
    out = dict(state_dict)
    for name, module in model.named_modules():
        key = f"{name}.p" if name else "p"
        if isinstance(module, GGeM) and key not in out:
            out[key] = module.p.detach().clone()
    return out
