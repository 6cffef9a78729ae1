# Mask R-CNN 3x (multi-scale + crop), COCO, RAVLT-B backbone (ravlt_b).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/maskrcnn_m_3x.py
# 8 GPUs x 2 images, AdamW lr 0.0001.
# Reported (official README): box AP 52.7 (AP50 73.5, AP75 57.7), mask AP 46.4 (AP50 70.6, AP75 50.2),
# 67 M params, 372 GFLOPs.
_base_ = ['../_base_/mask-rcnn_zoo_fpn_ms-crop-3x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_b', model_kwargs=dict(drop_path_rate=0.4)),
    neck=dict(in_channels=[96, 192, 384, 512]))
