"""The zoo's model families; importing this package registers them all with timm.

Every module here that does not start with `_` is a family file and is
imported, so adding a family is adding one file.
"""
import importlib as _importlib
import pkgutil as _pkgutil

# The public names of the private helper modules (code outside zoo/models imports these, never `_*` modules).
from ._checkpoint import (
    CheckpointMismatchError,
    WeightsMismatchError,
    adapt_state_dict,
    family_filter,
)
from ._ggem_surgery import (
    GGEM_KWARGS,
    apply_ggem,
    check_ggem_groups,
    default_ggem_groups,
    fill_missing_ggem_p,
    pooled_width,
    pop_ggem_kwargs,
    remove_ggem,
    supports_ggem,
)
from ._placement import keeps_device_dtype, placed

__all__ = [
    "FAMILIES", "CheckpointMismatchError", "WeightsMismatchError", "adapt_state_dict", "family_filter",
    "GGEM_KWARGS", "apply_ggem", "check_ggem_groups", "default_ggem_groups", "fill_missing_ggem_p",
    "pooled_width", "pop_ggem_kwargs", "remove_ggem", "supports_ggem", "keeps_device_dtype", "placed",
]

FAMILIES = tuple(sorted(info.name for info in _pkgutil.iter_modules(__path__) if not info.name.startswith("_")))
for _name in FAMILIES:
    _importlib.import_module(f"{__name__}.{_name}")

# Tags whose official weights are unconfirmed stay out of timm.list_models(pretrained=True) until the user
# opts in (zoo.pretrained.allow_unconfirmed_weights).
from ..pretrained import apply_weights_policy as _apply_weights_policy  # noqa: E402

_apply_weights_policy()
