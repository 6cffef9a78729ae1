"""Every shipped mmdet / mmseg config parses through mmengine's inheritance, names a zoo model whose
feature widths match the neck / heads, and each detector / segmentor kind builds from the registry."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("mmdet")
pytest.importorskip("mmseg")

import timm  # noqa: E402
import torch  # noqa: E402

import zoo.mm  # noqa: E402
from mm_fixtures import TINY_RAVLT  # noqa: E402
from zoo.models.ravlt import _SIZES  # noqa: E402

CONFIGS = zoo.mm.list_configs()


def _load(name):
    from mmengine.config import Config

    return Config.fromfile(zoo.mm.config_file(name))


def _channels(model_name: str, **kwargs) -> list[int]:
    with torch.device("meta"):
        return timm.create_model(model_name, features_only=True, **kwargs).feature_info.channels()


def test_configs_cover_ravlt_and_mavit():
    for family in ("ravlt", "mavit"):
        assert sum(f"/{family}/" in c for c in CONFIGS) >= 20, family
    assert sum("/poolformer/" in c for c in CONFIGS) == 11


@pytest.mark.parametrize("name", CONFIGS)
def test_config_parses_and_widths_match(name):
    cfg = _load(name)
    bb = cfg.model.backbone
    assert bb.type == "ZooBackbone"
    assert cfg.custom_imports.imports == ["zoo.mm"]
    stem = re.search(r"_(ravlt|mavit|poolformerv1)-([a-z0-9]+)_", name)
    assert bb.model_name == f"{stem.group(1)}_{stem.group(2)}"
    # RAVLT / MAViT: stochastic depth as in classification; the official PoolFormer det/seg backbones have none
    expected_dpr = 0.0 if stem.group(1) == "poolformerv1" else _SIZES[stem.group(2)]["drop_path_rate"]
    assert bb.model_kwargs["drop_path_rate"] == expected_dpr
    assert bb.init_cfg == dict(type="Pretrained", checkpoint="official")
    channels = _channels(bb.model_name, **bb.model_kwargs)
    if name.startswith("mmdet/") or "fpn_" in name.split("/")[-1][:4]:
        assert list(cfg.model.neck.in_channels) == channels
    else:
        assert list(cfg.model.decode_head.in_channels) == channels
        assert cfg.model.auxiliary_head.in_channels == channels[2]
    assert cfg.get("optim_wrapper") is not None


@pytest.mark.parametrize("name", [
    "retinanet_ravlt-t_fpn_1x_coco",
    "cascade-mask-rcnn_mavit-s_fpn_4conv1fc-giou_ms-crop-3x_coco",
    "mask-rcnn_mavit-l_fpn_ms-crop-3x_coco",
    "fpn_ravlt-s_80k_ade20k-512x512",
    "upernet_mavit-t_160k_ade20k-512x512",
    "retinanet_poolformerv1-s12_fpn_1x_coco",
])
def test_each_kind_builds_from_the_registry(name):
    from mmengine.registry import DefaultScope, init_default_scope

    cfg = _load(name)
    if "poolformer" not in name:
        cfg.model.backbone.update(model_name="ravlt_t", model_kwargs=dict(TINY_RAVLT))
    cfg.model.backbone.init_cfg = None
    if "neck" in cfg.model and cfg.model.neck.type == "FPN" and "poolformer" not in name:
        cfg.model.neck.in_channels = [16, 32, 48, 64]
    if "decode_head" in cfg.model and cfg.model.decode_head.type == "UPerHead":
        cfg.model.decode_head.in_channels = [16, 32, 48, 64]
        cfg.model.auxiliary_head.in_channels = 48
    scope = cfg.default_scope
    init_default_scope(scope)
    registry = __import__(f"{scope}.registry", fromlist=["MODELS"]).MODELS
    model = registry.build(cfg.model)
    assert type(model.backbone).__name__ == "ZooBackbone"
    assert DefaultScope.get_current_instance().scope_name == scope
