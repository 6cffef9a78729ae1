"""Segmentation without mmcv: every hierarchical zoo family is a segmentation_models_pytorch encoder.

smp builds any timm `features_only` model as `tu-<name>` once `import zoo` has registered it. For each
hierarchical family's smallest variant a U-Net trains a few steps on a synthetic mask set (bright squares
on noise) on the CPU: every encoder parameter gets a finite gradient and the loss on the batch falls.
The families with one stride (plain ViTs) cannot serve a U-Net; smp refuses them (its own message).
"""
from __future__ import annotations

import pytest
import torch
from exporting import smallest_by_family

import zoo  # noqa: F401  (registers the zoo's models with timm)

smp = pytest.importorskip("segmentation_models_pytorch")

SIZE = 64  # a multiple of 32: the deepest stride-32 map is 2 x 2

# What a family needs beyond `smp.Unet("tu-<name>")`, and why. Encoder keywords go to timm.create_model.
ENCODER_KWARGS = {
    "inline_swin": dict(img_size=SIZE),   # windows and attention masks are built for one input size
    "inline_cswin": dict(img_size=SIZE),  # stripes are built for one input size (a multiple of 32)
    "maxformer": dict(T=2),               # 2 time steps (of the default 4): half the CPU time, same code path
}
UNET_KWARGS = {
    "maxformer": dict(encoder_depth=4, decoder_channels=(32, 16, 16, 8)),  # 3 stages: strides 4, 8, 16
}
HIERARCHICAL = ("inception_transformer", "inline_cswin", "inline_pvt", "inline_swin", "mavit", "maxformer",
                "poolformerv1", "ravlt", "soft", "soft_norm", "vig_h")
SINGLE_STRIDE = ("ggem_vit", "inline_deit", "vig")  # one stride-16 map: no U-Net, no FPN pyramid
NOT_A_BACKBONE = {"maxim": "an image-restoration network (image in, image out), not a classification backbone"}


def _row(family: str):
    return smallest_by_family()[family]


def _params(families) -> list:
    return [pytest.param(family, id=f"{family}-{_row(family).name}") for family in families]


def unet(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return smp.Unet(f"tu-{_row(family).name}", encoder_weights=None, classes=2,
                    **{"decoder_channels": (32, 16, 16, 8, 8), **UNET_KWARGS.get(family, {})},
                    **ENCODER_KWARGS.get(family, {}))


def squares(batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise images, each with one bright square; the mask marks the square (class 1)."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, SIZE, SIZE, generator=g) * 0.5
    masks = torch.zeros(batch, SIZE, SIZE, dtype=torch.long)
    for i in range(batch):
        top, left = torch.randint(0, SIZE // 2, (2,), generator=g).tolist()
        side = SIZE // 4 + i * 4
        images[i, :, top:top + side, left:left + side] += 2.0
        masks[i, top:top + side, left:left + side] = 1
    return images, masks


def test_every_family_is_sorted_by_its_strides():
    """HIERARCHICAL and SINGLE_STRIDE are what the models' feature_info says (a new family must be added)."""
    listed = set(HIERARCHICAL) | set(SINGLE_STRIDE) | set(NOT_A_BACKBONE)
    assert listed == set(smallest_by_family()), "tests/test_smp.py does not sort every family"
    for family in HIERARCHICAL + SINGLE_STRIDE:
        with torch.device("meta"):
            backbone = zoo.create_model(_row(family).name, features_only=True, **ENCODER_KWARGS.get(family, {}))
        strides = backbone.feature_info.reduction()
        assert (len(set(strides)) > 1) == (family in HIERARCHICAL), f"{family}: strides {strides}"


@pytest.mark.parametrize("family", _params(HIERARCHICAL))
def test_a_unet_on_the_family_trains_on_synthetic_masks(family):
    model = unet(family).train()
    images, masks = squares()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for step in range(4):
        optimizer.zero_grad()
        logits = model(images)
        assert logits.shape == (images.shape[0], 2, SIZE, SIZE)
        loss = torch.nn.functional.cross_entropy(logits, masks)
        loss.backward()
        if step == 0:
            missing = [n for n, p in model.encoder.named_parameters() if p.grad is None]
            assert not missing, f"encoder parameters without a gradient: {missing[:10]}"
            bad = [n for n, p in model.encoder.named_parameters() if not torch.isfinite(p.grad).all()]
            assert not bad, f"encoder parameters with a non-finite gradient: {bad[:10]}"
        losses.append(loss.item())
        optimizer.step()
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert losses[-1] < losses[0], f"the loss on the training batch did not fall: {losses}"


@pytest.mark.parametrize("family", _params(["inline_swin", "inline_cswin"]))
def test_a_fixed_size_family_at_another_size_says_how_to_build_it(family):
    model = smp.Unet(f"tu-{_row(family).name}", encoder_weights=None, classes=2)  # built for 224 x 224
    with pytest.raises(ValueError, match=rf"takes 224x224 inputs .* got {SIZE}x{SIZE}; build it with img_size="):
        model(torch.zeros(1, 3, SIZE, SIZE))


@pytest.mark.parametrize("family", _params(SINGLE_STRIDE))
def test_a_single_stride_family_is_refused_by_smp(family):
    with pytest.raises(ValueError, match="Unsupported model downsampling pattern"):
        smp.Unet(f"tu-{_row(family).name}", encoder_weights=None, classes=2)


def test_a_features_only_backbone_state_dict_loads_into_the_smp_encoder():
    """docs/downstream.md's route for ImageNet weights: timm's features_only model and smp's encoder have
    the same keys, so the official weights (loaded by the zoo's filter) go in with a strict load."""
    backbone = zoo.create_model(_row("ravlt").name, features_only=True)
    model = smp.Unet(f"tu-{_row('ravlt').name}", encoder_weights=None, classes=2)
    model.encoder.model.load_state_dict(backbone.state_dict(), strict=True)
    for name, value in backbone.state_dict().items():
        assert torch.equal(model.encoder.model.state_dict()[name], value), name
