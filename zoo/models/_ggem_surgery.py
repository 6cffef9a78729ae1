"""GGeM on an already-built model: model surgery, kept beside the models (`zoo.layers.ggem` holds the module).

- `apply_ggem(model, num_groups=None, ...)`: put GGeM on an already-built timm or zoo model
  (after its pretrained weights are loaded; no checkpoint has `p`). Works on timm's
  VisionTransformer / DeiT / Eva (`attn_pool`), and on every model whose head pools with a
  `SelectAdaptivePool2d` (ResNet, ConvNeXt, EfficientNet, MetaFormer, the zoo's families).
- `supports_ggem(create_fn)` wraps a family's `_create_*` function so that
  `timm.create_model(name, global_pool='ggem')` does exactly that.
- `fill_missing_ggem_p`: for a checkpoint filter, a model with GGeM loads weights without `p`.

Public as `zoo.models.apply_ggem`, `zoo.models.remove_ggem`, `zoo.models.supports_ggem`.
"""
from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import torch
from timm.layers import SelectAdaptivePool2d
from torch import nn

from ..layers.checks import model_name
from ..layers.ggem import GGeM

__all__ = [
    "apply_ggem", "remove_ggem", "default_ggem_groups", "supports_ggem", "pop_ggem_kwargs",
    "fill_missing_ggem_p", "check_ggem_groups", "GGEM_KWARGS", "pooled_width",
]

# The create_model keyword arguments that configure GGeM (global_pool='ggem' plus these).
GGEM_KWARGS = {
    "ggem_groups": "num_groups", "ggem_p_init": "p_init", "ggem_eps": "eps",
    "ggem_layout": "group_layout", "ggem_p_min": "p_min",
}


def default_ggem_groups(model: nn.Module) -> int | None:
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


def _vit_like_kind(model: nn.Module) -> str | None:
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


def _set_submodule(model: nn.Module, path: str, module: nn.Module | None) -> None:
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


def pooled_width(model: nn.Module) -> int | None:
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
        num_groups: int | None = None,
        p_init: float = 3.0,
        eps: float = 1e-6,
        group_layout: str = "contiguous",
        p_min: float | None = None,
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


def _reset_classifier_keeping_ggem(model: nn.Module, num_classes: int, global_pool: str | None = None,
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


def pop_ggem_kwargs(kwargs: dict[str, Any]) -> dict[str, Any] | None:
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
