"""Official weights a user can actually get: one loading path for every family.

`timm.create_model(name, pretrained=True)` for a zoo model goes through
`build_zoo_model`, which finds the official file and hands its weights to
timm's loader (and so to the family's `checkpoint_filter_fn`):

1. a file the caller names (`pretrained_cfg_overlay=dict(file=...)`);
2. the file under its original name in the local weights directory
   (`$ZOO_WEIGHTS_DIR`, default `~/.cache/zoo/weights`);
3. a download, where the official location is one a program can fetch
   (a Hugging Face repo, a direct URL, or Google Drive through gdown);
   otherwise, or when the download fails, an error saying which file to get
   from where and where to put it.

Where the family records the file's SHA-256, 2 and 3 are checked against it
(`ChecksumMismatchError` names both hashes). Tags whose file name or contents
are unconfirmed (a note in pretrained_cfg["notes"]) stay out of
`timm.list_models(pretrained=True)` and load from 2 or 3 only after the user
opts in (`allow_unconfirmed_weights`, `UnconfirmedWeightsError` otherwise).

Every file is opened as safetensors, as numpy `.npz`, or with
`torch.load(weights_only=True)` and a minimal allow-list (argparse.Namespace,
and yacs' CfgNode read back as an OrderedDict). The weights are taken from the
entry the official evaluation uses (`model`, `state_dict_ema`, ...), not
timm's prefer-the-EMA default.

A file that cannot be used raises one of (all `CheckpointFileError`, naming the
file, the format expected and what to do; for an official file, where to
download it again):

    CheckpointFileError (ValueError)
      UnreadableCheckpointError   empty, truncated or corrupt
        NotACheckpointError       a web page, a Git LFS pointer, other text
      UnsafeCheckpointError (also RuntimeError)   would run pickled code: a class
                                  off the allow-list, torch's .tar format, a TorchScript
                                  archive, numpy object arrays
      ChecksumMismatchError       not the SHA-256 the family records for the official file

torch's legacy (pre-1.6, non-zip) format opens like the zip format: torch's
weights-only unpickler reads both, so it is refused only for what it pickles.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import logging
import os
import pickle
import pickletools
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from timm.models import build_model_with_cfg
from timm.models._builder import resolve_pretrained_cfg

_logger = logging.getLogger(__name__)

WEIGHTS_DIR_ENV = "ZOO_WEIGHTS_DIR"
DEFAULT_WEIGHTS_DIR = Path("~/.cache/zoo/weights")

# What official checkpoints pickle besides tensors (docs/weights.md, "What is allow-listed, and why").
SAFE_GLOBALS: list[Any] = [
    argparse.Namespace,
    (collections.OrderedDict, "yacs.config.CfgNode"),  # comes back as a plain OrderedDict; yacs not needed
]

# Entries of training checkpoints that hold weights, most common first.
WEIGHT_ENTRIES = ("model", "state_dict", "model_ema", "state_dict_ema", "module")


class WeightsNotFoundError(FileNotFoundError):
    """Official weights that are neither present locally nor fetchable."""


class CheckpointFileError(ValueError):
    """A weights file that cannot be used. The message names the file, says what was expected and what to do;
    `path` is the file."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(message)
        self.path = path


class UnreadableCheckpointError(CheckpointFileError):
    """A file that is not a complete checkpoint of its format: empty, truncated, corrupt, or another kind of file."""


class NotACheckpointError(UnreadableCheckpointError):
    """A file of another kind under a checkpoint's name: a web page (a share site's sign-in, quota or
    virus-scan page), a Git LFS pointer, a text file."""


class UnsafeCheckpointError(CheckpointFileError, RuntimeError):
    """A checkpoint that cannot be opened without running pickled code: it pickles a class outside the
    allow-list, or is in a format torch opens only with weights_only=False."""


class ChecksumMismatchError(CheckpointFileError):
    """An official file whose SHA-256 is not the one recorded for it: another file under its name, or a
    damaged one. The message names the file and both hashes."""


