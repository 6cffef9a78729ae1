"""Helpers and fixtures of the mm tests (re-exported by conftest.py): tiny synthetic COCO / ADE20K
datasets, a tiny RAVLT backbone, an official-layout checkpoint, a loss-recording hook.

Every image holds a few filled rectangles ("box") and discs ("disc") on a
noisy background; the COCO set has their boxes and polygon masks, the ADE set
their label maps.  Small enough that a real Mask R-CNN / UperNet trains a few
iterations and evaluates on 2 CPU cores in well under a minute each.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from golden import load_golden  # noqa: E402

CLASSES = ("box", "disc")
IMAGE_SIZE = 96
NUM_IMAGES = 6

# The shrunk RAVLT of the golden fixtures (ravlt__tiny_cfg*), in the zoo's terms.
TINY_RAVLT = dict(
    embed_dims=[16, 32, 48, 64], depths=[1, 1, 1, 1], num_heads=[1, 2, 3, 4],
    layer_scale_init_values=[1, 1, 1e-6, 1e-6], drop_path_rate=0.0)


def _shapes(rng: np.random.Generator, size: int):
    """(class index, polygon [(x, y), ...], boolean mask) for 1-3 shapes that do not touch the border."""
    out = []
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(rng.integers(1, 4)):
        cls = int(rng.integers(0, 2))
        if cls == 0:
            w, h = rng.integers(size // 5, size // 2, size=2)
            x0, y0 = rng.integers(2, size - 2 - w), rng.integers(2, size - 2 - h)
            poly = [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)]
            mask = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
        else:
            r = int(rng.integers(size // 10, size // 5))
            cx, cy = rng.integers(r + 2, size - r - 2, size=2)
            poly = [(cx + r * math.cos(t), cy + r * math.sin(t))
                    for t in np.linspace(0, 2 * math.pi, 24, endpoint=False)]
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        out.append((cls, [(float(x), float(y)) for x, y in poly], mask))
    return out


def _image(rng: np.random.Generator, shapes, size: int) -> np.ndarray:
    img = rng.integers(0, 60, size=(size, size, 3)).astype(np.uint8)
    colours = {0: (220, 60, 40), 1: (40, 200, 230)}
    for cls, _, mask in shapes:
        img[mask] = colours[cls]
    return img


@pytest.fixture(scope="session")
def coco_tiny(tmp_path_factory) -> Path:
    """data_root with images/ and annotations.json (COCO instances format, polygon masks)."""
    import cv2

    root = tmp_path_factory.mktemp("coco_tiny")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(NUM_IMAGES):
        shapes = _shapes(rng, IMAGE_SIZE)
        name = f"{i:04d}.png"
        cv2.imwrite(str(root / "images" / name), _image(rng, shapes, IMAGE_SIZE))
        images.append(dict(id=i + 1, file_name=name, width=IMAGE_SIZE, height=IMAGE_SIZE))
        for cls, poly, mask in shapes:
            xs, ys = [p[0] for p in poly], [p[1] for p in poly]
            annotations.append(dict(
                id=len(annotations) + 1, image_id=i + 1, category_id=cls + 1, iscrowd=0,
                bbox=[min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], area=float(mask.sum()),
                segmentation=[[c for p in poly for c in p]]))
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    (root / "annotations.json").write_text(
        json.dumps(dict(images=images, annotations=annotations, categories=categories)))
    return root


@pytest.fixture(scope="session")
def ade_tiny(tmp_path_factory) -> Path:
    """data_root in ADEChallengeData2016's layout: images/{training,validation}/*.jpg and
    annotations/{training,validation}/*.png with 0 = 'other' (ignored via reduce_zero_label),
    1 = background, 2 = box, 3 = disc."""
    import cv2

    root = tmp_path_factory.mktemp("ade_tiny")
    rng = np.random.default_rng(1)
    for split in ("training", "validation"):
        (root / "images" / split).mkdir(parents=True)
        (root / "annotations" / split).mkdir(parents=True)
        for i in range(NUM_IMAGES if split == "training" else 2):
            shapes = _shapes(rng, IMAGE_SIZE)
            label = np.ones((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
            label[:2] = 0  # a strip of 'other'
            for cls, _, mask in shapes:
                label[mask] = cls + 2
            name = f"ADE_{split}_{i:08d}"
            cv2.imwrite(str(root / "images" / split / f"{name}.jpg"), _image(rng, shapes, IMAGE_SIZE))
            cv2.imwrite(str(root / "annotations" / split / f"{name}.png"), label)
    return root


@pytest.fixture(scope="session")
def official_classifier_file(tmp_path_factory) -> Path:
    """The tiny RAVLT classifier fixture saved the way the official training script saves
    (`model`, `optimizer`, `epoch`, `args` as an argparse.Namespace), official key names."""
    golden = load_golden("ravlt__tiny_cfg")
    path = tmp_path_factory.mktemp("ckpt") / "RAVLT_tiny.pth"
    torch.save({"model": dict(golden.state_dict), "optimizer": {}, "epoch": 299,
                "args": argparse.Namespace(model="RAVLT_T", lr=1e-3)}, path)
    return path


def loss_recorder():
    """An mmengine Hook that keeps the total loss of every training iteration (`.losses`)."""
    from mmengine.hooks import Hook

    class LossRecorder(Hook):
        priority = "LOWEST"

        def __init__(self):
            self.losses = []

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            loss = outputs["loss"]
            self.losses.append(float(loss.detach() if hasattr(loss, "detach") else loss))

    return LossRecorder()
