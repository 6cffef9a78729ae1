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
