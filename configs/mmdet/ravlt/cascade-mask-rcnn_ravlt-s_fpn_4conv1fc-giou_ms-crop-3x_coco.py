# Cascade Mask R-CNN 3x (multi-scale + crop), COCO, RAVLT-S backbone (ravlt_s).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/casrcnn_s_3x.py
# 8 GPUs x 2 images, AdamW lr 0.0001.
# Reported (official README): box AP 54.2 (AP50 72.9, AP75 58.7), mask AP 46.8 (AP50 70.5, AP75 50.9),
# 82 M params, 741 GFLOPs.
_base_ = ['../_base_/cascade-mask-rcnn_zoo_fpn_4conv1fc-giou_ms-crop-3x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_s', model_kwargs=dict(drop_path_rate=0.15)),
    neck=dict(in_channels=[64, 128, 320, 512]))
