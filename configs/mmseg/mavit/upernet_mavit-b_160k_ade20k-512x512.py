# UperNet 160k, ADE20K 512x512, MAViT-B backbone (mavit_b).
# Rectifying Magnitude Neglect in Linear Attention (arXiv:2507.00698), https://github.com/qhfan/MALA; official config: segmentation/configs/MALA/Uper_b_2x.py
# 8 GPUs x 2 images.
# Reported: the official repository's README has no ADE20K table and the paper's was not
# readable when this config was written; compare with the MAViT paper,
# arXiv:2507.00698.
_base_ = ['../_base_/upernet_zoo_160k_ade20k-512x512.py']

model = dict(
    backbone=dict(model_name='mavit_b', model_kwargs=dict(drop_path_rate=0.4)),
    decode_head=dict(in_channels=[96, 192, 384, 512]),
    auxiliary_head=dict(in_channels=384))
