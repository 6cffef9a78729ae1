"""Inception Transformer: counts from specs/iformer.md §3 (official factories, 1000 classes).

Built at their own img_size (224 / 384 position embeddings, so the counts are the
official ones) and run at 32x32, which resizes the position embeddings to the
8/4/2/1 grids. 40x40 gives a stride-8 grid of 5x5, which the 2x2-pooled
attention of stage 2 cannot take.
"""
from rows import ModelRow

_NAMES = {
    "inception_transformer_small": 19_866_344,
    "inception_transformer_base": 47_866_216,
    "inception_transformer_large": 86_637_096,
    "inception_transformer_small_384": 20_899_944,
    "inception_transformer_base_384": 48_936_296,
    "inception_transformer_large_384": 87_743_656,
}

ROWS = [ModelRow(name, params, bad_input_size=(40, 40)) for name, params in _NAMES.items()]

# Forward FLOPs (2 per multiply-add; GMACs = GFLOPs / 2) of one image at the pretrained cfg's input
# size: zoo.flops.count_model_flops (FlopCounterMode), counted 2026-12-05; tests/test_flops.py compares.
FLOPS = {
    "inception_transformer_small": 9_651_657_472,  # 4.826 GMACs at 224
    "inception_transformer_base": 18_683_907_072,  # 9.342 GMACs at 224
    "inception_transformer_large": 28_008_318_976,  # 14.004 GMACs at 224
    "inception_transformer_small_384": 32_062_513_152,  # 16.031 GMACs at 384
    "inception_transformer_base_384": 60_890_877_952,  # 30.445 GMACs at 384
    "inception_transformer_large_384": 90_418_497_536,  # 45.209 GMACs at 384
}
