# RetinaNet 1x, COCO, RAVLT-L backbone (ravlt_l).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/retinanet_l_1x.py
# 8 GPUs x 2 images, AdamW lr 0.0001.
# Reported (official README): box AP 50.9 (AP50 72.2, AP75 55.0; APs 34.7, APm 55.7, APl 65.4),
# 104 M params, 482 GFLOPs.
_base_ = ['../_base_/retinanet_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_l', model_kwargs=dict(drop_path_rate=0.55)),
    neck=dict(in_channels=[96, 192, 448, 640]))
