"""zoo.flops: the SDPA formulas on every CPU backend, the kernel ops' formulas, hand counts, and the pins.

Every expected count here is computed by hand from shapes (2 FLOPs per multiply-add), or by an
independent counter (forward hooks on Conv2d / Linear), never by FlopCounterMode itself. Each
model's pin is the figure its card records (zoo/metadata/<card>.yaml, `flops.zoo`), counted once
and compared exactly here, so any change to what a model computes shows up, and the card with it.
"""
from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from rows import all_rows
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import zoo  # noqa: F401  (registers the models and the SDPA formulas)
from zoo.flops import FlopCount, count_flops, count_model_flops

ROWS = all_rows()
B, H, L, S, E, EV = 2, 3, 5, 7, 8, 4


def _count(fn, *args, **kwargs) -> int:
    with FlopCounterMode(display=False) as mode:
        fn(*args, **kwargs)
    return mode.get_total_flops()


def _qkv(requires_grad: bool = False, ev: int = EV):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, n, d, generator=g) for n, d in ((L, E), (S, E), (S, ev)))
    return [t.requires_grad_(requires_grad) for t in (q, k, v)]


def sdpa_by_hand(ev: int = EV) -> int:
    return 2 * B * H * L * S * E + 2 * B * H * L * S * ev          # Q K^T, then P V


def sdpa_backward_by_hand(ev: int = EV) -> int:
    return 2 * B * H * L * S * (3 * E + 2 * ev)                    # Q K^T again, then dP, dV, dQ, dK


# The CPU flash kernel needs the value width equal to the query's.
@pytest.mark.parametrize("backend, ev", [(SDPBackend.MATH, EV), (SDPBackend.FLASH_ATTENTION, E)])
def test_sdpa_forward_counts_the_two_products_on_every_cpu_backend(backend, ev):
    q, k, v = _qkv(ev=ev)
    with sdpa_kernel([backend]):
        assert _count(F.scaled_dot_product_attention, q, k, v) == sdpa_by_hand(ev)


def test_sdpa_on_the_meta_device():
    q, k, v = (t.to("meta") for t in _qkv())
    assert _count(F.scaled_dot_product_attention, q, k, v) == sdpa_by_hand()


def test_cpu_flash_sdpa_backward():
    q, k, v = _qkv(requires_grad=True, ev=E)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]), FlopCounterMode(display=False) as mode:
        F.scaled_dot_product_attention(q, k, v).sum().backward()
    ops = {str(op): n for op, n in mode.get_flop_counts()["Global"].items()}
    assert ops == {"aten._scaled_dot_product_flash_attention_for_cpu": sdpa_by_hand(E),
                   "aten._scaled_dot_product_flash_attention_for_cpu_backward": sdpa_backward_by_hand(E)}


