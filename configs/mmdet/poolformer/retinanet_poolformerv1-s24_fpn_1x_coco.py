# RetinaNet 1x, COCO, PoolFormer-S24 backbone (poolformerv1_s24).
# PoolFormer: MetaFormer Is Actually What You Need for Vision (arXiv:2111.11418), https://github.com/sail-sg/poolformer; official config: detection/configs/retinanet_poolformer_s24_fpn_1x_coco.py (mmdet 2.19)
# 8 GPUs x 2 images, AdamW lr 0.0001, wd 1e-4, no paramwise rules, fp32; the official
# `poolformer_*_feat` backbone has no stochastic depth (drop_path_rate 0).
# The stride-4 feature is unused (FPN start_level=1): as the official FORK_LAST3 setting, its
# GroupNorm is an Identity (first_feature_norm=False), so no parameter goes unused.
# Reported (official README): box AP 38.9.
_base_ = ['../_base_/retinanet_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='poolformerv1_s24', model_kwargs=dict(drop_path_rate=0.0, first_feature_norm=False)),
    neck=dict(in_channels=[64, 128, 320, 512]))

optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.0001, weight_decay=1e-4))
sync_bn = None  # no BatchNorm in PoolFormer
find_unused_parameters = False
