# The backbone block every mmdet / mmseg _base_ config shares: a zoo model as the backbone, by name, with
# the official ImageNet weights. A _base_ config lists this file and uses it as
# `model = dict(backbone={{_base_.zoo_backbone}}, ...)`; the family configs set model_name, drop path and
# the neck's widths.
custom_imports = dict(imports=['zoo.mm'], allow_failed_imports=False)

zoo_backbone = dict(
    _delete_=True,  # replaces the ResNet of mmdet's / mmseg's model base
    type='ZooBackbone',
    model_name='ravlt_t',
    out_indices=(0, 1, 2, 3),
    frozen_stages=-1,
    norm_eval=False,
    model_kwargs=dict(drop_path_rate=0.1),
    # 'official': the ImageNet weights timm.create_model(name, pretrained=True) loads;
    # or a path / URL to the official classification checkpoint.
    init_cfg=dict(type='Pretrained', checkpoint='official'))
