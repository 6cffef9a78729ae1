"""The embedded dataset: scikit-learn's handwritten digits as an image folder.

Written once into the cache dir (`$ZOO_CACHE`, else `$XDG_CACHE_HOME/zoo`, else
`~/.cache/zoo`) as `digits/{train,validation}/<class>/<n>.png`, so the trainer
reads it with timm's ordinary folder dataset, exactly as it reads ImageNet.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SIZE = 32  # the 8x8 originals, upsampled (nearest) so a stride-4 stem has room to work
VAL_FRACTION = 0.2
SPLIT_SEED = 0


def cache_dir() -> Path:
    if os.environ.get("ZOO_CACHE"):
        return Path(os.environ["ZOO_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zoo"


def digits_root(root: Path | None = None) -> Path:
    """Return the digits image folder, writing it first if it is not there yet."""
    root = Path(root) if root is not None else cache_dir() / "digits"
    if (root / "train").is_dir() and (root / "validation").is_dir():
        return root
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)  # pixel values are 0..16
    train_idx, val_idx = train_test_split(
        np.arange(len(images)), test_size=VAL_FRACTION, stratify=digits.target, random_state=SPLIT_SEED)
    root.parent.mkdir(parents=True, exist_ok=True)
    # Write into a temporary sibling and rename: concurrent or killed writers never leave half a dataset.
    tmp = Path(tempfile.mkdtemp(prefix=".digits-", dir=root.parent))
    try:
        for split, indices in (("train", train_idx), ("validation", val_idx)):
            for i in indices:
                folder = tmp / split / str(digits.target[i])
                folder.mkdir(parents=True, exist_ok=True)
                img = Image.fromarray(images[i], mode="L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.NEAREST)
                img.convert("RGB").save(folder / f"{i:04d}.png")
        try:
            os.rename(tmp, root)
        except OSError:
            if not (root / "validation").is_dir():  # lost a race with nobody: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
