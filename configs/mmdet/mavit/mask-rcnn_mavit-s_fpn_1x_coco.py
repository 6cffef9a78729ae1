# Mask R-CNN 1x, COCO, MAViT-S backbone (mavit_s).
# Rectifying Magnitude Neglect in Linear Attention (arXiv:2507.00698), https://github.com/qhfan/MALA; official config: detect/configs/MALA/maskrcnn_s_1x.py
# 8 GPUs x 2 images, AdamW lr 0.0004.
# Reported: the official repository's README has no COCO table and the paper's was not
# readable when this config was written; compare with the MAViT paper,
# arXiv:2507.00698.
_base_ = ['../_base_/mask-rcnn_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='mavit_s', model_kwargs=dict(drop_path_rate=0.15)),
    neck=dict(in_channels=[64, 128, 320, 512]))

optim_wrapper = dict(optimizer=dict(lr=0.0004))
