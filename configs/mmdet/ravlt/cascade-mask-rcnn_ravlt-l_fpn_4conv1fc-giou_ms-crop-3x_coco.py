# Cascade Mask R-CNN 3x (multi-scale + crop), COCO, RAVLT-L backbone (ravlt_l).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/casrcnn_l_3x.py
# 8 GPUs x 2 images, AdamW lr 0.0001.
# Reported (official README): box AP 55.6 (AP50 74.1, AP75 60.5), mask AP 48.0 (AP50 71.8, AP75 52.3),
# 152 M params, 979 GFLOPs.
_base_ = ['../_base_/cascade-mask-rcnn_zoo_fpn_4conv1fc-giou_ms-crop-3x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_l', model_kwargs=dict(drop_path_rate=0.55)),
    neck=dict(in_channels=[96, 192, 448, 640]))