def _conv_linear_flops_by_hooks(model: nn.Module, image: torch.Tensor) -> int:
    """An independent count: 2 x (multiply-adds) of every Conv2d and Linear, from shapes seen by hooks."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        else:
            per_output = module.in_features
        total += 2 * output.numel() * per_output

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model.eval()(image)
    finally:
        for h in handles:
            h.remove()
    return total


def test_a_small_network_counted_by_hand():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    by_hand = 2 * (8 * 8 * 8 * 3 * 9 + 8 * 8 * 8 * 1 * 9 + 8 * 10)  # conv 8x8 out, depthwise, linear
    count = count_flops(model, (3, 16, 16), batch_size=3)
    assert count.flops == 3 * by_hand
    assert count.macs == count.flops / 2
    assert count_flops(model.to("meta"), (3, 16, 16), batch_size=3).flops == 3 * by_hand


def test_a_zoo_model_is_the_sum_of_its_layers():
    # PoolFormer: convolutions, pooling, norms and a linear head, nothing else that FlopCounterMode counts.
    model = zoo.create_model("poolformerv1_s12", depths=(1, 1, 2, 1), dims=(16, 24, 32, 48), num_classes=10)
    image = torch.randn(2, 3, 64, 64)
    count = count_flops(model, (3, 64, 64), batch_size=2)
    assert count.flops == _conv_linear_flops_by_hooks(model, image) > 0


def test_a_zoo_model_with_sdpa_and_a_kernel_op_is_the_sum_of_its_parts(monkeypatch):
    # A small RAVLT at 64x64 (head dim 16): conv / linear layers (hooks) + RALA in stages 1-2 (the op's formula,
    # from the shapes it is called with) + softmax attention in stages 3-4 (SDPA, 2 B H L S (E + Ev) by hand).
    import zoo.layers.gated_attention as mixer
    from zoo.kernels.linear_attention import linear_attention_flops

    sdpa_calls, linear_calls = [], []
    sdpa, linear = F.scaled_dot_product_attention, mixer.linear_attention

    def record_sdpa(q, k, v, *args, **kwargs):
        sdpa_calls.append((q.shape, k.shape, v.shape))
        return sdpa(q, k, v, *args, **kwargs)

    def record_linear(q, k, v, *args, **kwargs):
        linear_calls.append((kwargs["variant"], q.shape))
        return linear(q, k, v, *args, **kwargs)

    model = zoo.create_model("ravlt_t", embed_dims=(32, 32, 64, 64), depths=(1, 1, 1, 1), num_heads=(2, 2, 4, 4))
    monkeypatch.setattr(F, "scaled_dot_product_attention", record_sdpa)
    monkeypatch.setattr(mixer, "linear_attention", record_linear)
    by_layers = _conv_linear_flops_by_hooks(model, torch.randn(1, 3, 64, 64))
    assert sdpa_calls and linear_calls, "the model no longer calls SDPA / linear_attention where this test looks"
    by_hand = by_layers + sum(2 * q[0] * q[1] * q[2] * k[2] * (q[3] + v[3]) for q, k, v in sdpa_calls)
    by_hand += sum(linear_attention_flops(variant, shape) for variant, shape in linear_calls)
    monkeypatch.undo()
    assert count_flops(model, (3, 64, 64)).flops == by_hand


def test_count_flops_restores_the_mode_and_checks_its_arguments():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Dropout(0.5)).train()
    count_flops(model, (3, 8, 8))
    assert model.training
    with pytest.raises(ValueError, match="input_size must be"):
        count_flops(model, (8, 8))
    with pytest.raises(ValueError, match="batch_size must be"):
        count_flops(model, (3, 8, 8), batch_size=0)


def test_flop_count_reads_as_labelled_units():
    count = FlopCount(4_900_000_000, (3, 224, 224), 1)
    assert str(count) == "4.900 GFLOPs = 2.450 GMACs (multiply-adds) for a batch of 1 at 3x224x224"


def _same_architecture_as(row) -> str | None:
    """The row whose model this one shares (MAXIM's per-task names: one constructor, other weights), if any."""
    for why in row.not_applicable.values():
        match = re.match(r"same architecture and constructor as (\w+)", why)
        if match:
            return match.group(1)
    return None


def _pin_cases():
    for row in ROWS:
        # SOFT runs on the CPU (no meta device: torch.autocast, data-dependent Newton start) and its many small
        # Newton ops cost FlopCounterMode's per-op overhead: beyond the Tiny models, a count takes 10-90 s here.
        # SOFT's pins were counted on the CPU from seed 0 and a fixed image: SOFT-Norm's halving start runs a
        # data-dependent number of Newton-start steps.
        slow = row.name.startswith("soft_") and not row.name.endswith("_tiny")
        yield pytest.param(row, id=row.name, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("row", list(_pin_cases()))
def test_flops_are_pinned_for_every_registered_model(row, request):
    if row.name.startswith("soft_") and not row.name.endswith("_tiny") and "slow" not in (
            request.config.getoption("markexpr") or ""):
        pytest.skip("SOFT beyond Tiny counts on the CPU (10-130 s each): `pytest -m slow tests/test_flops.py`; "
                    "soft_tiny and soft_norm_tiny pin the family's code path in the default run")
    assert row.flops is not None, f"{row.name}: its card records no FLOPs (flops.zoo in zoo/metadata)"
    reference = _same_architecture_as(row)
    if reference is not None:  # counted once, on the reference name
        assert row.flops == next(r.flops for r in ROWS if r.name == reference)
        return
    count = count_model_flops(row.name)
    assert count.flops == row.flops, (f"{row.name}: {count} at the cfg input size; the pin says {row.flops:,} "
                                      f"FLOPs. A change to what the model computes? Update flops.zoo in zoo/metadata, "
                                      f"then python -m zoo.cards.")


# ---------------------------------------------------------------- the zoo's kernel ops
# On CPU in eager mode the public functions run their reference inline (no op); under a dispatch mode such as
# FlopCounterMode they run as the op, so the op's formula is what gets counted. Each formula is checked against
# the matrix products its reference performs (FlopCounterMode on the reference function itself) plus, where the
# formula counts more than matrix products, those terms by hand.

def _ops(fn, *args, **kwargs) -> dict[str, int]:
    with FlopCounterMode(display=False) as mode:
        fn(*args, **kwargs)
    return {str(op): n for op, n in mode.get_flop_counts().get("Global", {}).items()}


@pytest.mark.parametrize("variant", ["rala", "mala", "inline"])
def test_linear_attention_formula_equals_its_reference(variant):
    from zoo.kernels.linear_attention import linear_attention, linear_attention_reference

    b, h, n, d = 2, 3, 12, 8
    q, k, v = (torch.randn(b, h, n, d) for _ in range(3))
    rope = (3, 4) if variant != "inline" else None
    # kv = K^T V and Q kv: 2 N d^2 each; the normalisers' per-token dot products: 2 N d each (rala: two).
    by_hand = b * h * (4 * n * d * d + (4 if variant == "rala" else 2) * n * d)
    assert _ops(linear_attention, q, k, v, variant=variant, rope_hw=rope) == {"zoo.linear_attention": by_hand}
    assert _count(linear_attention_reference, q, k, v, variant=variant, rope_hw=rope) == by_hand


def test_gaussian_attention_formula_equals_its_reference():
    from zoo.kernels.gaussian_attention import gaussian_attention, gaussian_attention_reference

    b, h, n, m, d, e = 2, 3, 20, 5, 8, 6
    q, landmarks, v = torch.randn(b, h, n, d), torch.randn(b, h, m, d), torch.randn(b, h, n, e)
    mixing = torch.randn(b, h, m, m)
    # distances as the product q l^T (2 N m d), K1^T V and K1 (M S) (2 N m e each), M S (2 m^2 e).
    by_hand = b * h * (2 * n * m * d + 4 * n * m * e + 2 * m * m * e)
    assert _ops(gaussian_attention, q, landmarks, mixing, v) == {"zoo.gaussian_attention": by_hand}
    assert _count(gaussian_attention_reference, q, landmarks, mixing, v) == by_hand


def test_bidirectional_gla_formula_counts_the_linear_time_definition():
    from zoo.kernels.gated_linear_attention import bidirectional_gla

    b, n, h, dk, dv = 2, 10, 3, 4, 6
    q, k, a_f, a_b = (torch.randn(b, n, h, dk) for _ in range(4))
    a_f, a_b = -a_f.abs(), -a_b.abs()
    v = torch.randn(b, n, h, dv)
    # Per direction, token and head: the state update k v^T and the read-out S^T q, dk dv multiply-adds each.
    by_hand = 2 * b * n * h * (2 * dk * dv + 2 * dk * dv)
    assert _ops(bidirectional_gla, q, k, v, a_f, a_b) == {"zoo.bidirectional_gla": by_hand}
    # The token-by-token reference (the definition) does the read-outs as matrix products and the state updates
    # as elementwise outer products, which FlopCounterMode does not count: those are the other half.
    from zoo.kernels.gated_linear_attention import bigla_recurrent

    assert _count(bigla_recurrent, q, k, v, a_f, a_b) == by_hand // 2


def test_multistep_lif_formula_counts_its_elementwise_work():
    from zoo.kernels.lif import multistep_lif, multistep_lif_reference

    x = torch.randn(4, 2, 3, 5)
    # Charge h = v + (x - (v - v_r)) / tau: 4, fire (one comparison): 1, hard reset (one select): 1.
    assert _ops(multistep_lif, x) == {"zoo.multistep_lif": 6 * x.numel()}
    assert _count(multistep_lif_reference, x) == 0  # no matrix product: FlopCounterMode alone would see nothing
