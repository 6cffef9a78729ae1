# UperNet 160k, ADE20K 512x512, MAViT-L backbone (mavit_l).
# Rectifying Magnitude Neglect in Linear Attention (arXiv:2507.00698), https://github.com/qhfan/MALA; official config: segmentation/configs/MALA/Uper_l_2x.py
# 8 GPUs x 1 image.
# Reported: the official repository's README has no ADE20K table and the paper's was not
# readable when this config was written; compare with the MAViT paper,
# arXiv:2507.00698.
_base_ = ['../_base_/upernet_zoo_160k_ade20k-512x512.py']

model = dict(
    backbone=dict(model_name='mavit_l', model_kwargs=dict(drop_path_rate=0.55)),
    decode_head=dict(in_channels=[96, 192, 448, 640]),
    auxiliary_head=dict(in_channels=448))

train_dataloader = dict(batch_size=1, num_workers=1)
