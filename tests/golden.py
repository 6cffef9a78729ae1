"""Golden fixtures: official implementations' state dicts, inputs and outputs.

Copied from ../shared/golden (format in tests/golden/FORMAT.md). `load_golden`
returns the official state dict under its official key names, so a test that
loads it goes through the family's `checkpoint_filter_fn`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

GOLDEN_DIR = Path(__file__).parent / "golden"


@dataclass
class Golden:
    name: str
    meta: dict
    input: torch.Tensor
    output: torch.Tensor
    state_dict: dict[str, torch.Tensor]

    @property
    def constructor(self) -> dict:
        return self.meta["constructor"]

    def assert_close(self, actual: torch.Tensor) -> float:
        """Compare with the fixture's own tolerance; returns the max abs diff."""
        expected = self.output
        actual = actual.detach().float().reshape(expected.shape) if actual.numel() == expected.numel() else actual
        torch.testing.assert_close(actual, expected, atol=self.meta["atol"], rtol=self.meta["rtol"])
        return (actual - expected).abs().max().item()


def load_golden(name: str) -> Golden:
    tensors = load_file(GOLDEN_DIR / f"{name}.safetensors")
    meta = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    state = {k[len("state."):]: v for k, v in tensors.items() if k.startswith("state.")}
    return Golden(name, meta, tensors["input"], tensors["output"], state)
