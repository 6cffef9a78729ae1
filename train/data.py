"""Datasets and loaders on timm's pipeline, with a sampler that can resume mid-epoch.

Map-style datasets (image folders, tars, HF datasets) get a deterministic
sampler (torch's DistributedSampler, or timm's RepeatAugSampler for repeated
augmentation) wrapped so that an epoch can start at any position, and every
sample's random augmentation is seeded by (seed, epoch, rank, position): a
resumed run sees exactly the images and augmentations the interrupted one
would have seen, whatever the number of loader workers. Streaming datasets
(webdataset, tfds, HF streaming) go through timm's `create_loader`; resuming
inside one of their epochs skips the consumed batches.

Image folders are checked before timm reads them: a missing root is a
`DataLayoutError` naming the path and the layout (timm's reader only asserts),
and so is a root without a validation split, on which timm would validate on
the root itself, the training images (unless `data.allow_val_on_root`).
Evaluation loaders mark an unreadable image as skipped (`SkipUnreadable`)
instead of timm's training behaviour of loading its neighbour in its place.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from timm.data import ImageDataset, Mixup, create_dataset, create_loader, create_transform
from timm.data.dataset_factory import _search_split
from timm.data.distributed_sampler import RepeatAugSampler
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset, Sampler, default_collate

from .compat import patch_timm_posterize
from .digits import digits_root
from .distributed import DistInfo

patch_timm_posterize()  # RandAugment's posterize at magnitude 10 under Pillow >= 13


@contextlib.contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """Seed python, numpy and torch for one sample, then put their previous states back."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class PerSampleSeeded(Dataset):
    """Wraps a map-style dataset whose keys are (index, seed): the transform runs under that seed."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        with isolated_rng(seed):
            return self.dataset[index]


class ResumableSampler(Sampler):
    """One epoch of a deterministic (distributed) sampler, from any position, as (index, seed) keys."""

    def __init__(self, base: Sampler, seed: int, rank: int):
        self.base, self.seed, self.rank = base, seed, rank
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch and skip its first `start` samples (already trained on)."""
        self.epoch, self.start = epoch, start
        self.base.set_epoch(epoch)  # type: ignore[attr-defined]

    def epoch_length(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return max(self.epoch_length() - self.start, 0)

    def sample_seed(self, position: int) -> int:
        entropy = [self.seed, self.epoch, self.rank, position]
        return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for position, index in itertools.islice(enumerate(self.base), self.start, None):
            yield int(index), self.sample_seed(position)


class ShardSampler(Sampler):
    """Every rank-th sample, without the padding of DistributedSampler: exact distributed eval."""

    def __init__(self, length: int, rank: int, world_size: int):
        self.indices = list(range(rank, length, world_size))

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)


@dataclass
class TrainData:
    loader: Any
    sampler: ResumableSampler | None  # None for streaming datasets
    batches_per_epoch: int
    num_classes: int
    mixup: Mixup | None

    def start_epoch(self, epoch: int, skip_batches: int = 0) -> Iterator[Any]:
        """An iterator over the epoch's batches, starting after `skip_batches` of them."""
        if self.sampler is not None:
            self.sampler.set_epoch(epoch, skip_batches * self.loader.batch_size)
            self.loader.generator.manual_seed(epoch)  # worker base seeds: off the global RNG
            return iter(self.loader)
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(epoch)
        return itertools.islice(iter(self.loader), skip_batches, None)


class DataLayoutError(ValueError):
    """A dataset root that is missing, or that lacks a split the run needs."""


# Dataset names read from a local folder (or .tar) whose splits timm finds as sub-folders of the root.
FOLDER_DATASETS = ("", "torch/image_folder", "torch/folder")


def resolve_root(data_cfg: DictConfig) -> str:
    return str(data_cfg.root) if data_cfg.root is not None else str(digits_root())


def split_root(root: str, split: str) -> str:
    """The folder timm reads a split from: root/<split> or a synonym (val, eval, ...), else root itself."""
    return _search_split(root, split) if os.path.isdir(root) else root


def check_root(root: str, option: str, layout: str) -> None:
    """A clear error for a dataset root that does not exist (`option`: how the user set it)."""
    if not os.path.exists(root):
        raise DataLayoutError(f"{option} does not exist: expected {layout}")


def folder_layout(root: str, splits: tuple[str, ...]) -> str:
    folders = " and ".join(f"{os.path.join(root, split)}/<class>/<image>" for split in splits)
    return f"an image folder with one sub-folder per class in each split: {folders}"


