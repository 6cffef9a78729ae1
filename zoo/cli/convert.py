"""`zoo-convert`: an official checkpoint -> timm's hub layout (model.safetensors + config.json + README.md).

    zoo-convert ravlt_s RAVLT_S.pth converted/ravlt_s.in1k

README.md is the model's card (`zoo.cards.render_card(..., only=<model>)`: Hugging Face YAML
header, variants row, usage, license, citation). The folder is what `timm.models.push_to_hf_hub`
uploads, so it can be published and loaded with `timm.create_model("hf-hub:<repo>")`, or used
in place with `timm.create_model("local-dir:converted/ravlt_s.in1k")`.
The conversion reloads the folder and checks that it computes exactly what
the official file does.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import timm
import torch
from timm.layers import to_2tuple
from timm.models import save_for_hf

from .. import metadata
from ..cards import render_card
from ..factory import create_model


class ConversionError(RuntimeError):
    """The converted weights do not reproduce the official file's outputs."""


def check_input_size(model: torch.nn.Module) -> tuple[int, int, int]:
    """(C, H, W) of the image the conversion is checked on: the size the model was built for where it takes
    only that (`fixed_input_size`), else that size capped at 64 x 64; C from the first conv."""
    cfg = model.pretrained_cfg
    channels, height, width = cfg.get("input_size", (3, 224, 224))
    first_conv = model.get_submodule(cfg["first_conv"]) if cfg.get("first_conv") else None
    channels = getattr(first_conv, "in_channels", channels)
    built = getattr(model, "img_size", None) or getattr(getattr(model, "patch_embed", None), "img_size", None)
    if built is not None:  # built for another size than the cfg's (img_size=...)
        height, width = to_2tuple(built)
    if not cfg.get("fixed_input_size", False):
        height, width = min(height, 64), min(width, 64)
    return channels, height, width


def write_card(model_name: str, output_dir: str | Path) -> Path | None:
    """Write the model's card as `output_dir/README.md` (None, and nothing written, for a model without a card)."""
    card = metadata.card_of(model_name)
    if card is None:
        return None
    path = Path(output_dir) / "README.md"
    path.write_text(render_card(card, only=model_name), encoding="utf-8")
    return path


def convert(
        model_name: str,
        checkpoint: str | Path,
        output_dir: str | Path,
        model_args: dict[str, Any] | None = None,
) -> float:
    """Convert and verify; returns the max abs difference of the reloaded model's output (0 when exact)."""
    model_args = dict(model_args or {})
    overlay = {"file": str(checkpoint)}
    if "num_classes" in model_args:
        overlay["num_classes"] = model_args["num_classes"]
    model = create_model(model_name, pretrained=True, pretrained_cfg_overlay=overlay, **model_args).eval()
    save_for_hf(model, output_dir, model_args=model_args or None, safe_serialization=True)
    write_card(model_name, output_dir)

    reloaded = timm.create_model(f"local-dir:{Path(output_dir).resolve()}", pretrained=True).eval()
    image = torch.randn(2, *check_input_size(model), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        difference = (model(image) - reloaded(image)).abs().max().item()
    if difference != 0:
        raise ConversionError(f"the converted {model_name} differs from the official file by {difference:.3g}")
    return difference


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="registered zoo model name, e.g. ravlt_s")
    parser.add_argument("checkpoint", help="the official checkpoint file")
    parser.add_argument("output_dir", help="folder to write model.safetensors, config.json and README.md to")
    parser.add_argument("--model-args", default="{}", help="JSON constructor arguments, e.g. '{\"num_classes\": 10}'")
    args = parser.parse_args(argv)
    convert(args.model, args.checkpoint, args.output_dir, json.loads(args.model_args))
    print(f"converted {args.checkpoint} -> {args.output_dir} (reloaded and checked: identical outputs)")


if __name__ == "__main__":
    main()
