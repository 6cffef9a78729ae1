"""mmengine 0.10.7 on a setuptools without `pkg_resources` (setuptools >= 80 dropped it).

mmengine looks up installed packages with `pkg_resources` (only in
`mmengine.utils.package_utils`), which every `mmdet::` / `mmseg::` base config
needs; on a current setuptools that raises ModuleNotFoundError.  Rather than
downgrade the environment's setuptools, `zoo.mm` replaces those three helpers
with `importlib.metadata` equivalents when `pkg_resources` is missing.  They
behave the same: distribution first, then the import system.
"""
from __future__ import annotations

import importlib.util
import os.path as osp
import sys
from importlib import metadata

__all__ = ["patch_mmengine"]


def is_installed(package: str) -> bool:
    try:
        metadata.distribution(package)
        return True
    except metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def package2module(package: str) -> str:
    dist = metadata.distribution(package)
    top_level = dist.read_text("top_level.txt")
    if top_level:
        return top_level.split("\n")[0]
    raise ValueError(f"can not infer the module name of {package}")


def get_installed_path(package: str) -> str:
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        if spec is None:
            raise
        if spec.origin is None:
            raise RuntimeError(f"{package} is a namespace package, which is invalid for `get_install_path`") from None
        return osp.dirname(spec.origin)
    location = str(dist.locate_file(""))
    possible = osp.join(location, package)
    if osp.exists(possible):
        return possible
    return osp.join(location, package2module(package))


def patch_mmengine() -> bool:
    """Install the replacements where mmengine bound the originals; False if nothing needed it."""
    try:
        import pkg_resources  # noqa: F401

        return False
    except ImportError:
        pass
    import mmengine.config.config  # noqa: F401  (binds the helpers by name)
    import mmengine.utils.package_utils as package_utils

    originals = {name: getattr(package_utils, name)
                 for name in ("is_installed", "get_installed_path", "package2module")}
    replacements = {"is_installed": is_installed, "get_installed_path": get_installed_path,
                    "package2module": package2module}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "mmengine" or name.startswith("mmengine.")):
            continue
        for attr, original in originals.items():
            if getattr(module, attr, None) is original:
                setattr(module, attr, replacements[attr])
    return True
