"""InLine DeiT / Swin / PVT / CSwin: counts from specs/inline.md §3.

DeiT, Swin and CSwin are built for one input size (as the official models), so
the rows build them at 32x32 (`img_size`) and any other size is an error.
"""
from rows import ModelRow

_FIXED = dict(create_kwargs=dict(img_size=32), bad_input_size=(64, 64))
_DEIT = dict(create_kwargs=dict(dynamic_img_size=True), bad_input_size=(32, 48))

ROWS = [
    ModelRow("inline_deit_tiny", 6_477_736, **_DEIT),
    ModelRow("inline_deit_small", 16_734_760, **_DEIT),
    ModelRow("inline_deit_base", 23_797_096, **_DEIT),
    ModelRow("inline_swin_tiny", 29_223_544, **_FIXED),
    ModelRow("inline_swin_small", 49_793_296, **_FIXED),
    ModelRow("inline_swin_base", 88_350_120, **_FIXED),
    ModelRow("inline_swin_base_384", 88_465_320, **_FIXED, official_weights=False),
    ModelRow("inline_pvt_tiny", 12_032_232, bad_input_size=(16, 16)),
    ModelRow("inline_pvt_small", 21_556_136, bad_input_size=(16, 16)),
    ModelRow("inline_pvt_medium", 37_618_856, bad_input_size=(16, 16)),
    ModelRow("inline_pvt_large", 51_154_280, bad_input_size=(16, 16)),
    ModelRow("inline_cswin_tiny", 20_604_520, **_FIXED),
    ModelRow("inline_cswin_small", 33_032_872, **_FIXED),
    ModelRow("inline_cswin_base", 73_413_640, **_FIXED),
    ModelRow("inline_cswin_base_384", 73_413_640, **_FIXED, official_weights=False),
]

# Forward FLOPs (2 per multiply-add; GMACs = GFLOPs / 2) of one image at the pretrained cfg's input
# size: zoo.flops.count_model_flops (FlopCounterMode), counted 2026-12-05; tests/test_flops.py compares.
FLOPS = {
    "inline_deit_tiny": 2_218_311_168,  # 1.109 GMACs at 224
    "inline_deit_small": 9_931_624_960,  # 4.966 GMACs at 288
    "inline_deit_base": 34_338_266_112,  # 17.169 GMACs at 448
    "inline_swin_tiny": 8_917_948_416,  # 4.459 GMACs at 224
    "inline_swin_small": 17_438_767_104,  # 8.719 GMACs at 224
    "inline_swin_base": 30_795_603_968,  # 15.398 GMACs at 224
    "inline_swin_base_384": 92_400_304_128,  # 46.200 GMACs at 384
    "inline_pvt_tiny": 3_951_687_680,  # 1.976 GMACs at 224
    "inline_pvt_small": 7_829_737_472,  # 3.915 GMACs at 224
    "inline_pvt_medium": 13_723_860_992,  # 6.862 GMACs at 224
    "inline_pvt_large": 20_259_398_656,  # 10.130 GMACs at 224
    "inline_cswin_tiny": 8_623_225_856,  # 4.312 GMACs at 224
    "inline_cswin_small": 13_545_947_136,  # 6.773 GMACs at 224
    "inline_cswin_base": 29_769_440_256,  # 14.885 GMACs at 224
    "inline_cswin_base_384": 92_440_329_216,  # 46.220 GMACs at 384
}
