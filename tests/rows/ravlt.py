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

# Forward FLOPs (2 per multiply-add; GMACs = GFLOPs / 2) of one image at the pretrained cfg's input
# size: zoo.flops.count_model_flops (FlopCounterMode), counted 2026-12-05; tests/test_flops.py compares.
FLOPS = {
    "ravlt_t": 5_226_624_000,  # 2.613 GMACs at 224
    "ravlt_s": 9_756_776_704,  # 4.878 GMACs at 224
    "ravlt_b": 21_159_109_632,  # 10.580 GMACs at 224
    "ravlt_l": 34_417_854_208,  # 17.209 GMACs at 224
    "mavit_t": 5_278_848_000,  # 2.639 GMACs at 224
    "mavit_s": 9_807_997_184,  # 4.904 GMACs at 224
    "mavit_b": 21_208_323_072,  # 10.604 GMACs at 224
    "mavit_l": 34_512_748_288,  # 17.256 GMACs at 224
}
