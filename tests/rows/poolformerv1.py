"""PoolFormer v1 with the official head: counts from specs/poolformer.md §4."""
from rows import ModelRow

ROWS = [
    ModelRow("poolformerv1_s12", 11_915_176),
    ModelRow("poolformerv1_s24", 21_388_968),
    ModelRow("poolformerv1_s36", 30_862_760),
    ModelRow("poolformerv1_m36", 56_172_520),
    ModelRow("poolformerv1_m48", 73_473_448),
]

# Forward FLOPs (2 per multiply-add; GMACs = GFLOPs / 2) of one image at the pretrained cfg's input
# size: zoo.flops.count_model_flops (FlopCounterMode), counted 2026-12-05; tests/test_flops.py compares.
FLOPS = {
    "poolformerv1_s12": 3_624_534_016,  # 1.812 GMACs at 224
    "poolformerv1_s24": 6_784_417_792,  # 3.392 GMACs at 224
    "poolformerv1_s36": 9_944_301_568,  # 4.972 GMACs at 224
    "poolformerv1_m36": 17_517_576_192,  # 8.759 GMACs at 224
    "poolformerv1_m48": 23_066_640_384,  # 11.533 GMACs at 224
}
