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
