"""Official weights a user can actually get: one loading path for every family.

`timm.create_model(name, pretrained=True)` for a zoo model goes through
`build_zoo_model`, which finds the official file and hands its weights to
timm's loader (and so to the family's `checkpoint_filter_fn`):

1. a file the caller names (`pretrained_cfg_overlay=dict(file=...)`);
2. the file under its original name in the local weights directory
   (`$ZOO_WEIGHTS_DIR`, default `~/.cache/zoo/weights`);
3. a download, where the official location is one a program can fetch
   (a Hugging Face repo or a direct URL); otherwise, or when the download
   fails, an error saying which file to get from where and where to put it.

Every file is opened as safetensors or with `torch.load(weights_only=True)`
and a minimal allow-list (argparse.Namespace, and yacs' CfgNode read back as
an OrderedDict); a file that pickles anything else is refused, naming the
class, and never loaded unsafely. The weights are taken from the entry the
official evaluation uses (`model`, `state_dict_ema`, ...), not timm's
prefer-the-EMA default.
"""
from __future__ import annotations

import argparse
import collections
import os
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from timm.models import build_model_with_cfg
from timm.models._builder import resolve_pretrained_cfg

WEIGHTS_DIR_ENV = "ZOO_WEIGHTS_DIR"
DEFAULT_WEIGHTS_DIR = Path("~/.cache/zoo/weights")

# What official checkpoints pickle besides tensors (specs: ravlt.md §7, inline.md §7).
SAFE_GLOBALS: list[Any] = [
    argparse.Namespace,
    (collections.OrderedDict, "yacs.config.CfgNode"),  # comes back as a plain OrderedDict; yacs not needed
]

