# RetinaNet 1x, COCO, RAVLT-B backbone (ravlt_b).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/retinanet_m_1x.py
# 8 GPUs x 2 images, AdamW lr 0.0001.
# Reported (official README): box AP 49.8 (AP50 71.2, AP75 54.0; APs 34.0, APm 54.3, APl 64.9),
# 57 M params, 353 GFLOPs.
_base_ = ['../_base_/retinanet_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_b', model_kwargs=dict(drop_path_rate=0.4)),
    neck=dict(in_channels=[96, 192, 384, 512]))
