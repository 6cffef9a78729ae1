"""The zoo's model families; importing this package registers them all with timm.

Every module here that does not start with `_` is a family file and is
imported, so adding a family is adding one file.
"""
import importlib as _importlib
import pkgutil as _pkgutil

FAMILIES = tuple(sorted(info.name for info in _pkgutil.iter_modules(__path__) if not info.name.startswith("_")))
for _name in FAMILIES:
    _importlib.import_module(f"{__name__}.{_name}")
