"""RAVLT and MAViT: counts from specs/ravlt.md §3 and specs/mala.md §3."""
from rows import ModelRow

ROWS = [
    ModelRow("ravlt_t", 14_897_768),
    ModelRow("ravlt_s", 25_591_208),
    ModelRow("ravlt_b", 48_241_288),
    ModelRow("ravlt_l", 95_242_440),
    ModelRow("mavit_t", 16_449_128),
    ModelRow("mavit_s", 27_142_568),
    ModelRow("mavit_b", 49_792_648),
    ModelRow("mavit_l", 97_766_088),
]
