# UperNet 160k, ADE20K 512x512, RAVLT-L backbone (ravlt_l).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: segmentation/configs/RALA/RALA_Uper_l_2x.py
# 8 GPUs x 2 images.
# Reported (official README): mIoU 53.2 (single scale), 125 M params, 1182 GFLOPs.
_base_ = ['../_base_/upernet_zoo_160k_ade20k-512x512.py']

model = dict(
    backbone=dict(model_name='ravlt_l', model_kwargs=dict(drop_path_rate=0.55)),
    decode_head=dict(in_channels=[96, 192, 448, 640]),
    auxiliary_head=dict(in_channels=448))
