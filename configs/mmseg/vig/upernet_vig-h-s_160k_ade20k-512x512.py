# UperNet 160k, ADE20K 512x512, ViG-H-S backbone (vig_h_s).
# ViG: Linear-complexity Visual Sequence Learning with Gated Linear Attention (arXiv:2405.18425, AAAI 2025),
# https://github.com/hustvl/ViG (commit dfb9d32).
# The repository has classification code only (plus the Backbone_HierViG wrapper): no mmseg config, so the
# settings are the zoo's choice, the shared UperNet 160k base (the RAVLT setting): 8 GPUs x 2 images,
# AdamW lr 6e-5, wd 0.01, no decay on 'norm' parameters, warm-up 1500 iters, poly decay (power 1.0) to
# 160k, fp16 (loss scale 512); drop_path_rate 0.3 as in ImageNet training.
# Backbone: features_only is the official dense wrapper Backbone_HierViG: each stage's output before its
# downsampling through a per-stage LayerNorm2d (outnorm{i}, here feature_norms.i; absent from the
# ImageNet checkpoint, they start at weight 1, bias 0). No BatchNorm: sync_bn is off.
# This config: 81.7 M params.
# Reported: not available offline. The paper reports COCO and ADE20K results for ViG-H, but its numbers
# and heads could not be retrieved; compare with arXiv:2405.18425.
_base_ = ['../_base_/upernet_zoo_160k_ade20k-512x512.py']

model = dict(
    backbone=dict(model_name='vig_h_s', model_kwargs=dict(drop_path_rate=0.3)),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))

sync_bn = None  # no BatchNorm in ViG-H
