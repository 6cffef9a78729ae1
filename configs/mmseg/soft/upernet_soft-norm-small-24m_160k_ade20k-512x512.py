# UperNet 160k, ADE20K 512x512, SOFT-Small-Norm backbone (soft_norm_small_24m).
# Softmax-free Linear Transformers (SOFT-Norm; IJCV 2024, arXiv:2207.03341), https://github.com/fudan-zvg/SOFT
# (commit d3febc3).
# The README reports a "1x" UperNet schedule at 512x512 crop and ships no config: the settings are the zoo's
# choice, the shared UperNet 160k base (the RAVLT setting): 8 GPUs x 2 images, AdamW lr 6e-5, wd 0.01, no
# decay on 'norm' parameters, warm-up 1500 iters, poly decay (power 1.0) to 160k, fp16 (loss scale 512;
# the Newton inverse runs in fp32 regardless), stem / downsampling BatchNorms as SyncBN;
# drop_path_rate 0.1 as in ImageNet training.
# Features: the four stage outputs (strides 4-32; the last without its cls token). The repository ships no
# mmdet / mmseg code or config, so how the paper tapped them is not documented.
# Small: the README's SOFT-Small-Norm (24 M, 3.3 GFLOPs) cannot be the code's soft_norm_small (depths
# 1-3-20-4, 38.9 M); depths 1-3-7-4 (soft_norm_small_24m, 24.1 M, same widths) fit its params and FLOPs
# (model_cards/soft.md, Variants) and its detectors' and segmentor's reported sizes (below). Unverified against the
# SOFT_Small_norm checkpoint: loaded into the wrong depth, it fails naming the size it fits.
# Reported (official README, ADE20K val): mIoU 46.2, 54 M params
# (this config: 54.1 M; with soft_norm_small: 68.8 M).
_base_ = ['../_base_/upernet_zoo_160k_ade20k-512x512.py']

model = dict(
    backbone=dict(model_name='soft_norm_small_24m', model_kwargs=dict(drop_path_rate=0.1)),
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320))
