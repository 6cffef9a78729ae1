# RetinaNet + FPN (start_level=1, extra convs on input), 1x, COCO (official
# retinanet_*_1x.py): AdamW lr 1e-4 (MAViT 4e-4), wd 1e-4, no paramwise rules,
# warm-up 500 iters x 0.001, steps at 8 and 11, fp16 loss scale 512.  The
# stride-4 feature (and its LayerNorm) is computed but unused, as officially:
# find_unused_parameters=True.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../../mm_base/zoo_backbone.py',
]

model = dict(
    backbone={{_base_.zoo_backbone}},
    neck=dict(in_channels=[64, 128, 256, 512], start_level=1, add_extra_convs='on_input', num_outs=5))

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale=512.,
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=1e-4))

train_dataloader = dict(batch_size=2, num_workers=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
find_unused_parameters = True
sync_bn = 'torch'
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
