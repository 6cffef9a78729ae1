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

# Forward FLOPs (2 per multiply-add; GMACs = GFLOPs / 2) of one image at the pretrained cfg's input
# size: zoo.flops.count_model_flops (FlopCounterMode), counted 2026-12-05; tests/test_flops.py compares.
FLOPS = {
    "vig_t": 2_335_524_864,  # 1.168 GMACs at 224
    "vig_s": 8_962_904_064,  # 4.481 GMACs at 224
    "vig_b": 35_093_225_472,  # 17.547 GMACs at 224
    "vig_h_t": 8_988_960_768,  # 4.494 GMACs at 224
    "vig_h_s": 17_502_222_336,  # 8.751 GMACs at 224
    "vig_h_b": 31_113_977_856,  # 15.557 GMACs at 224
}
