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
