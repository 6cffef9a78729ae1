# Mask R-CNN 1x, COCO, iFormer-S backbone (inception_transformer_small).
# Inception Transformer (arXiv:2205.12956, NeurIPS 2022), https://github.com/sail-sg/iFormer (commit 725d8e7).
# Not timm's iformer_* (iFormer, ICLR 2025), an unrelated model.
# The repository has no detection code or config and the paper's fine-tuning settings are not published
# (the README gives results only): everything below is the zoo's choice, the shared Mask R-CNN 1x base (the RAVLT
# setting): 8 GPUs x 2 images, AdamW lr 0.0001, wd 0.05, no decay on 'norm' parameters, warm-up 500 iters,
# steps at epochs 8 and 11, 1333x800 + flip, fp16 (loss scale 512), the BatchNorms of the stem and
# downsamplings as SyncBN with updating statistics; drop_path_rate 0.2 as in ImageNet training.
# Features: the four stage outputs (strides 4-32, no extra norms); every stage's position embedding is
# resized bilinearly to the input's grid, so non-square inputs work; stages 1-2 need even token grids
# (inputs divisible by 16): mmdet pads every batch to a multiple of 32.
# Reported (official README): box AP 46.2, mask AP 41.9, 40 M params, 263 GFLOPs (this config: 39.6 M params).
_base_ = ['../_base_/mask-rcnn_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='inception_transformer_small', model_kwargs=dict(drop_path_rate=0.2)),
    neck=dict(in_channels=[96, 192, 320, 384]))
