"""FLOPs of a model's forward pass, counted by PyTorch's `FlopCounterMode`.

    from zoo.flops import count_flops, count_model_flops
    count = count_flops(model, (3, 224, 224))      # FlopCount(flops=..., ...); count.macs, str(count)
    count = count_model_flops("ravlt_t")           # built on the meta device: no weights, no compute

What is counted. `torch.utils.flop_counter.FlopCounterMode` adds up a formula per operator:
matrix products and convolutions at 2 FLOPs per multiply-add (`mm` of (m, k) x (k, n) is
2 m k n), attention (every scaled-dot-product backend) as its two matrix products, and the
zoo's kernel ops (`torch.ops.zoo.*`) by the formulas registered next to them in
`zoo.kernels.<op>`. Elementwise operations, normalisations, softmax and pooling count zero,
except inside the LIF neuron op, whose only work is elementwise (its formula counts it).
`macs` is FLOPs / 2, the unit papers in vision call "FLOPs" (fvcore's and mmcv's counters
count one multiply-add as one); compare a paper's "GFLOPs" with `macs`, not `flops`.

SDPA. torch 2.14 has formulas for the CUDA backends (flash, memory-efficient, cuDNN); the
math backend decomposes into counted matrix products. This module registers the backends
it lacks: the CPU flash kernel `_scaled_dot_product_flash_attention_for_cpu` (what
`F.scaled_dot_product_attention` runs on CPU) and its backward, the
`_scaled_dot_product_fused_attention_overrideable` pair (out-of-tree backends) and the MPS
math kernel, with torch's own attention formula, so every backend gives one count.
Registration happens on import (`import zoo` imports this module), before any
`FlopCounterMode` is built: the mode copies the registry when it is created.

Kernel ops. Under any dispatch mode the zoo kernels run as their op, not as the inline
reference (`zoo.kernels._dispatch.runs_reference_eagerly`), so the count is the op's formula
on every device; `tests/test_flops.py` checks each formula against the reference's own
matrix products.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula

__all__ = ["FlopCount", "count_flops", "count_model_flops", "sdpa_flops", "sdpa_backward_flops"]

aten = torch.ops.aten


def sdpa_flops(query_shape: Sequence[int], key_shape: Sequence[int], value_shape: Sequence[int]) -> int:
    """Forward FLOPs of attention: Q K^T and P V, 2 B H L S (E + Ev) (torch's formula; mask and causality ignored)."""
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def sdpa_backward_flops(grad_out_shape: Sequence[int], query_shape: Sequence[int], key_shape: Sequence[int],
                        value_shape: Sequence[int]) -> int:
    """Backward FLOPs of a fused attention kernel: Q K^T recomputed, then dP, dV, dQ, dK: 2 B H L S (3 E + 2 Ev)."""
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _register(op_name: str, formula) -> None:
    """Register `formula` for aten.<op_name> unless this torch lacks the op or already counts it."""
    op = getattr(aten, op_name, None)
    if op is None or op in flop_counter.flop_registry:
        return
    register_flop_formula(op)(formula)


def _forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flops(query_shape, key_shape, value_shape)


def _backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flops(grad_out_shape, query_shape, key_shape, value_shape)


for _name in ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_fused_attention_overrideable",
              "_scaled_dot_product_attention_math_for_mps"):
    _register(_name, _forward)
for _name in ("_scaled_dot_product_flash_attention_for_cpu_backward",
              "_scaled_dot_product_fused_attention_overrideable_backward"):
    _register(_name, _backward)


@dataclass(frozen=True)
class FlopCount:
    """A forward pass's count: `flops` (2 per multiply-add) and `macs` (= flops / 2, the papers' "FLOPs")."""

    flops: int
    input_size: tuple[int, ...]
    batch_size: int
    by_op: dict[str, int] = field(default_factory=dict, compare=False)       # aten / zoo op -> FLOPs
    by_module: dict[str, int] = field(default_factory=dict, compare=False)   # module path -> FLOPs (nested)

    @property
    def macs(self) -> float:
        return self.flops / 2

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def __str__(self) -> str:
        size = "x".join(map(str, self.input_size))
        return (f"{self.gflops:.3f} GFLOPs = {self.gmacs:.3f} GMACs (multiply-adds) for a batch of "
                f"{self.batch_size} at {size}")


def _input_size(model: torch.nn.Module, input_size: Sequence[int] | None) -> tuple[int, ...]:
    if input_size is None:
        cfg = getattr(model, "pretrained_cfg", None) or {}
        input_size = cfg.get("input_size", (3, 224, 224))
    input_size = tuple(int(s) for s in input_size)
    if len(input_size) != 3 or min(input_size) < 1:
        raise ValueError(f"count_flops: input_size must be (channels, height, width) of positive sizes, "
                         f"got {input_size}")
    return input_size


def _first_tensor(model: torch.nn.Module) -> torch.Tensor | None:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor
    return None


def count_flops(model: torch.nn.Module, input_size: Sequence[int] | None = (3, 224, 224),
                batch_size: int = 1) -> FlopCount:
    """FLOPs of one inference forward (eval mode, no grad) of `model` on a batch of (C, H, W) images.

    `input_size=None` takes the model's `pretrained_cfg["input_size"]`. The input is made on the
    device and in the dtype of the model's parameters, so a model built on the meta device
    (`with torch.device("meta"): ...`) is counted without computing anything. The model's
    train / eval mode is restored afterwards.
    """
    if batch_size < 1:
        raise ValueError(f"count_flops: batch_size must be >= 1, got {batch_size}")
    size = _input_size(model, input_size)
    reference = _first_tensor(model)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None else torch.float32
    generator = None if device.type == "meta" else torch.Generator(device).manual_seed(0)
    image = torch.randn(batch_size, *size, device=device, dtype=dtype, generator=generator)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as mode:
            model(image)
    finally:
        model.train(was_training)
    counts = mode.get_flop_counts()
    by_op = {str(op): n for op, n in counts.get("Global", {}).items()}
    by_module = {name: sum(ops.values()) for name, ops in counts.items() if name != "Global"}
    return FlopCount(mode.get_total_flops(), size, batch_size, by_op, by_module)


def count_model_flops(model_name: str, input_size: Sequence[int] | None = None, batch_size: int = 1,
                      device: Any = "meta", **create_kwargs: Any) -> FlopCount:
    """`count_flops` of a registered model built by name (default: on the meta device, at its cfg's input size).

    The meta device allocates no weights and computes nothing, so even the largest variants count
    in seconds. A forward that needs real values (data-dependent control flow, e.g. SOFT-Norm's
    Newton start, or `torch.autocast`, which has no meta device) fails there: the model is then
    built on the CPU from a fixed seed and counted on a fixed random image, so the count is
    reproducible where it depends on the data.
    """
    import timm

    from . import models as _models  # noqa: F401  (registers the zoo's models)

    device = torch.device(device)
    try:
        with device:
            model = timm.create_model(model_name, **create_kwargs)
        return count_flops(model, input_size, batch_size)
    except (RuntimeError, NotImplementedError, ValueError) as error:
        if device.type != "meta":
            raise
        meta_error = error
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = timm.create_model(model_name, **create_kwargs)
    try:
        return count_flops(model, input_size, batch_size)
    except Exception as error:  # say both reasons
        raise error from meta_error
