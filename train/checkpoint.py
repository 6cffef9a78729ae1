"""Checkpoints that survive being killed at any instant.

A checkpoint is a directory `checkpoints/step-<optimizer steps>/` holding
`model.safetensors`, `ema.safetensors` (if EMA is on) and `state.pt` (the
training state: optimizer, scheduler, scaler, epoch and position in it, RNG
states of every rank, metrics, config). It is written into a temporary
directory and renamed into place, so a directory with a final name is always
complete. Nothing here deletes a checkpoint except the `keep` pruning of old
ones: a step written again sets the existing directory aside
(`step-N.replaced`), and resuming from an older checkpoint sets the newer ones
aside (`step-N.superseded`); names that `list_checkpoints` ignores. The
`.tmp-step-*` directories of killed writes are removed when a run starts.
`resolve_resume` never starts a run over on top of a checkpoint it cannot
resume from: it stops with a `ResumeError` that names the unreadable file and
the ways on. `state.pt` only holds tensors and plain Python values and is
loaded with `torch.load(weights_only=True)`.

`load_weights` loads strictly; with `adapt` (the fine-tunes' `model.init_checkpoint_adapt`) the weights first
pass through the model family's `checkpoint_filter_fn`, which resizes what depends on the resolution.
"""
from __future__ import annotations

import logging
import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, load_model, save_model

# Fitting weights to a model is zoo's (the family filters live there); the names stay importable from here.
from zoo.models import WeightsMismatchError, family_filter  # noqa: F401
from zoo.pretrained import filter_for

MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "state.pt"
_NAME = re.compile(r"^step-(\d+)$")
TMP_PREFIX = ".tmp-step-"

log = logging.getLogger("zoo.train")


