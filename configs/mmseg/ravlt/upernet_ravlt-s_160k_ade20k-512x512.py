# UperNet 160k, ADE20K 512x512, RAVLT-S backbone (ravlt_s).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: segmentation/configs/RALA/RALA_Uper_s_2x.py
# 8 GPUs x 2 images.
# Reported (official README): mIoU 50.7 (single scale), 55 M params, 937 GFLOPs.
_base_ = ['../_base_/upernet_zoo_160k_ade20k-512x512.py']

model = dict(
    backbone=dict(model_name='ravlt_s', model_kwargs=dict(drop_path_rate=0.15)),
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320))
