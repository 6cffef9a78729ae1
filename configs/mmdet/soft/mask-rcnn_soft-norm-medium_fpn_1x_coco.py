# Mask R-CNN 1x, COCO, SOFT-Medium-Norm backbone (soft_norm_medium).
# Softmax-free Linear Transformers (SOFT-Norm; IJCV 2024, arXiv:2207.03341), https://github.com/fudan-zvg/SOFT
# (commit d3febc3).
# No official detection config: the settings are the zoo's choice, the shared Mask R-CNN 1x base (the RAVLT
# setting): 8 GPUs x 2 images, AdamW lr 0.0001, wd 0.05, no decay on 'norm' parameters, warm-up 500 iters,
# steps at epochs 8 and 11, 1333x800 + flip, fp16 (loss scale 512; the Newton inverse runs in fp32
# regardless), stem / downsampling BatchNorms as SyncBN; drop_path_rate 0.1 as in ImageNet training.
# Features: the four stage outputs (strides 4-32; the last without its cls token). The repository ships no
# mmdet / mmseg code or config, so how the paper tapped them is not documented.
# Reported (official README, COCO val2017): box AP 46.6, mask AP 42.0, 65 M params (this config: 65.5 M).
_base_ = ['../_base_/mask-rcnn_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='soft_norm_medium', model_kwargs=dict(drop_path_rate=0.1)),
    neck=dict(in_channels=[64, 128, 288, 512]))
