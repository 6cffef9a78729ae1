# Semantic FPN, ADE20K 512x512, 40k iterations: PoolFormer's segmentation schedule (official
# segmentation/configs/sem_fpn/PoolFormer/fpn_poolformer_*_ade20k_40k.py, mmseg 0.19): 8 GPUs x 4 images,
# AdamW lr 2e-4, wd 1e-4, poly 0.9 to 0, 40k iterations (mmseg's 4-GPU 80k schedule halved, lr doubled), fp32.
_base_ = ['./fpn_zoo_80k_ade20k-512x512.py']

optim_wrapper = dict(optimizer=dict(lr=2e-4, weight_decay=1e-4))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=40000, by_epoch=False)]
train_cfg = dict(max_iters=40000, val_interval=4000)
train_dataloader = dict(batch_size=4, num_workers=4)
