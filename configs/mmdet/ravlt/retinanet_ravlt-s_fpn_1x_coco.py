# RetinaNet 1x, COCO, RAVLT-S backbone (ravlt_s).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/retinanet_s_1x.py
# 8 GPUs x 2 images, AdamW lr 0.0001.
# Reported (official README): box AP 48.3 (AP50 69.8, AP75 52.1; APs 32.7, APm 52.8, APl 63.6),
# 34 M params, 244 GFLOPs.
_base_ = ['../_base_/retinanet_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_s', model_kwargs=dict(drop_path_rate=0.15)),
    neck=dict(in_channels=[64, 128, 320, 512]))
