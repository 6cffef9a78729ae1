"""mmdet 3 / mmseg 1 support: the zoo's backbones in OpenMMLab detectors and segmentors.

    python -m zoo.mm.install          # once: builds mmcv 2.1.0 (cached), installs mmdet 3.3 + mmseg 1.2.2

then, in a config (the shipped ones are in `zoo/configs/mmdet`, `zoo/configs/mmseg`):

    custom_imports = dict(imports=['zoo.mm'], allow_failed_imports=False)
    model = dict(backbone=dict(type='ZooBackbone', model_name='ravlt_s', ...))

Importing this package registers `ZooBackbone` (and the layer-wise lr decay
optimizer constructor) with the registries of whichever of mmdet / mmseg is
installed; it imports neither when they are absent (`import zoo` never
imports this package).  `zoo.mm.install` works without mmengine.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["available", "config_file", "list_configs", "registered_in"]

_REGISTERED: list[str] = []


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def available() -> dict[str, bool]:
    """Which OpenMMLab packages the adapters can register with."""
    return {name: _installed(name) for name in ("mmengine", "mmdet", "mmseg")}


def _config_root() -> Path:
    import zoo.configs

    return Path(zoo.configs.__file__).resolve().parent


def list_configs(framework: str = "") -> list[str]:
    """The shipped mmdet / mmseg configs, as paths relative to `zoo/configs` (e.g. 'mmdet/ravlt/...py')."""
    root = _config_root()
    folders = [framework] if framework else ["mmdet", "mmseg"]
    return sorted(p.relative_to(root).as_posix() for f in folders for p in (root / f).rglob("*.py")
                  if "_base_" not in p.parts)


def config_file(name: str) -> str:
    """Path of a shipped config: 'mask-rcnn_ravlt-s_fpn_1x_coco' or 'mmdet/ravlt/mask-rcnn_ravlt-s_fpn_1x_coco.py'."""
    root = _config_root()
    if (root / name).is_file():
        return str(root / name)
    stem = Path(name).name.removesuffix(".py")
    found = [c for c in list_configs() if Path(c).stem == stem]
    if len(found) != 1:
        import difflib

        close = difflib.get_close_matches(stem, [Path(c).stem for c in list_configs()], n=5)
        raise FileNotFoundError(f"no shipped mm config named {name!r}"
                                + (f"; close: {', '.join(close)}" if close else ""))
    return str(root / found[0])


def registered_in() -> list[str]:
    """The packages ('mmdet', 'mmseg') whose registries hold ZooBackbone."""
    return list(_REGISTERED)


def _register() -> None:
    if not _installed("mmengine"):
        return
    from ._compat import patch_mmengine
    from .backbone import ZooBackbone

    patch_mmengine()
    from .optim import LayerDecayOptimWrapperConstructor

    for scope in ("mmdet", "mmseg"):
        if not _installed(scope):
            continue
        registry = importlib.import_module(f"{scope}.registry")
        registry.MODELS.register_module(name="ZooBackbone", module=ZooBackbone, force=True)
        registry.OPTIM_WRAPPER_CONSTRUCTORS.register_module(
            name="ZooLayerDecayOptimWrapperConstructor", module=LayerDecayOptimWrapperConstructor, force=True)
        _REGISTERED.append(scope)


try:
    _register()
    _IMPORT_ERROR = None
except Exception as err:  # a broken mm stack must not stop `python -m zoo.mm.install` from repairing it
    import warnings

    _IMPORT_ERROR = err
    warnings.warn(f"zoo.mm: could not register ZooBackbone with mmdet/mmseg ({type(err).__name__}: {err}); "
                  "run `python -m zoo.mm.install` to (re)install mm support", RuntimeWarning, stacklevel=2)

if _REGISTERED:
    from .backbone import ZooBackbone  # noqa: E402
    from .optim import LayerDecayOptimWrapperConstructor  # noqa: E402

    __all__ += ["ZooBackbone", "LayerDecayOptimWrapperConstructor"]
