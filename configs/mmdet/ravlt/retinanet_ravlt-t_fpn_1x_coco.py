# RetinaNet 1x, COCO, RAVLT-T backbone (ravlt_t).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/retinanet_t_1x.py
# 8 GPUs x 2 images, AdamW lr 0.0001.
# Reported (official README): box AP 45.9 (AP50 67.4, AP75 49.4; APs 28.5, APm 50.1, APl 60.8),
# 24 M params, 201 GFLOPs.
_base_ = ['../_base_/retinanet_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_t', model_kwargs=dict(drop_path_rate=0.1)),
    neck=dict(in_channels=[64, 128, 256, 512]))
