# Semantic FPN 80k, ADE20K 512x512, RAVLT-S backbone (ravlt_s).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: segmentation/configs/RALA/RALA_FPN_s_1x.py
# 8 GPUs x 2 images.
# Reported (official README): mIoU 49.5 (single scale), 28 M params, 180 GFLOPs.
_base_ = ['../_base_/fpn_zoo_80k_ade20k-512x512.py']

model = dict(
    backbone=dict(model_name='ravlt_s', model_kwargs=dict(drop_path_rate=0.15)),
    neck=dict(in_channels=[64, 128, 320, 512]))
