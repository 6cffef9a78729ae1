# Semantic FPN (FPN 256 channels, 4 outputs; FPNHead 128 channels, dropout 0.1),
# ADE20K 512x512, 80k iterations, with a zoo backbone (official RALA_FPN_*_1x.py /
# FPN_*_1x.py, mmseg 0.13): 8 GPUs x 2 images, AdamW lr 1e-4, wd 1e-4 (no
# paramwise rules), poly decay (power 0.9, min lr 1e-6), fp32; augmentation and
# test as UperNet.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
    '../../mm_base/zoo_backbone.py',
]

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone={{_base_.zoo_backbone}},
    neck=dict(in_channels=[64, 128, 320, 512], out_channels=256, num_outs=4),
    decode_head=dict(num_classes=150))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=0, end=80000, by_epoch=False),
]
train_dataloader = dict(batch_size=2, num_workers=2)
train_cfg = dict(val_interval=4000)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4000, max_keep_ckpts=1))
sync_bn = 'torch'
