# Mask R-CNN 1x, COCO, RAVLT-S backbone (ravlt_s).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/maskrcnn_s_1x.py
# 8 GPUs x 2 images, AdamW lr 0.0001.
# Reported (official README): box AP 49.8 (AP50 71.3, AP75 54.5), mask AP 44.6 (AP50 68.5, AP75 48.2),
# 44 M params, 262 GFLOPs.
_base_ = ['../_base_/mask-rcnn_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_s', model_kwargs=dict(drop_path_rate=0.15)),
    neck=dict(in_channels=[64, 128, 320, 512]))
