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

__all__ = ["available", "registered_in"]

_REGISTERED: list[str] = []


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def available() -> dict[str, bool]:
    """Which OpenMMLab packages the adapters can register with."""
    return {name: _installed(name) for name in ("mmengine", "mmdet", "mmseg")}


def registered_in() -> list[str]:
    """The packages ('mmdet', 'mmseg') whose registries hold ZooBackbone."""
    return list(_REGISTERED)


def _register() -> None:
    if not _installed("mmengine"):
        return
    from .backbone import ZooBackbone
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
                  "run `python -m zoo.mm.install` to (re)install mm support", RuntimeWarning)

if _REGISTERED:
    from .backbone import ZooBackbone  # noqa: E402
    from .optim import LayerDecayOptimWrapperConstructor  # noqa: E402

    __all__ += ["ZooBackbone", "LayerDecayOptimWrapperConstructor"]
