# Cascade Mask R-CNN 3x (multi-scale + crop), COCO, RAVLT-B backbone (ravlt_b).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/casrcnn_m_3x.py
# 8 GPUs x 2 images, AdamW lr 0.0001.
# Reported (official README): box AP 55.3 (AP50 73.8, AP75 60.1), mask AP 47.7 (AP50 71.4, AP75 52.1),
# 105 M params, 851 GFLOPs.
_base_ = ['../_base_/cascade-mask-rcnn_zoo_fpn_4conv1fc-giou_ms-crop-3x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_b', model_kwargs=dict(drop_path_rate=0.4)),
    neck=dict(in_channels=[96, 192, 384, 512]))
