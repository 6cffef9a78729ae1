"""A real mmdet 3 Mask R-CNN with a zoo backbone: a few training iterations and a COCO evaluation on CPU.

The config is the shipped `mask-rcnn_ravlt-t_fpn_1x_coco.py` (so the shipped
inheritance chain is what is tested), shrunk: the tiny RAVLT of the golden
fixtures (initialised from an official-layout classification checkpoint
through `init_cfg`), narrow FPN and heads, fewer proposals, 96x96 images.
"""
from __future__ import annotations

import math
import time

import pytest

pytest.importorskip("mmdet")
pytest.importorskip("mmcv.ops")

from mm_fixtures import CLASSES, TINY_RAVLT, loss_recorder  # noqa: E402


def tiny_mask_rcnn_cfg(coco_root, work_dir, checkpoint, max_iters):
    from mmengine.config import Config

    import zoo.mm

    cfg = Config.fromfile(zoo.mm.config_file("mask-rcnn_ravlt-t_fpn_1x_coco"))
    assert cfg.model.backbone.type == "ZooBackbone" and cfg.model.backbone.model_name == "ravlt_t"
    ch = 32
    m = cfg.model
    m.backbone.model_kwargs = dict(TINY_RAVLT)
    m.backbone.init_cfg = dict(type="Pretrained", checkpoint=str(checkpoint))
    m.neck.update(in_channels=[16, 32, 48, 64], out_channels=ch)
    m.rpn_head.update(in_channels=ch, feat_channels=ch)
    m.roi_head.bbox_roi_extractor.out_channels = ch
    m.roi_head.bbox_head.update(in_channels=ch, fc_out_channels=64, num_classes=len(CLASSES))
    m.roi_head.mask_roi_extractor.out_channels = ch
    m.roi_head.mask_head.update(in_channels=ch, conv_out_channels=ch, num_classes=len(CLASSES))
    m.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
    m.train_cfg.rcnn.sampler.num = 64
    m.test_cfg.rpn.update(nms_pre=200, max_per_img=100)

    pipeline_train = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
        dict(type="Resize", scale=(96, 96), keep_ratio=True),
        dict(type="PackDetInputs"),
    ]
    pipeline_test = [
        dict(type="LoadImageFromFile"),
        dict(type="Resize", scale=(96, 96), keep_ratio=True),
        dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
        dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
    ]
    dataset = dict(data_root=str(coco_root), ann_file="annotations.json", data_prefix=dict(img="images/"),
                   metainfo=dict(classes=CLASSES))
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.update(dataset, pipeline=pipeline_train,
                                        filter_cfg=dict(filter_empty_gt=True, min_size=0))
    for loader in ("val_dataloader", "test_dataloader"):
        cfg[loader].update(num_workers=0, persistent_workers=False)
        cfg[loader].dataset.update(dataset, pipeline=pipeline_test)
    for evaluator in ("val_evaluator", "test_evaluator"):
        cfg[evaluator].update(ann_file=str(coco_root / "annotations.json"), metric=["bbox", "segm"])

    cfg.optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.05),
                             paramwise_cfg=cfg.optim_wrapper.paramwise_cfg)
    cfg.param_scheduler = []
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=10 ** 6)
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type="LoggerHook", interval=1)
    cfg.pop("sync_bn", None)
    cfg.randomness = dict(seed=0)
    cfg.log_level = "WARNING"
    cfg.work_dir = str(work_dir)
    return cfg


def test_mask_rcnn_trains_and_evaluates(coco_tiny, official_classifier_file, tmp_path):
    import torch
    from golden import load_golden
    from mmengine.runner import Runner

    runner = Runner.from_cfg(tiny_mask_rcnn_cfg(coco_tiny, tmp_path, official_classifier_file, max_iters=10))
    recorder = loss_recorder()
    runner.register_hook(recorder)
    t0 = time.time()
    runner.train()
    print(f"train: {time.time() - t0:.1f} s, losses {[round(x, 3) for x in recorder.losses]}")

    # init_cfg went through the zoo's filter: the stage-1 RoPE block's q/k/v/o started at the official values
    # (training moved them, but only a little at lr 1e-3 over 16 steps)
    official = load_golden("ravlt__tiny_cfg").state_dict["layers.1.blocks.0.attn.qkvo.weight"]
    trained = runner.model.backbone.model.stages[1].blocks[0].attn.qkvo.weight.detach()
    assert (trained - official).abs().max() < 0.05

    losses = recorder.losses
    assert len(losses) == 10 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) < sum(losses[:3]), losses

    metrics = runner.val()
    print(f"val: {time.time() - t0:.1f} s, {metrics}")
    for key in ("coco/bbox_mAP", "coco/bbox_mAP_50", "coco/segm_mAP", "coco/segm_mAP_50"):
        assert key in metrics and 0.0 <= metrics[key] <= 1.0, (key, metrics)
    assert torch.is_tensor(runner.model.backbone(torch.zeros(1, 3, 64, 64))[0])


def test_zoo_mm_train_entry_point_runs_a_config_file(coco_tiny, official_classifier_file, tmp_path):
    from zoo.mm.train import main

    cfg = tiny_mask_rcnn_cfg(coco_tiny, tmp_path / "unused", official_classifier_file, max_iters=2)
    cfg.optim_wrapper = dict(type="AmpOptimWrapper", loss_scale=512.0, optimizer=dict(type="AdamW", lr=1e-4))
    path = tmp_path / "tiny_mask_rcnn.py"
    cfg.dump(str(path))
    work_dir = tmp_path / "work"
    # on a machine without CUDA the entry point swaps the AMP wrapper for the fp32 one
    assert main([str(path), "--work-dir", str(work_dir), "--cfg-options", "train_cfg.max_iters=1"]) == 0
    assert any(work_dir.rglob("*.log"))
