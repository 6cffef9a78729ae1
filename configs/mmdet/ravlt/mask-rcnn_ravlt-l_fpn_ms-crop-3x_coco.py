# Mask R-CNN 3x (multi-scale + crop), COCO, RAVLT-L backbone (ravlt_l).
# Breaking the Low-Rank Dilemma of Linear Attention (arXiv:2411.07635), https://github.com/qhfan/RALA; official config: detection/configs/RALA/maskrcnn_l_3x.py
# 8 GPUs x 1 image, AdamW lr 0.0001.
# Reported (official README): box AP 53.6 (AP50 74.4, AP75 58.9), mask AP 47.3 (AP50 71.6, AP75 51.2),
# 114 M params, 501 GFLOPs.
_base_ = ['../_base_/mask-rcnn_zoo_fpn_ms-crop-3x_coco.py']

model = dict(
    backbone=dict(model_name='ravlt_l', model_kwargs=dict(drop_path_rate=0.55)),
    neck=dict(in_channels=[96, 192, 448, 640]))

train_dataloader = dict(batch_size=1, num_workers=1)
auto_scale_lr = dict(base_batch_size=8)
