# Cascade Mask R-CNN 3x (multi-scale + crop), COCO, MAViT-L backbone (mavit_l).
# Rectifying Magnitude Neglect in Linear Attention (arXiv:2507.00698), https://github.com/qhfan/MALA; official config: detect/configs/MALA/casrcnn_l_3x.py
# 8 GPUs x 1 image, AdamW lr 0.0002.
# Reported: the official repository's README has no COCO table and the paper's was not
# readable when this config was written; compare with the MAViT paper,
# arXiv:2507.00698.
_base_ = ['../_base_/cascade-mask-rcnn_zoo_fpn_4conv1fc-giou_ms-crop-3x_coco.py']

model = dict(
    backbone=dict(model_name='mavit_l', model_kwargs=dict(drop_path_rate=0.55)),
    neck=dict(in_channels=[96, 192, 448, 640]))

optim_wrapper = dict(optimizer=dict(lr=0.0002))
train_dataloader = dict(batch_size=1, num_workers=1)
auto_scale_lr = dict(base_batch_size=8)
