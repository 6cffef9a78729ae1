# UperNet (pool scales 1,2,3,6, 512 channels) + auxiliary FCN head on stage 3
# (weight 0.4), ADE20K 512x512, 160k iterations, with a zoo backbone: the
# RAVLT / MAViT papers' setting (official RALA_Uper_*_2x.py / Uper_*_2x.py,
# mmseg 0.13), in mmseg 1.  The backbone configs in ../ravlt, ../mavit set the
# model and widths.
#
# Official: 8 GPUs x 2 images, AdamW lr 6e-5, wd 0.01, no decay on 'norm'
# parameters, linear warm-up 1500 iters from 1e-6, poly decay (power 1.0,
# min lr 0) to 160k, fp16 (loss scale 512); resize (2048, 512) x 0.5-2.0,
# crop 512 (cat_max_ratio 0.75), flip, photometric distortion; single-scale
# whole-image test at (2048, 512).
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    '../../mm_base/zoo_backbone.py',
]

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone={{_base_.zoo_backbone}},
    decode_head=dict(in_channels=[64, 128, 320, 512], num_classes=150),
    auxiliary_head=dict(in_channels=320, num_classes=150))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale=512.,
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]
train_dataloader = dict(batch_size=2, num_workers=2)
train_cfg = dict(val_interval=8000)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=8000, max_keep_ckpts=1, save_best='mIoU'))
sync_bn = 'torch'
