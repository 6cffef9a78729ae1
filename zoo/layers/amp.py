"""Autocast switched off around a computation that must run in its own precision."""
from __future__ import annotations

import contextlib

import torch


def autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    """`torch.autocast(device_type, enabled=False)` where autocast is on; a no-op elsewhere, e.g. on the
    `meta` device, which has no autocast (timm's model tests run forwards there) and where nothing is
    cast anyway."""
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()
