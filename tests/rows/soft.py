"""SOFT and SOFT-Norm: counts from specs/soft.md §3 (code builders; the 24M Small from the README)."""
from rows import ModelRow

_NO_WEIGHTS = dict(official_weights=False)
# SOFT-Norm chooses the Newton start over the whole batch (specs/soft.md §2.5): an image's eval
# output depends on its batch by design; tests/test_soft.py checks per_sample_step=True removes it.
_BATCH_COUPLED = dict(batch_independent=False)
_COMMON = dict(bad_input_size=(28, 28), global_pools=("token", "avg"))

ROWS = [
    ModelRow("soft_tiny", 13_069_056, **_COMMON),
    ModelRow("soft_small", 38_858_462, **_NO_WEIGHTS, **_COMMON),
    ModelRow("soft_small_24m", 24_110_092, **_NO_WEIGHTS, **_COMMON),
    ModelRow("soft_medium", 45_812_707, **_NO_WEIGHTS, **_COMMON),
    ModelRow("soft_large", 64_700_646, **_NO_WEIGHTS, **_COMMON),
    ModelRow("soft_huge", 87_108_273, **_NO_WEIGHTS, **_COMMON),
    ModelRow("soft_norm_tiny", 13_069_056, **_BATCH_COUPLED, **_COMMON),
    ModelRow("soft_norm_small", 38_858_462, **_BATCH_COUPLED, **_COMMON),
    ModelRow("soft_norm_small_24m", 24_110_092, **_BATCH_COUPLED, **_COMMON),
    ModelRow("soft_norm_medium", 45_812_707, **_BATCH_COUPLED, **_COMMON),
    ModelRow("soft_norm_large", 64_700_646, **_BATCH_COUPLED, **_COMMON),
    ModelRow("soft_norm_huge", 87_108_273, **_NO_WEIGHTS, **_BATCH_COUPLED, **_COMMON),
]

# Forward FLOPs (2 per multiply-add; GMACs = GFLOPs / 2) of one image at the pretrained cfg's input
# size: zoo.flops.count_model_flops (FlopCounterMode), counted 2026-12-05; tests/test_flops.py compares.
# Counted on the CPU (SOFT's forward does not run on the meta device): built from seed 0, fixed image;
# SOFT-Norm's halving start runs a data-dependent number of Newton-start steps.
FLOPS = {
    "soft_tiny": 4_231_712_896,  # 2.116 GMACs at 224
    "soft_small": 14_793_018_336,  # 7.397 GMACs at 224
    "soft_small_24m": 7_482_806_336,  # 3.741 GMACs at 224
    "soft_medium": 17_361_543_792,  # 8.681 GMACs at 224
    "soft_large": 26_359_191_136,  # 13.180 GMACs at 224
    "soft_huge": 37_309_167_824,  # 18.655 GMACs at 224
    "soft_norm_tiny": 4_335_244_016,  # 2.168 GMACs at 224
    "soft_norm_small": 15_346_909_828,  # 7.673 GMACs at 224
    "soft_norm_small_24m": 7_700_221_688,  # 3.850 GMACs at 224
    "soft_norm_medium": 18_073_320_242,  # 9.037 GMACs at 224
    "soft_norm_large": 27_430_738_228,  # 13.715 GMACs at 224
    "soft_norm_huge": 38_761_191_782,  # 19.381 GMACs at 224
}
