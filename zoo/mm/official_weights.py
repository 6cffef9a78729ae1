"""Official detection / segmentation checkpoints (mmdet 2 / mmseg 0.x, official backbone keys) -> ZooBackbone.

    python -m zoo.mm.official_weights maskrcnn_t_1x_12_epoch.pth mask-rcnn_ravlt-t.pth --model ravlt_t
    python -m zoo.mm.train mask-rcnn_ravlt-t_fpn_1x_coco --eval mask-rcnn_ravlt-t.pth

The official RAVLT / MAViT / PoolFormer downstream checkpoints hold
``state_dict`` with ``backbone.<official keys>`` next to the neck and heads.
The backbone part goes through the family's ``checkpoint_filter_fn``
(``zoo.pretrained.filter_for``: the same strict remapping as the classification weights) and becomes
``backbone.body.model.<zoo keys>``; the neck and head keys are kept as they
are (mmdet 3 / mmseg 1 kept those module names).  The result loads with
``load_from`` / ``--eval`` into the shipped configs.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

import timm
import torch

import zoo  # noqa: F401
from zoo.pretrained import filter_for, load_checkpoint, select_weights

__all__ = ["convert_mm_checkpoint"]


def convert_mm_checkpoint(checkpoint: Any, model_name: str, **model_kwargs: Any) -> dict[str, Any]:
    """``{'state_dict': ..., 'meta': ...}`` for a ZooBackbone detector / segmentor from an official one."""
    if not isinstance(checkpoint, dict):
        checkpoint = load_checkpoint(checkpoint)
    state = dict(select_weights(checkpoint, "state_dict"))
    state = {k.removeprefix("module."): v for k, v in state.items()}
    backbone = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    if not backbone:
        raise ValueError("no 'backbone.*' keys in the checkpoint: not a detector / segmentor state dict")
    if any(k.startswith("body.model.") for k in backbone):
        converted = {k[len("body.model."):]: v for k, v in backbone.items()}  # already a ZooBackbone checkpoint
    else:
        features = timm.create_model(model_name, features_only=True, **model_kwargs)
        model = getattr(features, "model", features)
        converted = filter_for(model, exact=False)(backbone, source="the checkpoint's backbone")
    out = {f"backbone.body.model.{k}": v for k, v in converted.items()}
    out.update({k: v for k, v in state.items() if not k.startswith("backbone.")})
    meta = dict(checkpoint.get("meta") or {}) if isinstance(checkpoint.get("meta"), dict) else {}
    meta["zoo_converted_from"] = dict(model_name=model_name)
    return {"state_dict": out, "meta": meta}


def main(argv: list | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zoo.mm.official_weights", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="official detection / segmentation checkpoint")
    p.add_argument("dst", help="output .pth for the zoo's configs")
    p.add_argument("--model", required=True, help="the zoo model of the backbone, e.g. ravlt_s")
    args = p.parse_args(argv)
    torch.save(convert_mm_checkpoint(args.src, args.model), args.dst)
    print(f"wrote {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
