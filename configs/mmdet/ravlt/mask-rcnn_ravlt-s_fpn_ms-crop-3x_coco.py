# Mask R-CNN 3x (multi-scale + crop), COCO, RAVLT-S backbone (ravlt_s).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/maskrcnn_s_3x.py
# 8 GPUs x 2 images, AdamW lr 0.0001.
# Reported (official README): box AP 51.4 (AP50 72.3, AP75 56.5), mask AP 45.5 (AP50 69.7, AP75 48.8),
# 44 M params, 262 GFLOPs.
_base_ = ['../_base_/mask-rcnn_zoo_fpn_ms-crop-3x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_s', model_kwargs=dict(drop_path_rate=0.15)),
    neck=dict(in_channels=[64, 128, 320, 512]))
