# Mask R-CNN 1x, COCO, ViG-H-B backbone (vig_h_b).
# ViG: Linear-complexity Visual Sequence Learning with Gated Linear Attention (arXiv:2405.18425, AAAI 2025),
# https://github.com/hustvl/ViG (commit dfb9d32).
# The repository has classification code only (plus the Backbone_HierViG wrapper): no mmdet config, so the
# settings are the zoo's choice, the shared Mask R-CNN 1x base (the RAVLT setting): 8 GPUs x 2 images,
# AdamW lr 0.0001, wd 0.05, no decay on 'norm' parameters, warm-up 500 iters, steps at epochs 8 and 11,
# 1333x800 + flip, fp16 (loss scale 512); drop_path_rate 0.6 as in ImageNet training.
# Backbone: features_only is the official dense wrapper Backbone_HierViG: each stage's output before its
# downsampling through a per-stage LayerNorm2d (outnorm{i}, here feature_norms.i; absent from the
# ImageNet checkpoint, they start at weight 1, bias 0). No BatchNorm: sync_bn is off.
# This config: 108.3 M params.
# Reported: not available offline. The paper reports COCO and ADE20K results for ViG-H, but its numbers
# and heads could not be retrieved; compare with arXiv:2405.18425.
_base_ = ['../_base_/mask-rcnn_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='vig_h_b', model_kwargs=dict(drop_path_rate=0.6)),
    neck=dict(in_channels=[128, 256, 512, 1024]))

sync_bn = None  # no BatchNorm in ViG-H
