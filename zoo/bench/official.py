"""Official implementations, built with random weights from a local checkout of each family's repository.

`--official-root DIR` holds one folder per family (soft, ravlt, mavit, inline, iformer, poolformer), or
`--official-root FAMILY=DIR` names one. Nothing of the official code is committed here: each loader
imports the one model file it needs from the checkout. Imports that the forward never uses (cv2,
fvcore, SOFT's CUDA extension) are stubbed when missing; einops is needed (RALA / MALA / SOFT import
it). The builders use the official constructors with their default (ImageNet-1k) arguments, so the
official model has the zoo model's layout.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["OfficialModel", "OFFICIAL", "FAMILIES", "parse_roots", "build_official", "import_file"]


def _stub(name: str, **attrs) -> None:
    """Registers an empty module for an import the forward never uses, unless the real one is there."""
    try:
        importlib.import_module(name)
        return
    except ImportError:
        pass
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        if parent not in sys.modules:
            _stub(parent)
        setattr(sys.modules[parent], child, module)


@contextlib.contextmanager
def _timm_registry_untouched() -> Iterator[None]:
    """timm's @register_model as a no-op while official code is imported.

    Official files register their models with timm under names that timm or the zoo already use
    (PoolFormer's `poolformer_s12`, MaxFormer's `maxformer_10_384`): registering would replace those
    entries in this process, and a later timm or zoo row would build the official class.
    """
    import warnings

    import timm.models
    from timm.models import _registry

    with warnings.catch_warnings():  # timm 0.x's module name, kept by timm 1.0 with a deprecation warning
        warnings.simplefilter("ignore")
        legacy = importlib.import_module("timm.models.registry")
    modules = [timm.models, _registry, legacy]
    saved = [(m, m.register_model) for m in modules if hasattr(m, "register_model")]
    for module, _ in saved:
        module.register_model = lambda fn: fn
    try:
        yield
    finally:
        for module, original in saved:
            module.register_model = original


def import_file(path: Path, name: str) -> types.ModuleType:
    """Executes one file of a checkout as module `name` (its folder first on sys.path, for its own imports)."""
    if not path.is_file():
        raise FileNotFoundError(f"official code not found: {path} (check --official-root)")
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with _timm_registry_untouched():
            spec.loader.exec_module(module)
    except ModuleNotFoundError as err:
        top = (err.name or "").partition(".")[0]
        hint = f"pip install {top}" if top == err.name else f"{top} is installed, without that module"
        raise ModuleNotFoundError(f"the official code at {path} imports {err.name!r}, which is missing here "
                                  f"({hint})") from err
    return module


def _timm_04_aliases() -> None:
    # timm 0.4's module for to_2tuple; timm 1.0 keeps the function in timm.layers.
    from timm.layers import to_2tuple
    _stub("timm.models.layers.helpers", to_2tuple=to_2tuple)


def _fvcore_stub() -> None:
    _stub("fvcore.nn", FlopCountAnalysis=None, flop_count_table=None)


def _soft(root: Path, normalized: bool) -> nn.Module:
    # The official CPU path (kernel_method="torch", as every config with released weights) needs the
    # shims below, none of which changes the arithmetic: ones on the input's device
    # instead of .cuda(), the Newton routine called directly (its Function is CUDA-only), the
    # CUDA extension and cv2 stubbed, and SOFT-Norm's undefined super() name defined.
    _stub("cv2")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    importlib.import_module("SOFT")  # the checkout's package, before its CUDA extension is stubbed
    _stub("SOFT._C")
    package = types.ModuleType("official_soft")
    package.__path__ = [str(root / "models")]
    sys.modules["official_soft"] = package
    inner = import_file(root / "models" / "softmax_free_transformer.py", "official_soft.softmax_free_transformer")
    from SOFT.kernel.inverse import newton_inv

    def subtraction_gaussian_kernel_torch(q, k):
        mat_a = q ** 2. @ torch.ones(k.shape[-2:], device=q.device)
        mat_b = torch.ones(q.shape[-2:], device=q.device) @ k ** 2.
        return mat_a + mat_b - 2. * (q @ k)

    inner.subtraction_gaussian_kernel_torch = subtraction_gaussian_kernel_torch
    inner.newton_inverse_kernel = newton_inv
    inner.SoftmaxFreeSymNormAttentionKernel = inner.SoftmaxFreeNormAttentionKernel
    outer = import_file(root / "models" / "softmax_free_vision_transformer.py",
                        "official_soft.softmax_free_vision_transformer")
    builder = outer.soft_norm_tiny if normalized else outer.soft_tiny
    return builder(kernel_method="torch")


def _ravlt(root: Path, img_size: int) -> nn.Module:
    _fvcore_stub()
    return import_file(root / "classfication" / "RALA.py", "official_rala").RAVLT_T()


def _mavit(root: Path, img_size: int) -> nn.Module:
    _fvcore_stub()
    return import_file(root / "classfication_release" / "model.py", "official_mala").MALA_T()


def _inline_pvt(root: Path, img_size: int) -> nn.Module:
    # The official config's values (config.py: MODEL.INLINE.ATTN_TYPE 'IIII', PVT_LA_SR_RATIOS 1111).
    module = import_file(root / "models" / "inline_pvt.py", "official_inline_pvt")
    return module.inline_pvt_tiny(attn_type="IIII", la_sr_ratios="1111")


def _inline_deit(root: Path, img_size: int) -> nn.Module:
    # inline_deit_tiny goes through timm 0.4's build_model_with_cfg; with random weights that is the class,
    # built for the one input size it takes (its position embeddings), as the zoo's model is.
    module = import_file(root / "models" / "inline_deit.py", "official_inline_deit")
    return module.VisionTransformer(img_size=img_size, patch_size=16, embed_dim=192, depth=12, num_heads=6)


def _iformer(root: Path, img_size: int) -> nn.Module:
    _timm_04_aliases()
    return import_file(root / "models" / "inception_transformer.py", "official_iformer").iformer_small()


def _poolformer(root: Path, img_size: int) -> nn.Module:
    _timm_04_aliases()
    return import_file(root / "models" / "poolformer.py", "official_poolformer").poolformer_s12()


@dataclass(frozen=True)
class OfficialModel:
    """How to build the official counterpart of one zoo model."""
    label: str                                  # the paper's name, e.g. "RAVLT-T"
    family: str                                 # its folder under --official-root
    build: Callable[[Path, int], nn.Module]     # (checkout, input size) -> model with random weights


# zoo model name -> its official builder. The smallest variant of each family with a runnable official CPU path.
OFFICIAL: dict[str, OfficialModel] = {
    "ravlt_t": OfficialModel("RAVLT-T", "ravlt", _ravlt),
    "mavit_t": OfficialModel("MAViT-T", "mavit", _mavit),
    "soft_tiny": OfficialModel("SOFT-T", "soft", lambda root, img_size: _soft(root, False)),
    "soft_norm_tiny": OfficialModel("SOFT-Norm-T", "soft", lambda root, img_size: _soft(root, True)),
    "inline_pvt_tiny": OfficialModel("InLine-PVT-T", "inline", _inline_pvt),
    "inline_deit_tiny": OfficialModel("InLine-DeiT-T", "inline", _inline_deit),
    "inception_transformer_small": OfficialModel("iFormer-S", "iformer", _iformer),
    "poolformerv1_s12": OfficialModel("PoolFormer-S12", "poolformer", _poolformer),
}
FAMILIES = tuple(sorted({m.family for m in OFFICIAL.values()}))


def parse_roots(values: Iterable[str]) -> dict[str, Path]:
    """`--official-root` values (DIR, a folder with one checkout per family, or FAMILY=DIR) -> family: checkout."""
    roots: dict[str, Path] = {}
    for value in values:
        family, sep, path = value.partition("=")
        if sep:
            if family not in FAMILIES:
                raise ValueError(f"--official-root {value}: unknown family {family!r}; expected one of "
                                 f"{', '.join(FAMILIES)} (or a folder holding one checkout per family)")
            roots[family] = Path(path)
        else:
            for fam in FAMILIES:
                roots.setdefault(fam, Path(value) / fam)
    return roots


def build_official(zoo_name: str, roots: dict[str, Path], img_size: int = 224) -> nn.Module:
    """The official model matching `zoo_name`, with random weights (seeded as the zoo's rows are)."""
    if zoo_name not in OFFICIAL:
        raise KeyError(f"no official loader for {zoo_name!r}; there are loaders for {', '.join(OFFICIAL)}")
    entry = OFFICIAL[zoo_name]
    root: Path | None = roots.get(entry.family)
    if root is None:
        raise FileNotFoundError(f"no --official-root for the {entry.family} checkout")
    if not root.is_dir():
        raise FileNotFoundError(f"official checkout {root} is not a directory (check --official-root)")
    torch.manual_seed(0)
    return entry.build(root, img_size)
