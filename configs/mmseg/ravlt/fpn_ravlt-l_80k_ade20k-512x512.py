# Semantic FPN 80k, ADE20K 512x512, RAVLT-L backbone (ravlt_l).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: segmentation/configs/RALA/RALA_FPN_l_1x.py
# 8 GPUs x 2 images.
# Reported (official README): mIoU 52.6 (single scale), 98 M params, 424 GFLOPs.
_base_ = ['../_base_/fpn_zoo_80k_ade20k-512x512.py']

model = dict(
    backbone=dict(model_name='ravlt_l', model_kwargs=dict(drop_path_rate=0.55)),
    neck=dict(in_channels=[96, 192, 448, 640]))
