# UperNet 160k, ADE20K 512x512, iFormer-S backbone (inception_transformer_small).
# Inception Transformer (arXiv:2205.12956, NeurIPS 2022), https://github.com/sail-sg/iFormer (commit 725d8e7).
# Not timm's iformer_* (iFormer, ICLR 2025), an unrelated model.
# The repository has no segmentation code or config and the paper's settings are not published
# (the README gives results only): everything below is the zoo's choice, the shared UperNet 160k base (the RAVLT
# setting): 8 GPUs x 2 images, AdamW lr 6e-5, wd 0.01, no decay on 'norm' parameters, warm-up 1500
# iters, poly decay (power 1.0), fp16 (loss scale 512), stem / downsampling BatchNorms as SyncBN;
# drop_path_rate 0.2 as in ImageNet training.
# Features: the four stage outputs (strides 4-32, no extra norms); every stage's position embedding is
# resized bilinearly to the input's grid, so non-square inputs work; stages 1-2 need even token grids
# (inputs divisible by 16): training crops are 512 x 512.
# Whole-image test at (2048, 512) keeps the aspect ratio: test images are padded to a multiple of 32
# (data_preprocessor test_cfg; the padding is cropped off the prediction) for the even-grid rule.
# Reported (official README): mIoU 48.4, 49 M params, 938 GFLOPs (this config: 49.2 M params).
_base_ = ['../_base_/upernet_zoo_160k_ade20k-512x512.py']

model = dict(
    data_preprocessor=dict(test_cfg=dict(size_divisor=32)),
    backbone=dict(model_name='inception_transformer_small', model_kwargs=dict(drop_path_rate=0.2)),
    decode_head=dict(in_channels=[96, 192, 320, 384]),
    auxiliary_head=dict(in_channels=320))
