"""`zoo.create_model`: timm's factory with an error that suggests close names."""
from __future__ import annotations

import difflib
from typing import Any

import timm
from torch import nn

from . import models as _models


class UnknownModelError(ValueError):
    """A model name that neither the zoo nor timm has registered."""


def list_models(pattern: str = "*") -> list[str]:
    """The names the zoo registers (a subset of `timm.list_models()`)."""
    # Filter by where the entrypoint lives: a family file may share its short
    # module name with one of timm's (timm keys its module index by short name).
    return sorted(
        name for family in _models.FAMILIES for name in timm.list_models(pattern, module=family)
        if timm.models.model_entrypoint(name).__module__.startswith(f"{_models.__name__}."))


def create_model(model_name: str, **kwargs: Any) -> nn.Module:
    """`timm.create_model`, but an unknown name raises UnknownModelError with close matches."""
    architecture = model_name.split(":")[-1].split(".")[0]
    if ":" not in model_name and not timm.is_model(architecture):
        zoo_names = list_models()
        close = difflib.get_close_matches(architecture, zoo_names, n=5, cutoff=0.5)
        close += [n for n in difflib.get_close_matches(architecture, timm.list_models(), n=5, cutoff=0.6)
                  if n not in close]
        hint = f" Did you mean: {', '.join(close[:5])}?" if close else ""
        raise UnknownModelError(
            f"unknown model {model_name!r}.{hint} The zoo registers: {', '.join(zoo_names)}"
            " (and every timm model; see timm.list_models()).")
    return timm.create_model(model_name, **kwargs)
