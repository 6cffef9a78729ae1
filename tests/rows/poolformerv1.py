"""PoolFormer v1 with the official head: counts from specs/poolformer.md §4."""
from rows import ModelRow

ROWS = [
    ModelRow("poolformerv1_s12", 11_915_176),
    ModelRow("poolformerv1_s24", 21_388_968),
    ModelRow("poolformerv1_s36", 30_862_760),
    ModelRow("poolformerv1_m36", 56_172_520),
    ModelRow("poolformerv1_m48", 73_473_448),
]
