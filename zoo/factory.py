"""`zoo.create_model`: timm's factory with an error that suggests close names."""
from __future__ import annotations

import difflib
from collections.abc import Sequence
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


def resolve_model_names(names: Sequence[str]) -> list[str]:
    """Names and wildcards (`ravlt_*`, `*_tiny`) -> registered model names, in the order given, each once.

    A wildcard matches the zoo's names; one that matches none of them matches timm's (`deit_*`). An
    unknown name, or a wildcard that matches nothing, raises UnknownModelError.
    """
    resolved: list[str] = []
    for name in names:
        if any(c in name for c in "*?["):
            matches = list_models(name) or timm.list_models(name)
            if not matches:
                raise UnknownModelError(f"no registered model matches {name!r} (the zoo's names: "
                                        f"{', '.join(list_models())}; and timm.list_models())")
        else:
            _check_name(name)
            matches = [name]
        resolved += [m for m in matches if m not in resolved]
    return resolved


def _check_name(model_name: str) -> None:
    """UnknownModelError with close names, unless the zoo or timm registers `model_name`."""
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


def create_model(model_name: str, **kwargs: Any) -> nn.Module:
    """`timm.create_model`, but an unknown name raises UnknownModelError with close matches."""
    _check_name(model_name)
    return timm.create_model(model_name, **kwargs)
