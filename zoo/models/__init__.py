"""The zoo's model families; importing this package registers them all with timm.

Every module here that does not start with `_` is a family file and is
imported, so adding a family is adding one file.
"""
import importlib as _importlib
import pkgutil as _pkgutil

FAMILIES = tuple(sorted(info.name for info in _pkgutil.iter_modules(__path__) if not info.name.startswith("_")))
for _name in FAMILIES:
    _importlib.import_module(f"{__name__}.{_name}")

# Tags whose official weights are unconfirmed stay out of timm.list_models(pretrained=True) until the user
# opts in (zoo.pretrained.allow_unconfirmed_weights).
from ..pretrained import apply_weights_policy as _apply_weights_policy  # noqa: E402

_apply_weights_policy()
