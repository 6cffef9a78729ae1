"""The resumable sampler, per-sample seeding, the digits folder and atomic checkpoints."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from timm.data.distributed_sampler import RepeatAugSampler
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from zoo.train import checkpoint as ckpt
from zoo.train.data import PerSampleSeeded, ResumableSampler, ShardSampler


class RandomDraws(Dataset):
    """Each item draws from python, numpy and torch RNGs, like an augmentation pipeline does."""

    def __len__(self) -> int:
        return 40

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor([index, random.random(), float(np.random.rand()), torch.rand(()).item()])


def epoch_items(sampler_factory, start: int, workers: int = 0) -> torch.Tensor:
    dataset = RandomDraws()
    sampler = ResumableSampler(sampler_factory(dataset), seed=3, rank=0)
    sampler.set_epoch(2, start=start)
    loader = DataLoader(PerSampleSeeded(dataset), batch_size=4, sampler=sampler, num_workers=workers,
                        generator=torch.Generator())
    return torch.cat(list(loader))


@pytest.mark.parametrize("factory", [
    lambda ds: DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=3),
    lambda ds: RepeatAugSampler(ds, num_replicas=1, rank=0, shuffle=True, num_repeats=3, selected_round=0),
])
def test_resumed_epoch_is_the_tail_of_the_full_epoch(factory) -> None:
    full = epoch_items(factory, start=0)
    tail = epoch_items(factory, start=12)
    assert torch.equal(full[12:], tail)
    assert len(set(full[:, 1].tolist())) == len(full), "every sample (and repeat) gets its own draws"


def test_per_sample_draws_do_not_depend_on_workers_or_disturb_the_main_rng() -> None:
    factory = lambda ds: DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=3)  # noqa: E731
    torch.manual_seed(0)
    before = torch.get_rng_state()
    single = epoch_items(factory, start=0)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(single, epoch_items(factory, start=0, workers=2))


def test_shard_sampler_covers_every_sample_once() -> None:
    shards = [list(ShardSampler(11, rank, 3)) for rank in range(3)]
    assert sorted(sum(shards, [])) == list(range(11))


def test_digits_folder(tmp_path: Path) -> None:
    from zoo.train.digits import digits_root

    root = digits_root(tmp_path / "digits")
    counts = {split: len(list((root / split).glob("*/*.png"))) for split in ("train", "validation")}
    assert counts["train"] + counts["validation"] == 1797  # the scikit-learn digits
    assert sorted(p.name for p in (root / "train").iterdir()) == [str(i) for i in range(10)]
    assert digits_root(tmp_path / "digits") == root  # written once


def small_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))


def test_checkpoint_round_trip_and_newest_valid(tmp_path: Path) -> None:
    model = small_model()
    state = {"epoch": 1, "optimizer": torch.optim.AdamW(model.parameters()).state_dict(),
             "rng": [ckpt.capture_rng()], "has_ema": False}
    first = ckpt.save_checkpoint(tmp_path, 5, model, None, state, keep=5)
    second = ckpt.save_checkpoint(tmp_path, 9, model, None, {**state, "epoch": 2}, keep=5)
    assert ckpt.find_latest(tmp_path) == second
    (second / ckpt.STATE_FILE).write_bytes(b"truncated")  # a torn write
    assert ckpt.find_latest(tmp_path) == first
    assert ckpt.load_state(first)["epoch"] == 1  # weights_only=True load
    (tmp_path / ".tmp-step-000000011-x").mkdir()  # a crash mid-write leaves only a temp dir
    assert ckpt.list_checkpoints(tmp_path) == [first, second]
    other = small_model()
    ckpt.load_weights(other, first)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


def test_keep_prunes_old_checkpoints(tmp_path: Path) -> None:
    model = small_model()
    for step in (1, 2, 3, 4):
        ckpt.save_checkpoint(tmp_path, step, model, None, {"has_ema": False}, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-000000003", "step-000000004"]


def test_rng_capture_restore() -> None:
    state = ckpt.capture_rng()
    expected = (random.random(), float(np.random.rand()), torch.rand(()).item())
    ckpt.restore_rng(state)
    assert (random.random(), float(np.random.rand()), torch.rand(()).item()) == expected


def test_eval_crop_modes() -> None:
    """center: short side to img_size / crop_pct, then a centre crop; squash: the whole image to img_size x
    img_size (the Swin codebase's TEST.CROP False). A white left quarter survives only the squash."""
    from omegaconf import OmegaConf
    from PIL import Image

    from zoo.train.data import eval_transform

    pixels = np.zeros((40, 80, 3), dtype=np.uint8)
    pixels[:, :20] = 255
    image = Image.fromarray(pixels)
    base = dict(img_size=32, crop_pct=1.0, interpolation="nearest", mean=[0.0] * 3, std=[1.0] * 3)
    center = eval_transform(OmegaConf.create({**base, "crop_mode": "center"}))(image)
    squash = eval_transform(OmegaConf.create({**base, "crop_mode": "squash"}))(image)
    assert center.shape == squash.shape == (3, 32, 32)
    assert center.max() == 0  # resized to 32 x 64, the middle 32 columns kept: the white quarter is cut off
    assert squash[:, :, :8].min() == 1 and squash[:, :, 8:].max() == 0  # 20 of 80 columns -> 8 of 32
    with pytest.raises(ValueError, match="data.crop_mode must be one of center, squash, border, got 'squish'"):
        eval_transform(OmegaConf.create({**base, "crop_mode": "squish"}))
