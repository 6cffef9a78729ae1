"""Max-Former: counts from specs/maxformer.md sec. 3 (1000 classes; T does not change them).

The checks run at the smallest valid input (16x16: sizes are multiples of 16)
with T=2 time steps instead of the default 4, to keep the full-width models
cheap on CPU; tests/test_maxformer.py covers T=4 and T=1 against the fixtures.
"""
from rows import ModelRow

ROWS = [
    ModelRow(name, params, input_size=(3, 16, 16), create_kwargs=dict(T=2), bad_input_size=bad)
    for name, params, bad in [
        ("maxformer_10_384", 16_237_240, (40, 40)),
        ("maxformer_10_512", 28_653_480, (16, 24)),
        ("maxformer_10_768", 63_992_200, (8, 8)),
    ]
]
