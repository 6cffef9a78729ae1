"""ViTs with GGeM pooling (zoo.models.ggem).

Counts: timm's vit_base_patch16_224 (86,567,656) / vit_large_patch16_224 (304,326,632)
parameters plus GGeM's G exponents, G = heads = 12 / 16 (specs/ggem.md §2.5-2.6: p is
the only new state). dynamic_img_size keeps the default 14x14 position table (so the count
is the default constructor's) while the checks run at 32x32.
"""
from rows import ModelRow

_KW = dict(dynamic_img_size=True)
_POOLS = ("ggem", "token", "avg", "max")

ROWS = [
    ModelRow("vit_base_patch16_224_ggem", 86_567_656 + 12, create_kwargs=_KW, bad_input_size=(40, 40),
             global_pools=_POOLS),
    # ViT-L: fewer pools (each is a 304M-parameter build); ViT-B covers them all.
    ModelRow("vit_large_patch16_224_ggem", 304_326_632 + 16, create_kwargs=_KW, bad_input_size=(40, 40),
             global_pools=("ggem", "token")),
]
