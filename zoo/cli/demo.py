"""`zoo-demo`: build zoo models by name and run them on a photo (scikit-learn's, yours, or a test pattern).

Prints, per model, the parameter count, the output shape, the top-5 classes of
the (randomly initialised, so meaningless) logits, the feature-map shapes of
`features_only`, and CPU throughput. No download: weights are not needed. The
image is `--image`, else the photo scikit-learn ships if it is installed, else
a generated test pattern. To classify your own images with real weights, use
`zoo-infer`.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config

import zoo
from zoo.cli.infer import class_names

DEFAULT_MODELS = ("ravlt_t", "mavit_t")


def sample_image() -> tuple[Image.Image, str]:
    """scikit-learn's bundled photo (China, 427x640 RGB) if scikit-learn is installed, else a test pattern."""
    try:
        from sklearn.datasets import load_sample_image
    except ImportError:
        return pattern_image(), "scikit-learn is not installed: a generated test pattern (480x640)"
    return Image.fromarray(load_sample_image("china.jpg")), "scikit-learn's sample photo china.jpg"


def pattern_image(height: int = 480, width: int = 640) -> Image.Image:
    """Colour ramps and a checkerboard: enough structure for shapes and timings, no file needed."""
    y, x = np.mgrid[0:height, 0:width]
    checker = ((x // 40 + y // 40) % 2) * 255
    rgb = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), checker], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def images_per_second(model: torch.nn.Module, batch: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        model(batch)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            model(batch)
    return repeats * batch.shape[0] / (time.perf_counter() - start)


def describe(name: str, photo: Image.Image, batch_size: int, repeats: int) -> None:
    model = zoo.create_model(name).eval()
    transform = create_transform(**resolve_data_config(model=model))
    image = transform(photo).unsqueeze(0)
    with torch.inference_mode():
        logits = model(image)
    backbone = zoo.create_model(name, features_only=True).eval()
    with torch.inference_mode():
        features = backbone(image)
    params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {params:,} parameters, input {tuple(image.shape)} -> logits {tuple(logits.shape)}")
    top5 = logits.topk(5).indices[0].tolist()
    names, _ = class_names(model, {})
    if names is None:
        print(f"  top-5 classes (random weights, meaningless): {top5}")
    else:
        print(f"  top-5 ImageNet classes (random weights, meaningless): "
              f"{'; '.join(f'{names[i]} [{i}]' for i in top5)}")
    print(f"  features_only: {[tuple(f.shape) for f in features]} "
          f"(strides {backbone.feature_info.reduction()})")
    rate = images_per_second(model, image.expand(batch_size, -1, -1, -1).contiguous(), repeats)
    print(f"  CPU throughput: {rate:.1f} images/s (batch {batch_size}, {tuple(image.shape[-2:])}, "
          f"float32, {torch.get_num_threads()} threads)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(DEFAULT_MODELS), help="registered zoo model names")
    parser.add_argument("--image", help="an image file to run on (default: scikit-learn's photo or a test pattern)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"zoo {zoo.__version__}, timm {timm.__version__}, torch {torch.__version__}; "
          f"{len(zoo.list_models())} zoo models registered")
    if args.image:
        photo, source = Image.open(args.image).convert("RGB"), args.image
    else:
        photo, source = sample_image()
    print(f"image: {source}")
    for name in args.models:
        describe(name, photo, args.batch_size, args.repeats)


if __name__ == "__main__":
    main()
