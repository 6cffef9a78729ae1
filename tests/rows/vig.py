"""ViG and ViG-H: counts from specs/vig.md §3 (official builder, 1000 classes)."""
from rows import ModelRow

ROWS = [
    ModelRow("vig_t", 5_834_536, bad_input_size=(6, 6)),
    ModelRow("vig_s", 22_615_144, bad_input_size=(6, 6)),
    ModelRow("vig_b", 89_022_184, bad_input_size=(6, 6)),
    ModelRow("vig_h_t", 28_600_680),
    ModelRow("vig_h_s", 50_051_688),
    ModelRow("vig_h_b", 88_904_360),
]
