# Mask R-CNN 1x, COCO, iFormer-B backbone (inception_transformer_base).
# Inception Transformer (arXiv:2205.12956, NeurIPS 2022), https://github.com/sail-sg/iFormer (commit 725d8e7).
# Not timm's iformer_* (iFormer, ICLR 2025), an unrelated model.
# The repository has no detection code or config and the paper's fine-tuning settings are not published
# (the README gives results only): everything below is the zoo's choice, the shared Mask R-CNN 1x base (the RAVLT
# setting): 8 GPUs x 2 images, AdamW lr 0.0001, wd 0.05, no decay on 'norm' parameters, warm-up 500 iters,
# steps at epochs 8 and 11, 1333x800 + flip, fp16 (loss scale 512), the BatchNorms of the stem and
# downsamplings as SyncBN with updating statistics; drop_path_rate 0.4 as in ImageNet training.
# Features: the four stage outputs (strides 4-32, no extra norms); every stage's position embedding is
# resized bilinearly to the input's grid, so non-square inputs work; stages 1-2 need even token grids
# (inputs divisible by 16): mmdet pads every batch to a multiple of 32.
# Reported (official README): box AP 48.3, mask AP 43.3, 67 M params, 351 GFLOPs (this config: 67.6 M params).
_base_ = ['../_base_/mask-rcnn_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='inception_transformer_base', model_kwargs=dict(drop_path_rate=0.4)),
    neck=dict(in_channels=[96, 192, 384, 512]))
