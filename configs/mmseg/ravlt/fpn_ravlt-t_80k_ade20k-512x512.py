# Semantic FPN 80k, ADE20K 512x512, RAVLT-T backbone (ravlt_t).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; no official config (the README reports the result; settings as RAVLT-S's RALA_FPN_s_1x.py)
# 8 GPUs x 2 images.
# Reported (official README): mIoU 47.9 (single scale), 18 M params, 136 GFLOPs.
_base_ = ['../_base_/fpn_zoo_80k_ade20k-512x512.py']

model = dict(
    backbone=dict(model_name='ravlt_t', model_kwargs=dict(drop_path_rate=0.1)),
    neck=dict(in_channels=[64, 128, 256, 512]))
