# RetinaNet 1x, COCO, MAViT-B backbone (mavit_b).
# Rectifying Magnitude Neglect in Linear Attention (arXiv:2507.00698), https://github.com/qhfan/MALA; official config: detect/configs/MALA/retinanet_b_1x.py
# 8 GPUs x 2 images, AdamW lr 0.0004.
# Reported: the official repository's README has no COCO table and the paper's was not
# readable when this config was written; compare with the MAViT paper,
# arXiv:2507.00698.
_base_ = ['../_base_/retinanet_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='mavit_b', model_kwargs=dict(drop_path_rate=0.4)),
    neck=dict(in_channels=[96, 192, 384, 512]))

optim_wrapper = dict(optimizer=dict(lr=0.0004))
