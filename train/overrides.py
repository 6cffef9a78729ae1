"""Command-line overrides checked against the schema, so a typo names the nearest valid keys.

Hydra alone reports `Key 'lrr' is not in struct`; this check runs first and
says `unknown config key 'optim.lrr'; did you mean optim.lr, optim.base_lr?`.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from importlib import resources
from typing import Any

from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType

from .schema import TrainConfig


class UnknownKeyError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def _schema_keys(cls: type, prefix: str = "") -> dict[str, bool]:
    """Every dotted key of the schema -> whether it is an open dict (any sub-key allowed)."""
    keys: dict[str, bool] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key, hint = prefix + f.name, hints[f.name]
        if dataclasses.is_dataclass(hint):
            keys[key] = False
            keys.update(_schema_keys(hint, key + "."))
        else:
            keys[key] = typing.get_origin(hint) is dict or hint is dict
    return keys


def config_groups() -> set[str]:
    """Group names under configs/ (model, data, ..., experiment, hydra/launcher)."""
    root = resources.files("zoo.configs")
    groups = set()

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir() and not child.name.startswith(("_", ".")):
                groups.add(prefix + child.name)
                walk(child, prefix + child.name + "/")

    walk(root, "")
    return groups


def check_key(key: str, schema: dict[str, bool], groups: set[str]) -> str | None:
    """None if `key` is valid, else an error message with suggestions."""
    if key in schema or key in groups or key.startswith("hydra"):
        return None
    parts = key.split(".")
    for i in range(1, len(parts)):  # below an open dict such as model.kwargs anything goes
        if schema.get(".".join(parts[:i])):
            return None
    candidates = sorted(set(schema) | groups)
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.6)
    if not close:  # compare the last part within the same parent, e.g. optim.wd -> optim.weight_decay
        parent = ".".join(parts[:-1])
        siblings = [k for k in candidates if k.rpartition(".")[0] == parent]
        close = [f"{parent}.{m}" if parent else m for m in difflib.get_close_matches(
            parts[-1], [s.rpartition(".")[2] for s in siblings], n=3, cutoff=0.4)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown config key '{key}'{hint} (see `zoo-train --cfg job` for every key)"


def check_overrides(argv: list[str]) -> None:
    """Raise UnknownKeyError for the first override whose key the schema does not have."""
    args, _ = get_args_parser().parse_known_args(argv)
    overrides = OverridesParser.create().parse_overrides(args.overrides or [])
    schema, groups = _schema_keys(TrainConfig), config_groups()
    for override in overrides:
        # +key / ++key add keys on purpose, ~key deletes: Hydra checks those itself.
        if override.type != OverrideType.CHANGE:
            continue
        message = check_key(override.key_or_group, schema, groups)
        if message:
            raise UnknownKeyError(message)
