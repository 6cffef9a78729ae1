# Semantic FPN 40k, ADE20K 512x512, PoolFormer-M48 backbone (poolformerv1_m48).
# PoolFormer: MetaFormer Is Actually What You Need for Vision (arXiv:2111.11418), https://github.com/sail-sg/poolformer; official config: segmentation/configs/sem_fpn/PoolFormer/fpn_poolformer_m48_ade20k_40k.py
# (mmseg 0.19): 8 GPUs x 4 images, AdamW lr 2e-4, wd 1e-4, poly 0.9 to 0, 40k iterations
# (mmseg's 4-GPU 80k schedule halved, lr doubled), fp32; no stochastic depth.
# Reported (official README): mIoU 42.7.
_base_ = ['../_base_/fpn_zoo_40k_ade20k-512x512.py']

model = dict(
    backbone=dict(model_name='poolformerv1_m48', model_kwargs=dict(drop_path_rate=0.0)),
    neck=dict(in_channels=[96, 192, 384, 768]))
sync_bn = None  # no BatchNorm in PoolFormer
