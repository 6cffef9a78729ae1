# Semantic FPN 80k, ADE20K 512x512, MAViT-L backbone (mavit_l).
# Rectifying Magnitude Neglect in Linear Attention (arXiv:2507.00698), https://github.com/qhfan/MALA; official config: segmentation/configs/MALA/FPN_l_1x.py
# 8 GPUs x 2 images.
# Reported: the official repository's README has no ADE20K table and the paper's was not
# readable when this config was written; compare with the MAViT paper,
# arXiv:2507.00698.
_base_ = ['../_base_/fpn_zoo_80k_ade20k-512x512.py']

model = dict(
    backbone=dict(model_name='mavit_l', model_kwargs=dict(drop_path_rate=0.55)),
    neck=dict(in_channels=[96, 192, 448, 640]))
