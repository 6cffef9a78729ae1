# Mask R-CNN + FPN, 1x (12 epochs), COCO, with a zoo backbone: the RAVLT / MAViT
# papers' setting (official configs maskrcnn_*_1x.py, mmdet 2.11), in mmdet 3.
# The backbone configs in ../ravlt, ../mavit set model_name, widths and lr.
#
# Official: 8 GPUs x 2 images, AdamW lr 1e-4 (MAViT 4e-4), wd 0.05, no decay on
# parameters whose name contains 'norm', linear warm-up 500 iters x 0.001,
# steps at epochs 8 and 11, 1333x800 + flip, fp16 (mmdet 2's `fp16 = dict()`:
# static loss scale 512), backbone BatchNorms are SyncBN and keep updating
# their statistics (the official norm_eval never froze them; see zoo.mm.backbone).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../../mm_base/zoo_backbone.py',
]

model = dict(
    backbone={{_base_.zoo_backbone}},
    neck=dict(in_channels=[64, 128, 256, 512]))

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale=512.,
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))

train_dataloader = dict(batch_size=2, num_workers=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)  # 8 GPUs x 2 images
sync_bn = 'torch'  # multi-GPU: backbone BatchNorms as SyncBN, as in the official backbone
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
