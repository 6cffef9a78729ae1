# Mask R-CNN 1x, COCO, PoolFormer-S12 backbone (poolformerv1_s12).
# PoolFormer: MetaFormer Is Actually What You Need for Vision (arXiv:2111.11418), https://github.com/sail-sg/poolformer; official config: detection/configs/mask_rcnn_poolformer_s12_fpn_1x_coco.py (mmdet 2.19)
# 8 GPUs x 2 images, AdamW lr 0.0002, wd 1e-4, no paramwise rules, fp32; the official
# `poolformer_*_feat` backbone has no stochastic depth (drop_path_rate 0).
# Reported (official README): box AP 37.3, mask AP 34.6.
_base_ = ['../_base_/mask-rcnn_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='poolformerv1_s12', model_kwargs=dict(drop_path_rate=0.0)),
    neck=dict(in_channels=[64, 128, 320, 512]))

optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.0002, weight_decay=1e-4))
sync_bn = None  # no BatchNorm in PoolFormer