class UnconfirmedWeightsError(RuntimeError):
    """`pretrained=True` on a tag whose official file name or contents are unconfirmed, without the opt-in
    (`allow_unconfirmed_weights`)."""


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
    sha256: the file's SHA-256 (64 hex digits), recorded once someone has
        downloaded the file from its source; None while unknown. Where it is
        known, every file the zoo loads under this name is checked against it
        (see `verify_sha256`).
    page: the page a person downloads it from, when that is not `download`
        (e.g. a Google Drive file's view page next to its direct link).
    """
    filename: str
    download: str
    fetchable: bool = True
    weights_key: str = "model"
    sha256: str | None = None
    page: str | None = None

    def __post_init__(self) -> None:
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"OfficialFile({self.filename!r}): sha256 must be 64 lowercase hex digits "
                             f"(hashlib.sha256(data).hexdigest()), got {self.sha256!r}")


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


# --------------------------------------------------------------------------- checksums

def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str | None, source: str | None = None, *, downloaded: bool = False) -> None:
    """Check `path` against the recorded SHA-256 (nothing to check when none is recorded).

    The zoo's equivalent of timm's `check_hash` / torch.hub's `hash_prefix`, applied on every route: a
    download (the file is deleted when the zoo itself wrote it into the weights directory), a Hugging Face
    cache file, and a file a person put in the weights directory (left in place: it is theirs).
    """
    if expected is None:
        return
    actual = file_sha256(path)
    if actual == expected:
        return
    where = f" from {source}" if source else ""
    if downloaded:
        action = f"The download was deleted. Try again; if it persists, the file at the source has changed{where}."
    else:
        action = (f"Delete it and download the file again{where}; if the new file also differs, the file at the "
                  "source has changed.")
    raise ChecksumMismatchError(
        f"{path} is not the official file: its SHA-256 is {actual}, the zoo records {expected}. {action}", path)


# --------------------------------------------------------------------------- unconfirmed weights

# A tag whose file name (a guess at what the source holds) or contents (which variant the file fits) are
# unconfirmed says so in its pretrained_cfg["notes"] with a note made by `unconfirmed_weights`. Such tags are
# left out of `timm.list_models(pretrained=True)` and refuse `pretrained=True` unless the user opts in.
UNCONFIRMED_NOTE = "unconfirmed weights: "
ALLOW_UNCONFIRMED_ENV = "ZOO_ALLOW_UNCONFIRMED_WEIGHTS"
_allow_unconfirmed: bool | None = None  # set by allow_unconfirmed_weights(); None: the environment decides


def unconfirmed_weights(reason: str) -> str:
    """The pretrained_cfg note that marks a tag's official weights as unconfirmed, saying why."""
    return UNCONFIRMED_NOTE + reason


def unconfirmed_reason(cfg: Any) -> str | None:
    """Why the weights of a pretrained cfg (a PretrainedCfg or its dict) are unconfirmed; None if they are not."""
    notes = cfg.get("notes") if isinstance(cfg, Mapping) else getattr(cfg, "notes", None)
    for note in notes or ():
        if isinstance(note, str) and note.startswith(UNCONFIRMED_NOTE):
            return note[len(UNCONFIRMED_NOTE):]
    return None


def unconfirmed_weights_allowed() -> bool:
    """Whether the user opted in: `allow_unconfirmed_weights()`, else ZOO_ALLOW_UNCONFIRMED_WEIGHTS=1 (or true, yes)."""
    if _allow_unconfirmed is not None:
        return _allow_unconfirmed
    return os.environ.get(ALLOW_UNCONFIRMED_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def apply_weights_policy() -> None:
    """List the unconfirmed tags in `timm.list_models(pretrained=True)` only when the user opted in.

    timm lists a tag as pretrained when its cfg names a source (`_model_has_pretrained`, filled at
    `@register_model`); the zoo removes or restores its unconfirmed tags there, the tagless default name
    with them. Runs once after the families register (zoo.models) and on each opt-in change.
    """
    from timm.models import _registry  # the set list_models / is_model_pretrained read
    allowed = unconfirmed_weights_allowed()
    for name, cfg in _registry._model_pretrained_cfgs.items():
        if cfg.has_weights and unconfirmed_reason(cfg) is not None:
            if allowed:
                _registry._model_has_pretrained.add(name)
            else:
                _registry._model_has_pretrained.discard(name)


class allow_unconfirmed_weights:
    """Opt in to the official weights whose file name or contents are unconfirmed.

        zoo.allow_unconfirmed_weights()              # from now on
        with zoo.allow_unconfirmed_weights():        # for a block; the previous setting comes back after it
            model = timm.create_model("mavit_t", pretrained=True)

    Such tags then appear in `timm.list_models(pretrained=True)` and load with `pretrained=True`; the file
    is still opened safely and must fit the model exactly. `allow_unconfirmed_weights(False)` opts out again.
    Setting ZOO_ALLOW_UNCONFIRMED_WEIGHTS=1 before `import zoo` does the same for the whole process.
    """

    def __init__(self, allow: bool = True):
        global _allow_unconfirmed
        self._previous = _allow_unconfirmed
        _allow_unconfirmed = bool(allow)
        apply_weights_policy()

    def __enter__(self) -> allow_unconfirmed_weights:
        return self

    def __exit__(self, *exc: object) -> None:
        global _allow_unconfirmed
        _allow_unconfirmed = self._previous
        apply_weights_policy()


# What `weights_status` says, for `python -m zoo` and the docs.
WEIGHTS_STATUSES = {
    "verified": "the source lists the file for this model and its SHA-256 is recorded: every load checks it",
    "listed": "the source lists the file for this model; no SHA-256 recorded yet (none could be downloaded)",
    "unconfirmed": "the file name or contents are unconfirmed: loads only after zoo.allow_unconfirmed_weights()",
    "none": "no official weights were released",
}
# How the file is fetched.
WEIGHTS_ROUTES = {
    "hub": "Hugging Face Hub (huggingface_hub)",
    "url": "a direct link, saved into the weights directory",
    "gdrive": "Google Drive through gdown (pip install 'zoo-backbones[gdown]'), saved into the weights directory",
    "manual": "a person downloads it into the weights directory (no link a program can fetch)",
}


@dataclass(frozen=True)
class WeightsStatus:
    """How far a tag's official weights can be trusted, and how they are fetched.

    status: a key of WEIGHTS_STATUSES. route: a key of WEIGHTS_ROUTES, or '-' (no weights).
    filename: the name the file is kept under in the weights directory.
    """
    status: str
    route: str
    filename: str | None


def weights_status(name: str) -> WeightsStatus:
    """The WeightsStatus of `architecture[.tag]` (the default tag when none is given)."""
    architecture, _, tag = name.partition(".")
    cfg = resolve_pretrained_cfg(architecture, pretrained_cfg=tag or None).to_dict()
    if not any(cfg.get(k) for k in ("hf_hub_id", "url", "file")):
        return WeightsStatus("none", "-", None)
    official = _official_of(architecture, cfg)
    filename = official.filename if official else default_filename(cfg)
    url = official.download if official else cfg.get("url")
    if official and not official.fetchable:
        route = "manual"
    else:
        route = "hub" if cfg.get("hf_hub_id") else "gdrive" if google_drive_id(url) else "url"
    if unconfirmed_reason(cfg) is not None:
        status = "unconfirmed"
    else:
        status = "verified" if official and official.sha256 else "listed"
    return WeightsStatus(status, route, filename)


def _refuse_unconfirmed(name: str, cfg: Mapping[str, Any]) -> None:
    reason = unconfirmed_reason(cfg)
    if reason is None or unconfirmed_weights_allowed():
        return
    official = _official_of(name, cfg)
    filename = official.filename if official else default_filename(cfg)
    tag = f"{name}.{cfg['tag']}" if cfg.get("tag") else name
    raise UnconfirmedWeightsError(
        f"the official weights of {tag} are unconfirmed: {reason}. The zoo would load {filename} from "
        f"{official_source(name, cfg)}, which may not be the file the authors released for this model, so it "
        f"does not load it unless you opt in: call zoo.allow_unconfirmed_weights() (or set "
        f"{ALLOW_UNCONFIRMED_ENV}=1), or name the file yourself: "
        f"pretrained_cfg_overlay=dict(file='/path/to/{Path(filename or 'weights.pth').name}'). "
        f"Either way the file must fit the model exactly.")


# What each format is, for the "expected ..." part of an error.
EXPECTED_FORMAT = {
    "torch": "a torch.save checkpoint (a zip archive, or torch's legacy pickle format)",
    "safetensors": "a safetensors file",
    "npz": "a numpy .npz archive (a Flax checkpoint)",
}

LFS_POINTER = "version https://git-lfs.github.com/spec/"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def file_format(path: Path) -> str:
    """The format a checkpoint is read as, from its name: 'safetensors', 'npz', or 'torch' (.pth, .pth.tar,
    .bin ...)."""
    return {".safetensors": "safetensors", ".npz": "npz"}.get(path.suffix, "torch")


def _get_it_again(source: str | None) -> str:
    where = source or "where it came from"
    return f"Delete it and download it again from {where} (an interrupted download or copy leaves such a file)."


def _as_text(head: bytes) -> str | None:
    """The file's first bytes as text, or None when they are binary (every checkpoint format is)."""
    for cut in range(4):  # the head may end inside a multi-byte character
        try:
            text = head[:len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    else:
        return None
    return text if all(c.isprintable() or c.isspace() for c in text) else None


def check_not_a_web_page(path: Path, source: str | None = None) -> None:
    """Share sites (Google Drive above all) answer a program with an HTML page instead of the file."""
    with open(path, "rb") as f:
        head = f.read(64).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml", b"<!--")):
        where = f" from {source}" if source else ""
        raise NotACheckpointError(
            f"{path} is a web page, not a checkpoint: the site sent a page (sign-in, quota or virus-scan "
            f"warning) instead of the file. Delete it and download the file by hand{where}.", path)


def check_file_contents(path: Path, source: str | None = None) -> None:
    """Refuse what is no checkpoint in any format (an empty file, a web page, a Git LFS pointer, other text)
    before a reader fails on it with an error that does not say so."""
    with open(path, "rb") as f:
        head = f.read(512)
    expected = EXPECTED_FORMAT[file_format(path)]
    if not head:
        raise UnreadableCheckpointError(
            f"cannot read {path}: it is empty (0 bytes). Expected {expected}. {_get_it_again(source)}", path)
    check_not_a_web_page(path, source)
    text = _as_text(head)
    if text is None:
        return
    if text.startswith(LFS_POINTER):
        also = f", or download the file from {source}" if source else ""
        raise NotACheckpointError(
            f"cannot read {path}: it is a Git LFS pointer (a small text file that stands for the real one), "
            f"not the weights. Expected {expected}. Run `git lfs pull` in the repository it came from{also}.", path)
    first_line = text.strip().splitlines()[0][:60] if text.strip() else ""
    raise NotACheckpointError(
        f"cannot read {path}: it is a text file, not a checkpoint (it begins {first_line!r}). "
        f"Expected {expected}. {_get_it_again(source)}", path)


def _detail(err: BaseException, path: Path) -> str:
    """A reader's error in one short line: its first sentence, without the path (the message names it)."""
    text = ANSI_ESCAPE.sub("", str(err)).strip()
    unpickler = re.search(r"WeightsUnpickler error:\s*(.*)", text)  # torch wraps it in a page about weights_only
    text = unpickler.group(1) if unpickler else (text.splitlines()[0] if text else "")
    text = text.replace(str(path), "the file")
    if len(text) > 120 and ". " in text:
        text = text[:text.index(". ")]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _allowed_names() -> list[str]:
    return sorted(g[1] if isinstance(g, tuple) else f"{g.__module__}.{g.__qualname__}" for g in SAFE_GLOBALS)


def _torch_layout(path: Path) -> str:
    """'zip', 'torchscript', 'tar' (torch's oldest format) or 'legacy' (the pre-1.6 pickle format)."""
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04"):
        return "torchscript" if _is_torchscript(path) else "zip"
    return "tar" if head[257:262] == b"ustar" else "legacy"


def _is_torchscript(path: Path) -> bool:
    """A torch.jit.save archive: a zip like torch.save's, with the model's code and constants beside the data."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except Exception:  # a damaged zip (bad directory, undecodable names): torch.load's error will say
        return False


def _legacy_pickles_complete(path: Path) -> bool:
    """Whether the pickles a legacy-format file starts with (magic number, protocol, system info, the object,
    its storage keys) are whole: read opcode by opcode, nothing is run. A file cut inside a class name would
    otherwise look like one pickling a class with a strange name."""
    with open(path, "rb") as f:
        try:
            for _ in range(5):
                for _ in pickletools.genops(f):
                    pass
        except Exception:  # exhausted before STOP, or a byte that is no opcode
            return False
    return True


def _refused_classes(path: Path, err: pickle.UnpicklingError, layout: str) -> list[str]:
    """The pickled classes outside the allow-list; none when the unpickling failed for another reason (corruption).

    torch's error names the first class it refused; for a zip file torch can also list every one of them.
    """
    if layout == "legacy" and not _legacy_pickles_complete(path):
        return []
    found = re.findall(r"GLOBAL (\S+) was not an allowed global", ANSI_ESCAPE.sub("", str(err)))
    if layout == "zip":
        try:
            with torch.serialization.safe_globals(SAFE_GLOBALS):
                found += torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception:  # a corrupt archive: nothing to list
            pass
    allowed = _allowed_names()
    return [name for name in dict.fromkeys(found) if name not in allowed]


CONVERT_TORCH = ("If it comes from a source you trust, convert it in a separate, trusted step: open it with "
                 "torch.load(path, weights_only=False) and re-save the weights alone, e.g. with "
                 "safetensors.torch.save_file(state_dict, 'weights.safetensors') or "
                 "torch.save(state_dict, 'weights.pth').")
CONVERT_NPZ = ("If it comes from a source you trust, convert it in a separate, trusted step: open it with "
               "numpy.load(path, allow_pickle=True) and re-save the numeric arrays alone (numpy.savez, or as "
               "safetensors).")


def _official_opens(source: str | None) -> str:
    """For an official file: the zoo opens the one its source serves, so a refused file is another one."""
    return f" The official file, from {source}, opens safely: download it again from there." if source else ""


def _explain(path: Path, err: Exception | None, source: str | None) -> CheckpointFileError:
    """The zoo's error for a file a reader failed on: refused (it would run pickled code) or unreadable."""
    fmt = file_format(path)
    layout = _torch_layout(path) if fmt == "torch" else fmt
    if layout == "tar":
        return UnsafeCheckpointError(
            f"refused to load {path}: it is in torch's legacy .tar format, which torch.load cannot open with "
            f"weights_only=True (only by running the pickles it holds). The file was not loaded."
            f"{_official_opens(source)} {CONVERT_TORCH}", path)
    if layout == "torchscript":
        return UnsafeCheckpointError(
            f"refused to load {path}: it is a TorchScript archive (torch.jit.save), a program rather than a "
            f"checkpoint of weights, which torch.load cannot open with weights_only=True. The file was not loaded."
            f"{_official_opens(source)} If it comes from a source you trust, open it with torch.jit.load(path) in "
            f"a separate, trusted step and save its weights: torch.save(model.state_dict(), 'weights.pth').", path)
    if isinstance(err, pickle.UnpicklingError) and fmt == "torch":
        refused = _refused_classes(path, err, layout)
        if refused:
            legacy = (" (the file is in torch's legacy (non-zip) torch.save format, for which torch names only "
                      "the first class it refuses)") if layout == "legacy" else ""
            return UnsafeCheckpointError(
                f"refused to load {path}: it pickles {', '.join(refused)}, which the zoo's allow-list "
                f"({', '.join(_allowed_names())}) does not name{legacy}. The file was not loaded."
                f"{_official_opens(source)} {CONVERT_TORCH}", path)
    if fmt == "npz" and isinstance(err, ValueError) and "allow_pickle" in str(err):
        return UnsafeCheckpointError(
            f"refused to load {path}: it holds Python objects (arrays of dtype object, which numpy stores as "
            f"pickles), not numeric arrays. The file was not loaded.{_official_opens(source)} {CONVERT_NPZ}", path)
    return UnreadableCheckpointError(
        f"cannot read {path}: it is truncated or corrupt ({_detail(err, path)}). "
        f"Expected {EXPECTED_FORMAT[fmt]}. {_get_it_again(source)}", path)


def _read(path: Path) -> Any:
    fmt = file_format(path)
    if fmt == "safetensors":
        from safetensors.torch import load_file
        return load_file(path)
    if fmt == "npz":  # Flax checkpoints (MAXIM): numpy, allow_pickle=False
        return load_npz(path)
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        return torch.load(path, map_location="cpu", weights_only=True)


# Where legacy flax.optim checkpoints keep the parameters (MAXIM's run_eval.get_params: tree['opt']['target']).
OPTIMIZER_TARGET = "opt/target/"


def load_npz(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The numeric arrays of an `.npz` archive (a Flax / JAX checkpoint, read without JAX) as tensors, keys
    unchanged (the flattened parameter tree, joined by `/`).

    Opened with `allow_pickle=False` (an archive that pickles objects is refused
    by numpy, nothing is unpickled). When the archive holds a flax.optim
    optimizer (`opt/target/...` next to `opt/state/...`), only the parameters
    under `opt/target/` are read; the optimizer moments are left on disk.
    """
    import numpy as np

    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an .npz archive (not a zip file)")
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.files)
        if any(k.startswith(OPTIMIZER_TARGET) for k in keys):
            keys = [k for k in keys if k.startswith(OPTIMIZER_TARGET)]
        out = {}
        for key in keys:
            array = archive[key]
            if array.dtype.kind not in "fiub":
                raise ValueError(f"{path}: entry {key!r} has dtype {array.dtype}, not a numeric array")
            out[key] = torch.from_numpy(np.ascontiguousarray(array))
    return out


def load_checkpoint(path: str | os.PathLike, source: str | None = None) -> Any:
    """Open a checkpoint safely: safetensors, .npz (no pickles), or torch.load(weights_only=True) with the allow-list.

    A file that cannot be read raises UnreadableCheckpointError (NotACheckpointError for a web page, a Git
    LFS pointer or other text), one that would need pickled code to run UnsafeCheckpointError; both name the
    file, the format expected, and what to do: `source`, where given, is where to download the file again.
    """
    path = Path(path)
    check_file_contents(path, source)
    if file_format(path) == "torch" and _torch_layout(path) in ("tar", "torchscript"):
        raise _explain(path, None, source)  # torch.load refuses them too, after a warning or a tar extraction
    try:
        return _read(path)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise  # these name the file and say what is wrong already
    except Exception as err:  # every reader's own way of failing on a bad file
        raise _explain(path, err, source) from err


def select_weights(checkpoint: Any, weights_key: str | None = None) -> Mapping[str, Any]:
    """The weights inside a training checkpoint, unwrapped level by level (`{'state_dict': {'model': ...}}`):
    entry `weights_key` first (the one the official evaluation loads), else the first of `WEIGHT_ENTRIES`
    found. A bare state dict comes back as it is. The one owner of this rule: the family filters reach it
    through `zoo.models._checkpoint.unwrap_state_dict`."""
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"expected a checkpoint dict, got {type(checkpoint).__name__}")
    entries = (weights_key, *WEIGHT_ENTRIES) if weights_key else WEIGHT_ENTRIES
    while True:
        inner = next((checkpoint[k] for k in entries if isinstance(checkpoint.get(k), Mapping)), None)
        if inner is None:
            return checkpoint
        checkpoint = inner


def official_weights_key(model: torch.nn.Module) -> str | None:
    """The checkpoint entry the official evaluation loads for `model`: the `weights_key` of the official file
    registered for its architecture and tag (e.g. ViG's `model_ema`, SOFT's `state_dict_ema`); None when no
    file is registered for it."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    official = _official_of(cfg["architecture"], cfg) if cfg.get("architecture") else None
    return official.weights_key if official else None


def default_filename(cfg: Mapping[str, Any]) -> str | None:
    if cfg.get("hf_hub_filename"):
        return cfg["hf_hub_filename"]
    if cfg.get("url"):
        return Path(urlparse(cfg["url"]).path).name or None
    return None


GOOGLE_DRIVE_HOSTS = ("drive.google.com", "drive.usercontent.google.com", "docs.google.com")
GDOWN_MISSING = ("Google Drive files download through gdown, which is not installed: "
                 "pip install gdown (or the zoo's extra: pip install 'zoo-backbones[gdown]')")


def google_drive_id(url: str | None) -> str | None:
    """The file id of a Google Drive link (`.../file/d/<id>/view`, `...?id=<id>`); None for other links."""
    parsed = urlparse(url or "")
    if parsed.hostname not in GOOGLE_DRIVE_HOSTS:
        return None
    found = re.search(r"/d/([\w-]+)", parsed.path) or re.search(r"(?:^|&)id=([\w-]+)", parsed.query)
    return found.group(1) if found else None


def _download(url: str | None, hf_hub_id: str | None, filename: str, destination: Path) -> Path:
    """Fetch the official file: `filename` of its Hugging Face repo, a Google Drive file through gdown, or a
    direct link, the last two into `destination`.

    Direct links are saved under the file's official name, so share links whose
    path carries no file name (`.../f/<id>/?dl=1`) work, and a second call finds
    the file in the weights directory. A web page served instead of the file is
    deleted, never kept under the file's name.
    """
    if hf_hub_id:
        from huggingface_hub import hf_hub_download
        return Path(hf_hub_download(hf_hub_id, filename))
    destination.parent.mkdir(parents=True, exist_ok=True)
    drive_id = google_drive_id(url)
    if drive_id:
        return _download_from_google_drive(drive_id, destination)
    partial = destination.with_name(destination.name + ".part")
    torch.hub.download_url_to_file(url, str(partial), progress=True)
    try:
        check_not_a_web_page(partial)
    except NotACheckpointError:
        partial.unlink()
        raise NotACheckpointError(f"{url} sent a web page instead of the file") from None
    partial.replace(destination)  # atomic: an interrupted download never looks complete
    return destination


def _download_from_google_drive(drive_id: str, destination: Path) -> Path:
    """A Google Drive file through gdown, which answers Drive's confirmation page (large files: "can't scan
    this file for viruses") and reports quota and permission pages as errors. Written into a temporary
    folder beside `destination`, then moved: nothing half-written stays in the weights directory."""
    try:
        import gdown
    except ImportError:
        raise ImportError(GDOWN_MISSING) from None
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".gdown-") as folder:
        partial = Path(folder) / destination.name
        # use_cookies=False: nothing read from or written to ~/.cache/gdown
        gdown.download(id=drive_id, output=str(partial), quiet=False, use_cookies=False)
        try:
            check_not_a_web_page(partial)
        except NotACheckpointError:
            raise NotACheckpointError(f"Google Drive sent a web page instead of file {drive_id}") from None
        partial.replace(destination)
    return destination


def _remote_name(cfg: Mapping[str, Any], url: str | None, filename: str) -> str:
    """The file's name at its source, where it says one (a hub file, a URL ending in a file name)."""
    if cfg.get("hf_hub_id"):
        return cfg.get("hf_hub_filename") or filename
    name = Path(urlparse(url or "").path).name
    return name if "." in name else filename


def _official_of(name: str, cfg: Mapping[str, Any]) -> OfficialFile | None:
    return official_file(f"{name}.{cfg['tag']}" if cfg.get("tag") else name)


def official_source(name: str, cfg: Mapping[str, Any]) -> str | None:
    """Where a person gets the official file of architecture `name`: its page, else its download link."""
    official = _official_of(name, cfg)
    if official:
        return official.page or official.download
    return f"https://huggingface.co/{cfg['hf_hub_id']}" if cfg.get("hf_hub_id") else cfg.get("url")


def _check_download(path: Path, sha256: str | None, source: str | None, ours: bool) -> None:
    """A fresh download against the recorded SHA-256: deleted on a mismatch when the zoo wrote it into the
    weights directory (a Hugging Face cache file is huggingface_hub's to manage). Where no SHA-256 is
    recorded yet, the file's is logged, for whoever records it."""
    if sha256 is None:
        if _logger.isEnabledFor(logging.INFO):
            _logger.info("%s: SHA-256 %s (none recorded in the zoo to check it against)", path, file_sha256(path))
        return
    try:
        verify_sha256(path, sha256, source, downloaded=ours)
    except ChecksumMismatchError:
        if ours:
            path.unlink()
        raise


def locate_official_file(name: str, cfg: Mapping[str, Any]) -> tuple[Path, str]:
    """(path, weights_key) of the official weights for architecture `name`, downloading if allowed."""
    official = _official_of(name, cfg)
    filename = official.filename if official else default_filename(cfg)
    weights_key = official.weights_key if official else "model"
    if not filename:
        notes = "; ".join(cfg.get("notes") or ()) or "its pretrained_cfg names no source"
        raise WeightsNotFoundError(f"{name} has no official weights: {notes}. Create it with pretrained=False.")
    local = weights_dir() / Path(filename).name  # a hub path such as "iformer/iformer_small.pth" -> its name
    sha256 = official.sha256 if official else None
    source = official_source(name, cfg)
    if local.is_file():
        verify_sha256(local, sha256, source)
        return local, weights_key
    url = official.download if official else cfg.get("url")
    remote = _remote_name(cfg, url, filename)
    fetchable = (official.fetchable if official else True) and bool(cfg.get("hf_hub_id") or cfg.get("url"))
    reason = "it cannot be downloaded automatically"
    if fetchable:
        try:
            path = _download(url, cfg.get("hf_hub_id"), remote, local)
        except Exception as err:  # network, auth, missing file, a web page: all end in the same instructions
            reason = f"the download failed ({type(err).__name__}: {err})"
        else:
            _check_download(path, sha256, source, ours=path == local)
            return path, weights_key
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
    weights) and in-memory state dicts are left to timm. `device=` / `dtype=`
    (which timm's `create_model` passes to every model) place the model's
    tensors as timm's own models do.
    """
    from .models import placed  # zoo.models imports this module
    model_cls = placed(model_cls, kwargs.pop("device", None), kwargs.pop("dtype", None))
    if pretrained:
        cfg = resolve_pretrained_cfg(
            variant, pretrained_cfg=kwargs.get("pretrained_cfg"),
            pretrained_cfg_overlay=kwargs.get("pretrained_cfg_overlay")).to_dict()
        if cfg.get("source") not in ("hf-hub", "local-dir") and cfg.get("state_dict") is None:
            if cfg.get("file"):
                official = _official_of(variant, cfg)
                path, weights_key = Path(cfg["file"]), official.weights_key if official else "model"
            else:  # the zoo chooses the file: an unconfirmed one only with the user's opt-in
                _refuse_unconfirmed(variant, cfg)
                path, weights_key = locate_official_file(variant, cfg)
            checkpoint = load_checkpoint(path, source=official_source(variant, cfg))
            state_dict = dict(select_weights(checkpoint, weights_key))
            overlay = dict(kwargs.get("pretrained_cfg_overlay") or {})
            kwargs["pretrained_cfg_overlay"] = {**overlay, "state_dict": state_dict, "file": str(path)}
            model = _build_naming_the_file(model_cls, variant, path, **kwargs)
        else:
            model = build_model_with_cfg(model_cls, variant, pretrained, **kwargs)
        # Keep the record of where the weights came from, not a second copy of them.
        model.pretrained_cfg.pop("state_dict", None)
        return model
    return build_model_with_cfg(model_cls, variant, pretrained, **kwargs)


def _build_naming_the_file(model_cls: Callable[..., torch.nn.Module], variant: str, path: Path,
                           **kwargs: Any) -> torch.nn.Module:
    """build_model_with_cfg from the opened weights; a family filter's key / shape / dtype report names the file."""
    from .models import CheckpointMismatchError  # zoo.models imports this module
    try:
        return build_model_with_cfg(model_cls, variant, True, **kwargs)
    except CheckpointMismatchError as err:
        raise CheckpointMismatchError(f"{path}: {err}") from err


# ---------------------------------------------------------------------------- a state dict fitted to a built model
# (key remapping by the family's checkpoint_filter_fn; apart from the finding / opening of files above)

def filter_for(model: torch.nn.Module, exact: bool = True) -> Callable[..., dict[str, torch.Tensor]]:
    """`fit(state_dict, source="checkpoint")`: weights (official or trained) made to fit `model` by the
    `checkpoint_filter_fn` of the family that registered it; a mismatch raises `WeightsMismatchError` naming
    `source`, the filter and the keys. `exact`: also fail when the classifier differs (see
    `zoo.models.adapt_state_dict`)."""
    from .models import adapt_state_dict  # zoo.models imports this module

    def fit(state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> dict[str, torch.Tensor]:
        return adapt_state_dict(state_dict, model, source=source, exact=exact)

    return fit
