"""Deprecated: split in two. The `.npz` reader is `zoo.pretrained.load_npz` (beside the other readers); the
Flax layout rules went beside the family that needs them (`zoo.models.maxim`). The old names still work,
with a DeprecationWarning."""
from __future__ import annotations

import warnings
from typing import Any

_NEW_HOME = {"load_npz": "zoo.pretrained", "OPTIMIZER_TARGET": "zoo.pretrained",
             "conv_kernel": "zoo.models.maxim", "conv_transpose_kernel": "zoo.models.maxim",
             "dense_kernel": "zoo.models.maxim", "is_flax_tree": "zoo.models.maxim"}


def __getattr__(name: str) -> Any:
    if name not in _NEW_HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    warnings.warn(f"zoo.flax_convert.{name} moved to {_NEW_HOME[name]}.{name}", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(_NEW_HOME[name]), name)
