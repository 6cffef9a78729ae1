"""`zoo-demo`: build zoo models by name and run them on an image that scikit-learn ships.

Prints, per model, the parameter count, the output shape, the top-5 classes of
the (randomly initialised, so meaningless) logits, the feature-map shapes of
`features_only`, and CPU throughput. No download: weights are not needed.
"""
from __future__ import annotations

import argparse
import time

import timm
import torch
from timm.data import create_transform, resolve_data_config

import zoo

DEFAULT_MODELS = ("ravlt_t", "mavit_t")


def sample_image():
    """scikit-learn's bundled photo (China, 427x640 RGB) as a PIL image."""
    try:
        from sklearn.datasets import load_sample_image
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise SystemExit("zoo-demo needs scikit-learn for its sample image: pip install 'zoo[train]'") from err
    from PIL import Image
    return Image.fromarray(load_sample_image("china.jpg"))


def images_per_second(model: torch.nn.Module, batch: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        model(batch)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            model(batch)
    return repeats * batch.shape[0] / (time.perf_counter() - start)


def describe(name: str, batch_size: int, repeats: int) -> None:
    model = zoo.create_model(name).eval()
    transform = create_transform(**resolve_data_config(model=model))
    image = transform(sample_image()).unsqueeze(0)
    with torch.inference_mode():
        logits = model(image)
    backbone = zoo.create_model(name, features_only=True).eval()
    with torch.inference_mode():
        features = backbone(image)
    params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {params:,} parameters, input {tuple(image.shape)} -> logits {tuple(logits.shape)}")
    print(f"  top-5 classes (random weights): {logits.topk(5).indices[0].tolist()}")
    print(f"  features_only: {[tuple(f.shape) for f in features]} "
          f"(strides {backbone.feature_info.reduction()})")
    rate = images_per_second(model, image.expand(batch_size, -1, -1, -1).contiguous(), repeats)
    print(f"  CPU throughput: {rate:.1f} images/s (batch {batch_size}, {tuple(image.shape[-2:])}, "
          f"float32, {torch.get_num_threads()} threads)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(DEFAULT_MODELS), help="registered zoo model names")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"zoo {zoo.__version__}, timm {timm.__version__}, torch {torch.__version__}; "
          f"{len(zoo.list_models())} zoo models registered")
    for name in args.models:
        describe(name, args.batch_size, args.repeats)


if __name__ == "__main__":
    main()