def check_val_split(data_cfg: DictConfig) -> None:
    """Validating on the root itself means validating on the training images: an error unless opted in."""
    root = resolve_root(data_cfg)
    if data_cfg.name.lower() not in FOLDER_DATASETS or data_cfg.allow_val_on_root:
        return
    if split_root(root, data_cfg.val_split) != root:
        return
    raise DataLayoutError(
        f"data.root={root} has no {data_cfg.val_split} split (expected "
        f"{os.path.join(root, data_cfg.val_split)}/<class>/<image>, or val/, eval/...): timm would validate on "
        f"{root} itself, the training images. Add the split, set data.val_split to the folder that holds it, "
        "or set data.allow_val_on_root=true to validate on data.root as it is.")


def _dataset(data_cfg: DictConfig, split: str, is_training: bool, batch_size: int, seed: int) -> Dataset:
    root = resolve_root(data_cfg)
    if data_cfg.name.lower() in FOLDER_DATASETS:
        check_root(root, f"data.root={root}", folder_layout(root, (data_cfg.train_split, data_cfg.val_split)) +
                   " (or set data.name for another timm dataset: wds/..., hfds/..., torch/...)")
    return create_dataset(
        data_cfg.name, root=root, split=split, is_training=is_training,
        class_map=data_cfg.class_map or None, download=data_cfg.download, batch_size=batch_size, seed=seed)


@dataclass(frozen=True)
class Unreadable:
    """An evaluation sample whose image could not be read: skipped and counted, not replaced."""
    file: str
    reason: str