class ResumeError(RuntimeError):
    """The `resume` setting cannot be honoured without losing or overwriting a checkpoint."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(
        ckpt_root: Path, step: int, model: torch.nn.Module, ema: torch.nn.Module | None,
        state: dict[str, Any], keep: int = 2) -> Path:
    """Atomically write checkpoint `step` under `ckpt_root`; keep the `keep` newest up to it."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"step-{step:09d}"
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{step:09d}-", dir=ckpt_root))
    try:
        save_model(model, str(tmp / MODEL_FILE))
        if ema is not None:
            save_model(ema, str(tmp / EMA_FILE))
        with open(tmp / STATE_FILE, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if final.exists():  # the same step written again: keep the old one, under a name nothing prunes
            set_aside(final, "replaced", "a new checkpoint of the same step was written")
        os.rename(tmp, final)
        _fsync_dir(ckpt_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # Prune among this checkpoint and older ones only: a newer one (another timeline) is never deleted here.
    older = [p for p in list_checkpoints(ckpt_root) if step_of(p) <= step]
    for old in older[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    """Checkpoint directories, oldest first (temporary ones excluded)."""
    if not ckpt_root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_root.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def step_of(path: Path) -> int:
    match = _NAME.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path} is not a checkpoint directory (expected a name step-<number>)")
    return int(match.group(1))


def set_aside(path: Path, tag: str, why: str) -> Path:
    """Rename checkpoint `path` to `<name>.<tag>` (numbered if taken), which nothing resumes from or prunes."""
    target = path.with_name(f"{path.name}.{tag}")
    n = 1
    while target.exists():
        target, n = path.with_name(f"{path.name}.{tag}-{n}"), n + 1
    os.rename(path, target)
    log.warning("%s: kept %s as %s", why, path, target)
    return target


def set_aside_newer(ckpt_root: Path, resumed: Path) -> list[Path]:
    """Set aside the checkpoints under `ckpt_root` newer than the one a run resumes from.

    They belong to the timeline the run abandons; left in place, `keep` would prune the resumed run's own
    checkpoints before them and a later `resume=auto` would jump back onto the abandoned timeline.
    """
    step = step_of(resumed)
    why = f"resuming from {resumed}, an older checkpoint"
    return [set_aside(p, "superseded", why) for p in list_checkpoints(ckpt_root) if step_of(p) > step]


def remove_unfinished_writes(ckpt_root: Path) -> list[Path]:
    """Delete the temporary directories of checkpoint writes that a kill cut short, and log it."""
    if not ckpt_root.is_dir():
        return []
    leftovers = sorted(p for p in ckpt_root.iterdir() if p.is_dir() and p.name.startswith(TMP_PREFIX))
    for path in leftovers:
        shutil.rmtree(path)
    if leftovers:
        log.info("removed %d unfinished checkpoint write(s) left by a killed run: %s",
                 len(leftovers), ", ".join(str(p) for p in leftovers))
    return leftovers


def load_state(path: Path) -> dict[str, Any]:
    return torch.load(Path(path) / STATE_FILE, map_location="cpu", weights_only=True)


def _read_safetensors(file: Path) -> None:
    with safe_open(str(file), framework="pt") as f:
        f.keys()


def _why_unreadable(read: Callable[[], Any]) -> str | None:
    try:
        read()
        return None
    except Exception as err:  # any failure makes the file unusable; the reason is what the user needs
        return f"{type(err).__name__}: {err}".strip()


def unreadable_files(path: Path) -> dict[Path, str]:
    """The files of checkpoint `path` that are missing or cannot be read, each with the reason."""
    state: dict[str, Any] = {}
    checks: dict[Path, Callable[[], Any]] = {
        path / MODEL_FILE: lambda: _read_safetensors(path / MODEL_FILE),
        path / STATE_FILE: lambda: state.update(load_state(path)),
    }
    problems = {file: why for file, read in checks.items() if (why := _why_unreadable(read)) is not None}
    # The EMA weights: required when the state says so; checked if present when the state is unreadable.
    ema = path / EMA_FILE
    if state.get("has_ema") or (path / STATE_FILE in problems and ema.exists()):
        why = _why_unreadable(lambda: _read_safetensors(ema))
        if why is not None:
            problems[ema] = why
    return problems


def is_valid(path: Path) -> bool:
    """All files present and readable."""
    return not unreadable_files(path)


def find_latest(ckpt_root: Path) -> Path | None:
    """The newest valid checkpoint (older ones when newer are unreadable): for reading weights, not resuming."""
    for path in reversed(list_checkpoints(ckpt_root)):
        if is_valid(path):
            return path
    return None


def resolve_resume(resume: str, ckpt_root: Path) -> Path | None:
    """The checkpoint a run continues from, or None for a new run.

    'auto': the newest checkpoint under ckpt_root (None if there is none); if it cannot be resumed from, a
    ResumeError rather than an older checkpoint or a new start, both of which would later overwrite it.
    'never' (or ''): None; ckpt_root must hold no checkpoint. Else a checkpoint directory, or a run's
    checkpoints/ folder (its newest checkpoint, which must be readable).
    """
    if resume in ("never", ""):
        existing = list_checkpoints(ckpt_root)
        if existing:
            raise ResumeError(
                f"resume=never starts a new run, but {ckpt_root} already holds checkpoints "
                f"({', '.join(p.name for p in existing)}): a new run would write over them. Set output_dir to a "
                "new directory, or resume=auto to continue the run that is there.")
        return None
    if resume == "auto":
        return newest_resumable(ckpt_root)
    path = Path(resume)
    if path.is_dir() and not _NAME.match(path.name) and list_checkpoints(path):  # a run's checkpoints/ folder
        return newest_resumable(path)
    if not path.is_dir():
        raise ResumeError(f"resume={resume}: no such checkpoint directory (expected auto, never, a checkpoint "
                          "directory step-<n> or a run's checkpoints/ folder)")
    problems = unreadable_files(path)
    if problems:
        raise ResumeError(f"resume={resume}: cannot resume from it: {_describe(problems)}")
    return path


def newest_resumable(ckpt_root: Path) -> Path | None:
    """The newest checkpoint under ckpt_root if it can be resumed from, None if there is none, else an error."""
    checkpoints = list_checkpoints(ckpt_root)
    if not checkpoints:
        return None
    newest = checkpoints[-1]
    problems = unreadable_files(newest)
    if not problems:
        return newest
    raise ResumeError(_cannot_resume_message(newest, problems, [p for p in checkpoints[:-1] if is_valid(p)]))


def _describe(problems: dict[Path, str]) -> str:
    return "; ".join(f"{file} is unreadable ({reason})" for file, reason in problems.items())


def _cannot_resume_message(newest: Path, problems: dict[Path, str], readable: list[Path]) -> str:
    weights = newest / MODEL_FILE
    if weights in problems:
        kept = f"Its weights ({weights}) are unreadable too; the checkpoint is left as it is."
    else:
        kept = (f"Its weights ({weights}) are intact, so the run stops here rather than start over and later "
                "overwrite them.")
    if readable:
        other = (f"  resume={readable[-1]}\n      continue from the newest readable checkpoint before it "
                 f"({newest.name} and any newer ones are set aside, not deleted; relaunch with resume=auto after)")
    else:
        other = "  resume=<checkpoint dir>\n      continue from another checkpoint (none other here is readable)"
    weights_only = (f"  model.init_checkpoint={newest} resume=never output_dir=<new dir>\n"
                    "      a new run, in a new directory, that starts from these weights (no optimizer state)\n"
                    if weights not in problems else "")
    return (f"cannot resume from the newest checkpoint {newest}: {_describe(problems)}.\n{kept}\n"
            f"Choose one:\n{other}\n{weights_only}"
            "  resume=never output_dir=<new dir>\n      start over in a new directory")


def load_weights(model: torch.nn.Module, path: Path, ema: bool = False, adapt: bool = False) -> None:
    """Load weights from a checkpoint directory or a .safetensors file.

    Strict and exact by default (resumes, and init checkpoints of the very model being trained). With
    `adapt`, the weights first go through the model family's `checkpoint_filter_fn(state_dict, model)` (see
    `zoo.pretrained.filter_for`), e.g. 224 weights into the 384 model of a fine-tune; the load is still strict.
    """
    path = Path(path)
    file = path if path.is_file() else path / (EMA_FILE if ema else MODEL_FILE)
    if not adapt:
        load_model(model, str(file), strict=True)
        return
    state_dict = filter_for(model)(load_file(str(file)), source=str(file))
    model.load_state_dict(state_dict, strict=True)


def adapt_state_dict(state_dict: dict[str, torch.Tensor], model: torch.nn.Module,
                     source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """`zoo.pretrained.filter_for(model)(state_dict, source)`: kept for callers of the older name."""
    return filter_for(model)(state_dict, source=source)


# RNG states as tensors and plain values (loadable with weights_only=True).
def capture_rng() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
