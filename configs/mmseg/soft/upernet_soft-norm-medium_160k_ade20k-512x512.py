# UperNet 160k, ADE20K 512x512, SOFT-Medium-Norm backbone (soft_norm_medium).
# Softmax-free Linear Transformers (SOFT-Norm; IJCV 2024, arXiv:2207.03341), https://github.com/fudan-zvg/SOFT
# (commit d3febc3).
# The README reports a "1x" UperNet schedule at 512x512 crop and ships no config: the settings are the zoo's
# choice, the shared UperNet 160k base (the RAVLT setting): 8 GPUs x 2 images, AdamW lr 6e-5, wd 0.01, no
# decay on 'norm' parameters, warm-up 1500 iters, poly decay (power 1.0) to 160k, fp16 (loss scale 512;
# the Newton inverse runs in fp32 regardless), stem / downsampling BatchNorms as SyncBN;
# drop_path_rate 0.1 as in ImageNet training.
# Features: the four stage outputs (strides 4-32; the last without its cls token). The repository ships no
# mmdet / mmseg code or config, so how the paper tapped them is not documented.
# Reported (official README, ADE20K val): mIoU 48.0, 76 M params (this config: 75.7 M).
_base_ = ['../_base_/upernet_zoo_160k_ade20k-512x512.py']

model = dict(
    backbone=dict(model_name='soft_norm_medium', model_kwargs=dict(drop_path_rate=0.1)),
    decode_head=dict(in_channels=[64, 128, 288, 512]),
    auxiliary_head=dict(in_channels=288))