# Entries of training checkpoints that hold weights, most common first.
WEIGHT_ENTRIES = ("model", "state_dict", "model_ema", "state_dict_ema", "module")


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint that pickles a class outside the allow-list."""


class WeightsNotFoundError(FileNotFoundError):
    """Official weights that are neither present locally nor fetchable."""


class NotACheckpointError(ValueError):
    """A file that is a web page (a share site's sign-in, quota or virus-scan page), not weights."""


@dataclass(frozen=True)
class OfficialFile:
    """Where a variant's official checkpoint comes from, beyond what `pretrained_cfg` says.

    filename: the name the file is kept under in the weights directory (its
        original name, unless that is shared by many files, e.g. timm's
        `model.safetensors` or MAXIM's `checkpoint.npz`).
    download: the link a program downloads it from (or, when not
        `fetchable`, the page a person downloads it from).
    fetchable: whether a program can download `download` directly.
    weights_key: the checkpoint entry the official evaluation loads.
    sha256: the file's checksum, where known.
    page: the page a person downloads it from, when that is not `download`
        (e.g. a Google Drive file's view page next to its direct link).
    """
    filename: str
    download: str
    fetchable: bool = True
    weights_key: str = "model"
    sha256: str | None = None
    page: str | None = None


TIMM_HUB_FILENAME = "model.safetensors"


def timm_hub_file(hf_hub_id: str) -> OfficialFile:
    """Weights in a timm-format Hugging Face repo (`<repo>/model.safetensors`), kept locally as
    `<repo name>.safetensors` so that files of different repos do not collide."""
    return OfficialFile(f"{hf_hub_id.split('/')[-1]}.safetensors", f"https://huggingface.co/{hf_hub_id}")


_OFFICIAL_FILES: dict[str, OfficialFile] = {}


def register_official_files(files: Mapping[str, OfficialFile]) -> None:
    """Record official files by `architecture.tag` (or bare architecture)."""
    _OFFICIAL_FILES.update(files)


def official_file(name: str) -> OfficialFile | None:
    """The official file of `architecture[.tag]`, if the family registered one."""
    if name in _OFFICIAL_FILES:
        return _OFFICIAL_FILES[name]
    return _OFFICIAL_FILES.get(name.split(".")[0])


def weights_dir() -> Path:
    return Path(os.environ.get(WEIGHTS_DIR_ENV, DEFAULT_WEIGHTS_DIR)).expanduser()


def check_not_a_web_page(path: Path, source: str | None = None) -> None:
    """Share sites (Google Drive above all) answer a program with an HTML page instead of the file."""
    with open(path, "rb") as f:
        head = f.read(64).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml", b"<!--")):
        where = f" from {source}" if source else ""
        raise NotACheckpointError(
            f"{path} is a web page, not a checkpoint: the site sent a page (sign-in, quota or virus-scan "
            f"warning) instead of the file. Delete it and download the file by hand{where}.")


def load_checkpoint(path: str | os.PathLike) -> Any:
    """Open a checkpoint safely: safetensors, .npz (no pickles), or torch.load(weights_only=True) with the allow-list."""
    path = Path(path)
    check_not_a_web_page(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(path)
    if path.suffix == ".npz":  # Flax checkpoints (MAXIM): numpy, allow_pickle=False
        from .flax_convert import load_npz
        return load_npz(path)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        allowed = {"argparse.Namespace", "yacs.config.CfgNode"}
        refused = [g for g in unsafe if g not in allowed] or ["(see the error below)"]
        raise UnsafeCheckpointError(
            f"refused to load {path}: it pickles {', '.join(refused)}, which is not on the zoo's allow-list "
            f"({', '.join(sorted(allowed))}). The file was not loaded; a checkpoint from a trusted source can be "
            f"converted with torch.load(weights_only=False) in a separate, trusted step.\n{err}") from None


def select_weights(checkpoint: Any, weights_key: str = "model") -> Mapping[str, torch.Tensor]:
    """The weights entry of a training checkpoint: `weights_key` if present, else the first entry found."""
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"expected a checkpoint dict, got {type(checkpoint).__name__}")
    for key in (weights_key, *WEIGHT_ENTRIES):
        if isinstance(checkpoint.get(key), Mapping):
            return checkpoint[key]
    return checkpoint


def default_filename(cfg: Mapping[str, Any]) -> str | None:
    if cfg.get("hf_hub_filename"):
        return cfg["hf_hub_filename"]
    if cfg.get("url"):
        return Path(urlparse(cfg["url"]).path).name or None
    return None


def _download(url: str | None, hf_hub_id: str | None, filename: str, destination: Path) -> Path:
    """Fetch the official file: `filename` of its Hugging Face repo, or a direct link into `destination`.

    Direct links are saved under the file's official name, so share links whose
    path carries no file name (`.../f/<id>/?dl=1`) work, and a second call finds
    the file in the weights directory. A web page served instead of the file is
    deleted, never kept under the file's name.
    """
    if hf_hub_id:
        from huggingface_hub import hf_hub_download
        return Path(hf_hub_download(hf_hub_id, filename))
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    torch.hub.download_url_to_file(url, str(partial), progress=True)
    try:
        check_not_a_web_page(partial)
    except NotACheckpointError:
        partial.unlink()
        raise NotACheckpointError(f"{url} sent a web page instead of the file") from None
    partial.replace(destination)  # atomic: an interrupted download never looks complete
    return destination


def _remote_name(cfg: Mapping[str, Any], url: str | None, filename: str) -> str:
    """The file's name at its source, where it says one (a hub file, a URL ending in a file name)."""
    if cfg.get("hf_hub_id"):
        return cfg.get("hf_hub_filename") or filename
    name = Path(urlparse(url or "").path).name
    return name if "." in name else filename


def locate_official_file(name: str, cfg: Mapping[str, Any]) -> tuple[Path, str]:
    """(path, weights_key) of the official weights for architecture `name`, downloading if allowed."""
    official = official_file(f"{name}.{cfg['tag']}" if cfg.get("tag") else name)
    filename = official.filename if official else default_filename(cfg)
    weights_key = official.weights_key if official else "model"
    if not filename:
        notes = "; ".join(cfg.get("notes") or ()) or "its pretrained_cfg names no source"
        raise WeightsNotFoundError(f"{name} has no official weights: {notes}. Create it with pretrained=False.")
    local = weights_dir() / Path(filename).name  # a hub path such as "iformer/iformer_small.pth" -> its name
    if local.is_file():
        return local, weights_key
    url = official.download if official else cfg.get("url")
    source = (official.page or official.download) if official else (
        f"https://huggingface.co/{cfg['hf_hub_id']}" if cfg.get("hf_hub_id") else cfg.get("url"))
    remote = _remote_name(cfg, url, filename)
    fetchable = (official.fetchable if official else True) and bool(cfg.get("hf_hub_id") or cfg.get("url"))
    reason = "it cannot be downloaded automatically"
    if fetchable:
        try:
            return _download(url, cfg.get("hf_hub_id"), remote, local), weights_key
        except Exception as err:  # network, auth, missing file, a web page: all end in the same instructions
            reason = f"the download failed ({type(err).__name__}: {err})"
    raise WeightsNotFoundError(
        f"official weights for {name} not found: {reason}.\n"
        f"  Download {remote} from {source}\n"
        f"  and put it at {local}\n"
        f"  (or set {WEIGHTS_DIR_ENV} to the folder that holds it, or pass "
        f"pretrained_cfg_overlay=dict(file='/path/to/{filename}')).")


def build_zoo_model(
        model_cls: Callable[..., torch.nn.Module],
        variant: str,
        pretrained: bool = False,
        **kwargs: Any,
) -> torch.nn.Module:
    """timm's `build_model_with_cfg`, with the official weights found and opened as described above.

    Hub-format sources (`hf-hub:` / `local-dir:` model names, converted
    weights) and in-memory state dicts are left to timm.
    """
    if pretrained:
        cfg = resolve_pretrained_cfg(
            variant, pretrained_cfg=kwargs.get("pretrained_cfg"),
            pretrained_cfg_overlay=kwargs.get("pretrained_cfg_overlay")).to_dict()
        if cfg.get("source") not in ("hf-hub", "local-dir") and cfg.get("state_dict") is None:
            if cfg.get("file"):
                official = official_file(f"{variant}.{cfg['tag']}" if cfg.get("tag") else variant)
                path, weights_key = Path(cfg["file"]), official.weights_key if official else "model"
            else:
                path, weights_key = locate_official_file(variant, cfg)
            state_dict = dict(select_weights(load_checkpoint(path), weights_key))
            overlay = dict(kwargs.get("pretrained_cfg_overlay") or {})
            kwargs["pretrained_cfg_overlay"] = {**overlay, "state_dict": state_dict, "file": str(path)}
        model = build_model_with_cfg(model_cls, variant, pretrained, **kwargs)
        # Keep the record of where the weights came from, not a second copy of them.
        model.pretrained_cfg.pop("state_dict", None)
        return model
    return build_model_with_cfg(model_cls, variant, pretrained, **kwargs)
