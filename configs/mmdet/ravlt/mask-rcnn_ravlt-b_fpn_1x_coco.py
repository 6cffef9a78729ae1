# Mask R-CNN 1x, COCO, RAVLT-B backbone (ravlt_b).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/maskrcnn_m_1x.py
# 8 GPUs x 2 images, AdamW lr 0.0001.
# Reported (official README): box AP 51.2 (AP50 72.7, AP75 56.4), mask AP 45.7 (AP50 69.9, AP75 49.5),
# 67 M params, 372 GFLOPs.
_base_ = ['../_base_/mask-rcnn_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_b', model_kwargs=dict(drop_path_rate=0.4)),
    neck=dict(in_channels=[96, 192, 384, 512]))