class SkipUnreadable(Dataset):
    """An evaluation view of a timm ImageDataset in which an unreadable image is an `Unreadable` marker.

    timm's ImageDataset loads the next image in place of one it cannot read (a training convenience); in an
    evaluation that neighbour would be counted twice, without a word. Same reader, decoding and transforms.
    """

    def __init__(self, dataset: ImageDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        ds = self.dataset
        source, target = ds.reader[index][:2]
        try:
            image = Image.open(source)
            image = image.convert(ds.input_img_mode) if ds.input_img_mode else image  # decodes: catches truncation
        except OSError as err:  # what timm's ImageDataset skips
            return Unreadable(str(ds.filename(index, absolute=True)), str(err))
        if ds.transform is not None:
            image = ds.transform(image)
        if target is None:
            target = -1
        elif ds.target_transform is not None:
            target = ds.target_transform(target)
        return image, target


def collate_readable(items: list[Any]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(images, targets) of the readable samples, and 'file (reason)' for each unreadable one."""
    readable = [item for item in items if not isinstance(item, Unreadable)]
    skipped = [f"{item.file} ({item.reason})" for item in items if isinstance(item, Unreadable)]
    if not readable:
        return torch.empty(0), torch.empty(0, dtype=torch.long), skipped
    images, targets = default_collate(readable)
    return images, targets, skipped


def eval_loader(dataset: Dataset, batch_size: int, workers: int, sampler: Sampler | None = None,
                pin_memory: bool = False) -> DataLoader:
    """An evaluation loader, in order; a timm ImageDataset's unreadable images come out as skipped names."""
    skips = isinstance(dataset, ImageDataset) and not dataset.load_bytes
    return DataLoader(
        SkipUnreadable(dataset) if skips else dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
        num_workers=workers, pin_memory=pin_memory, drop_last=False, generator=torch.Generator().manual_seed(0),
        collate_fn=collate_readable if skips else None)


def count_classes(dataset: Dataset, data_cfg: DictConfig) -> int:
    if data_cfg.num_classes is not None:
        return int(data_cfg.num_classes)
    reader = getattr(dataset, "reader", None)
    class_to_idx = getattr(reader, "class_to_idx", None)
    if class_to_idx:
        return len(class_to_idx)
    raise ValueError("cannot count the classes of this dataset: set data.num_classes")


def train_transform(data_cfg: DictConfig, aug: DictConfig) -> Any:
    return create_transform(
        data_cfg.img_size, is_training=True, scale=tuple(aug.scale), ratio=tuple(aug.ratio),
        hflip=aug.hflip, color_jitter=aug.color_jitter if aug.color_jitter is not None else 0.0,
        auto_augment=aug.auto_augment, interpolation=aug.train_interpolation,
        mean=tuple(data_cfg.mean), std=tuple(data_cfg.std),
        re_prob=aug.reprob, re_mode=aug.remode, re_count=aug.recount)


CROP_MODES = ("center", "squash", "border")


def crop_mode(data_cfg: DictConfig) -> str:
    """data.crop_mode, checked: timm treats any unknown mode as 'center' without a word."""
    mode = data_cfg.get("crop_mode", "center")
    if mode not in CROP_MODES:
        raise ValueError(f"data.crop_mode must be one of {', '.join(CROP_MODES)}, got {mode!r}")
    return mode


def eval_transform(data_cfg: DictConfig) -> Any:
    return create_transform(
        data_cfg.img_size, is_training=False, interpolation=data_cfg.interpolation,
        mean=tuple(data_cfg.mean), std=tuple(data_cfg.std), crop_pct=data_cfg.crop_pct,
        crop_mode=crop_mode(data_cfg))


def build_mixup(aug: DictConfig, num_classes: int) -> Mixup | None:
    if not (aug.mixup > 0 or aug.cutmix > 0 or aug.cutmix_minmax is not None):
        return None
    return Mixup(
        mixup_alpha=aug.mixup, cutmix_alpha=aug.cutmix, cutmix_minmax=aug.cutmix_minmax,
        prob=aug.mixup_prob, switch_prob=aug.mixup_switch_prob, mode=aug.mixup_mode,
        label_smoothing=aug.smoothing, num_classes=num_classes)


def build_train_data(cfg: DictConfig, info: DistInfo) -> TrainData:
    data_cfg, aug = cfg.data, cfg.aug
    dataset = _dataset(data_cfg, data_cfg.train_split, True, data_cfg.batch_size, cfg.seed)
    num_classes = count_classes(dataset, data_cfg)
    mixup = build_mixup(aug, num_classes)
    pin = data_cfg.pin_memory and info.device.type == "cuda"
    if isinstance(dataset, IterableDataset):
        loader = create_loader(
            dataset, input_size=(3, data_cfg.img_size, data_cfg.img_size), batch_size=data_cfg.batch_size,
            is_training=True, use_prefetcher=False, scale=tuple(aug.scale), ratio=tuple(aug.ratio),
            hflip=aug.hflip, color_jitter=aug.color_jitter or 0.0, auto_augment=aug.auto_augment,
            interpolation=aug.train_interpolation, mean=tuple(data_cfg.mean), std=tuple(data_cfg.std),
            re_prob=aug.reprob, re_mode=aug.remode, re_count=aug.recount, num_aug_repeats=aug.repeated_aug,
            num_workers=data_cfg.workers, distributed=info.distributed, pin_memory=pin, device=info.device)
        return TrainData(loader, None, len(loader), num_classes, mixup)

    dataset.transform = train_transform(data_cfg, aug)
    if aug.repeated_aug > 1:
        base: Sampler = RepeatAugSampler(
            dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, num_repeats=aug.repeated_aug)
    else:
        base = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.seed)
    sampler = ResumableSampler(base, cfg.seed, info.rank)
    loader = DataLoader(
        PerSampleSeeded(dataset), batch_size=data_cfg.batch_size, sampler=sampler,
        num_workers=data_cfg.workers, pin_memory=pin, drop_last=True,  # Mixup needs even, equal batches
        generator=torch.Generator(), persistent_workers=False)
    batches = sampler.epoch_length() // data_cfg.batch_size
    if batches == 0:
        raise ValueError(f"the training set yields no full batch of {data_cfg.batch_size} per process")
    return TrainData(loader, sampler, batches, num_classes, mixup)


def build_val_loader(cfg: DictConfig, info: DistInfo) -> Any:
    data_cfg = cfg.data
    check_val_split(data_cfg)
    batch_size = data_cfg.val_batch_size or data_cfg.batch_size
    dataset = _dataset(data_cfg, data_cfg.val_split, False, batch_size, cfg.seed)
    pin = data_cfg.pin_memory and info.device.type == "cuda"
    if isinstance(dataset, IterableDataset):
        return create_loader(
            dataset, input_size=(3, data_cfg.img_size, data_cfg.img_size), batch_size=batch_size,
            is_training=False, use_prefetcher=False, interpolation=data_cfg.interpolation,
            mean=tuple(data_cfg.mean), std=tuple(data_cfg.std), crop_pct=data_cfg.crop_pct,
            crop_mode=crop_mode(data_cfg), num_workers=data_cfg.workers, distributed=info.distributed,
            pin_memory=pin, device=info.device)
    dataset.transform = eval_transform(data_cfg)
    return eval_loader(dataset, batch_size, data_cfg.workers, ShardSampler(len(dataset), info.rank, info.world_size),
                       pin_memory=pin)
