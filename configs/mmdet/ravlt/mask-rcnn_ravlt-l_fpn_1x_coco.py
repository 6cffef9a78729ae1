# Mask R-CNN 1x, COCO, RAVLT-L backbone (ravlt_l).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/maskrcnn_l_1x.py
# 8 GPUs x 2 images, AdamW lr 0.0001.
# Reported (official README): box AP 52.3 (AP50 73.8, AP75 57.3), mask AP 46.4 (AP50 71.1, AP75 50.4),
# 114 M params, 501 GFLOPs.
_base_ = ['../_base_/mask-rcnn_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_l', model_kwargs=dict(drop_path_rate=0.55)),
    neck=dict(in_channels=[96, 192, 448, 640]))
