"""A real mmseg 1 UperNet with a zoo backbone: a few training iterations and an mIoU evaluation on CPU,
on an ADE20K-layout dataset (ADE20KDataset, reduce_zero_label) made by the test."""
from __future__ import annotations

import math
import time

import pytest

pytest.importorskip("mmseg")
pytest.importorskip("mmcv.ops")

from mm_fixtures import TINY_RAVLT, loss_recorder  # noqa: E402


def tiny_upernet_cfg(ade_root, work_dir, max_iters):
    from mmengine.config import Config

    import zoo.mm

    cfg = Config.fromfile(zoo.mm.config_file("upernet_ravlt-s_160k_ade20k-512x512"))
    assert cfg.model.backbone.type == "ZooBackbone" and cfg.model.backbone.model_name == "ravlt_s"
    m = cfg.model
    m.backbone.update(model_name="ravlt_t", model_kwargs=dict(TINY_RAVLT), init_cfg=None)
    m.data_preprocessor.size = (64, 64)
    m.decode_head.update(in_channels=[16, 32, 48, 64], channels=32)
    m.auxiliary_head.update(in_channels=48, channels=16)
    m.decode_head.norm_cfg = m.auxiliary_head.norm_cfg = dict(type="BN", requires_grad=True)

    train_pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations", reduce_zero_label=True),
        dict(type="RandomResize", scale=(128, 96), ratio_range=(0.75, 1.25), keep_ratio=True),
        dict(type="RandomCrop", crop_size=(64, 64), cat_max_ratio=0.75),
        dict(type="RandomFlip", prob=0.5),
        dict(type="PackSegInputs"),
    ]
    test_pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="Resize", scale=(128, 96), keep_ratio=True),
        dict(type="LoadAnnotations", reduce_zero_label=True),
        dict(type="PackSegInputs"),
    ]
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.update(data_root=str(ade_root), pipeline=train_pipeline)
    for loader in ("val_dataloader", "test_dataloader"):
        cfg[loader].update(num_workers=0, persistent_workers=False)
        cfg[loader].dataset.update(data_root=str(ade_root), pipeline=test_pipeline)

    cfg.optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.01),
                             paramwise_cfg=cfg.optim_wrapper.paramwise_cfg)
    cfg.param_scheduler = []
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=10 ** 6)
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type="LoggerHook", interval=1, log_metric_by_epoch=False)
    cfg.pop("sync_bn", None)
    cfg.randomness = dict(seed=0)
    cfg.log_level = "WARNING"
    cfg.work_dir = str(work_dir)
    return cfg


def test_upernet_trains_and_evaluates(ade_tiny, tmp_path):
    from mmengine.runner import Runner

    runner = Runner.from_cfg(tiny_upernet_cfg(ade_tiny, tmp_path, max_iters=10))
    recorder = loss_recorder()
    runner.register_hook(recorder)
    t0 = time.time()
    runner.train()
    print(f"train: {time.time() - t0:.1f} s, losses {[round(x, 3) for x in recorder.losses]}")
    losses = recorder.losses
    assert len(losses) == 10 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) < sum(losses[:3]), losses

    metrics = runner.val()
    print(f"val: {time.time() - t0:.1f} s, {metrics}")
    assert "mIoU" in metrics and 0.0 <= metrics["mIoU"] <= 100.0, metrics
