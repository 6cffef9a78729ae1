"""Compatibility shims for library combinations that break the papers' recipes.

timm's RandAugment ("rand-m9-mstd0.5-inc1", the DeiT recipe) maps magnitude 10
to posterize with 0 bits kept; Pillow used to return a black image for that,
newer Pillow (13) raises "bits must be between or equal to 1 and 8" and kills
the data loader. The shim restores the old meaning (keep no bits: black) and
is installed only when the installed Pillow rejects 0 bits.
"""
from __future__ import annotations

from PIL import Image, ImageOps


def _pillow_rejects_zero_bits() -> bool:
    try:
        ImageOps.posterize(Image.new("RGB", (1, 1)), 0)
    except ValueError:
        return True
    return False


def _posterize(img: Image.Image, bits_to_keep: int, **_: object) -> Image.Image:
    if bits_to_keep >= 8:
        return img
    if bits_to_keep <= 0:  # every bit cleared, as Pillow < 13 did
        return img.point(lambda _: 0)
    return ImageOps.posterize(img, bits_to_keep)


def patch_timm_posterize() -> bool:
    """Make timm's posterize ops accept 0 bits; return whether a patch was needed."""
    if not _pillow_rejects_zero_bits():
        return False
    from timm.data import auto_augment

    auto_augment.posterize = _posterize
    for name in ("Posterize", "PosterizeIncreasing", "PosterizeOriginal"):
        if name in auto_augment.NAME_TO_OP:
            auto_augment.NAME_TO_OP[name] = _posterize
    return True
