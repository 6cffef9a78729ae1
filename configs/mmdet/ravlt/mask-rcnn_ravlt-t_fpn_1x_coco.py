# Mask R-CNN 1x, COCO, RAVLT-T backbone (ravlt_t).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/maskrcnn_t_1x.py
# 8 GPUs x 2 images, AdamW lr 0.0001.
# Reported (official README): box AP 47.3 (AP50 69.1, AP75 51.9), mask AP 42.7 (AP50 66.2, AP75 46.0),
# 33 M params, 219 GFLOPs.
_base_ = ['../_base_/mask-rcnn_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_t', model_kwargs=dict(drop_path_rate=0.1)),
    neck=dict(in_channels=[64, 128, 256, 512]))
