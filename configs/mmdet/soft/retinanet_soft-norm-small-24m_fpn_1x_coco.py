# RetinaNet 1x, COCO, SOFT-Small-Norm backbone (soft_norm_small_24m).
# Softmax-free Linear Transformers (SOFT-Norm; IJCV 2024, arXiv:2207.03341), https://github.com/fudan-zvg/SOFT
# (commit d3febc3).
# No official detection config: the settings are the zoo's choice, the shared RetinaNet 1x base (the RAVLT
# setting): 8 GPUs x 2 images, AdamW lr 0.0001, wd 1e-4, warm-up 500 iters, steps at epochs 8 and 11,
# 1333x800 + flip, fp16 (loss scale 512; the Newton inverse runs in fp32 regardless), stem / downsampling
# BatchNorms as SyncBN; drop_path_rate 0.1 as in ImageNet training. Stage 1 is computed but unused
# (FPN start_level=1): find_unused_parameters=True.
# Features: the four stage outputs (strides 4-32; the last without its cls token). The repository ships no
# mmdet / mmseg code or config, so how the paper tapped them is not documented.
# Small: the README's SOFT-Small-Norm (24 M, 3.3 GFLOPs) cannot be the code's soft_norm_small (depths
# 1-3-20-4, 38.9 M); depths 1-3-7-4 (soft_norm_small_24m, 24.1 M, same widths) fit its params and FLOPs
# (model_cards/soft.md, Variants) and its detectors' and segmentor's reported sizes (below). Unverified against the
# SOFT_Small_norm checkpoint: loaded into the wrong depth, it fails naming the size it fits.
# Reported (official README, COCO val2017): box AP 42.8, 34 M params
# (this config: 33.8 M; with soft_norm_small: 48.6 M).
_base_ = ['../_base_/retinanet_zoo_fpn_1x_coco.py']

model = dict(
    backbone=dict(model_name='soft_norm_small_24m', model_kwargs=dict(drop_path_rate=0.1)),
    neck=dict(in_channels=[64, 128, 320, 512]))
