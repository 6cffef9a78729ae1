# UperNet 160k, ADE20K 512x512, RAVLT-B backbone (ravlt_b).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: segmentation/configs/RALA/RALA_Uper_b_2x.py
# 8 GPUs x 2 images.
# Reported (official README): mIoU 52.5 (single scale), 77 M params, 1050 GFLOPs.
_base_ = ['../_base_/upernet_zoo_160k_ade20k-512x512.py']

model = dict(
    backbone=dict(model_name='ravlt_b', model_kwargs=dict(drop_path_rate=0.4)),
    decode_head=dict(in_channels=[96, 192, 384, 512]),
    auxiliary_head=dict(in_channels=384))
