"""Every unreadable checkpoint file gives one clear error: the file, what was expected, what to do (issue 18 §2).

Bad files are written by the tests: a truncated zip `.pth`, a zero-byte file, a
text file and a Git LFS pointer named like weights, a truncated safetensors
file, a truncated `.npz`, a zip whose pickle is corrupt, a legacy (non-zip)
torch pickle that pickles a class off the allow-list, PyTorch's oldest `.tar`
format, a TorchScript archive, and an `.npz` of Python objects. Each is opened through
`zoo.pretrained.load_checkpoint` and through `timm.create_model(name,
pretrained=True)` with the file in `$ZOO_WEIGHTS_DIR` under the official name,
where the message must also say where to download the file again.

A state dict that opens but holds integer tensors where the model has floating
point weights is refused by the dtype check of `check_state_dict`; float16 /
bfloat16 weights are cast as before.
"""
from __future__ import annotations

import argparse
import io
import re
import tarfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from golden import load_golden
from safetensors.torch import save as safetensors_bytes
from test_ravlt import official_training_checkpoint, zoo_kwargs
from test_weights_families import MISSING, official_path
from torch import nn

import zoo  # noqa: F401  (registers the models)
import zoo.pretrained as pretrained
from zoo.models._checkpoint import CheckpointMismatchError, check_state_dict


class NotAllowed:
    """A class a checkpoint could pickle but the allow-list does not name."""


def weights() -> dict[str, torch.Tensor]:
    return {"w": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.zeros(3)}


# --------------------------------------------------------------------------- the bad files


def truncated_zip(path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"model": weights(), "epoch": 3}, buffer)
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) // 2])  # an interrupted download: the zip directory at the end is gone


def zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def text_file(path: Path) -> None:
    path.write_text("these are not the weights you are looking for\n")


def lfs_pointer(path: Path) -> None:
    """What a clone without git-lfs holds in place of a large file."""
    path.write_text("version https://git-lfs.github.com/spec/v1\n"
                    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 102400\n")


def corrupt_pickle(path: Path) -> None:
    """A complete zip whose data.pkl has a byte that is no pickle opcode (a bit flip in transit)."""
    buffer = io.BytesIO()
    torch.save({"model": weights()}, buffer)
    data = bytearray(buffer.getvalue())
    start = data.index(b"\x80\x02}")  # PROTO 2, EMPTY_DICT: the first bytes of data.pkl
    data[start + 2] = 0xF0  # not an opcode
    path.write_bytes(bytes(data))


def legacy_unsafe(path: Path) -> None:
    """The pre-1.6 (non-zip) format, pickling a class off the allow-list."""
    torch.save({"model": weights(), "args": NotAllowed()}, path, _use_new_zipfile_serialization=False)


def legacy_tar(path: Path) -> None:
    """PyTorch's oldest format: a tar archive (torch refuses it under weights_only=True)."""
    with tarfile.open(path, "w") as tar:
        member = tarfile.TarInfo("storages")
        member.size = 4
        tar.addfile(member, io.BytesIO(b"\x80\x02K\x00"))


def torchscript(path: Path) -> None:
    """torch.jit.save's archive: a program, not a checkpoint of weights."""
    with warnings.catch_warnings():  # torch.jit is deprecated, its archives are still around
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(path))


def truncated_safetensors(path: Path) -> None:
    data = safetensors_bytes(weights())
    path.write_bytes(data[:-16])


def truncated_npz(path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **{"opt/target/w": np.ones((64, 64), np.float32)})
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) // 2])


def npz_of_objects(path: Path) -> None:
    with open(path, "wb") as f:
        np.savez(f, **{"opt/target/w": np.array([{"a": 1}], dtype=object)})


@dataclass
class BadFile:
    name: str
    write: Callable[[Path], None]
    formats: tuple[str, ...]  # the suffixes the class is tested under
    error: type[Exception]
    says: str  # a phrase of the message saying what is wrong (regex)


UNREADABLE = pretrained.UnreadableCheckpointError
UNSAFE = pretrained.UnsafeCheckpointError

BAD_FILES = [
    BadFile("truncated_zip", truncated_zip, (".pth",), UNREADABLE, r"truncated or corrupt"),
    BadFile("zero_bytes", zero_bytes, (".pth", ".safetensors", ".npz"), UNREADABLE, r"is empty \(0 bytes\)"),
    BadFile("text", text_file, (".pth", ".safetensors", ".npz"), pretrained.NotACheckpointError,
            r"is a text file, not a checkpoint"),
    BadFile("lfs_pointer", lfs_pointer, (".pth",), pretrained.NotACheckpointError, r"Git LFS pointer.*git lfs pull"),
    BadFile("corrupt_pickle", corrupt_pickle, (".pth",), UNREADABLE, r"truncated or corrupt"),
    BadFile("legacy_unsafe", legacy_unsafe, (".pth",), UNSAFE,
            r"test_checkpoint_files\.NotAllowed.*legacy \(non-zip\) torch\.save format"),
    BadFile("legacy_tar", legacy_tar, (".pth",), UNSAFE, r"legacy \.tar format.*weights_only=True"),
    BadFile("torchscript", torchscript, (".pth",), UNSAFE, r"TorchScript archive.*torch\.jit\.load"),
    BadFile("truncated_safetensors", truncated_safetensors, (".safetensors",), UNREADABLE, r"truncated or corrupt"),
    BadFile("truncated_npz", truncated_npz, (".npz",), UNREADABLE, r"truncated or corrupt"),
    BadFile("npz_objects", npz_of_objects, (".npz",), UNSAFE, r"Python objects"),
]

EXPECTED = {".pth": "torch.save checkpoint", ".safetensors": "safetensors file", ".npz": r"numpy \.npz archive"}

CONVERT = r"re-save.*safetensors"  # how to turn a trusted file into one the zoo opens


def format_of(path: Path) -> str:
    return ".safetensors" if path.suffix == ".safetensors" else ".npz" if path.suffix == ".npz" else ".pth"


@pytest.mark.parametrize("bad, suffix", [pytest.param(b, s, id=f"{b.name}{s}") for b in BAD_FILES for s in b.formats])
def test_load_checkpoint_names_the_file_what_was_expected_and_what_to_do(bad, suffix, tmp_path):
    path = tmp_path / f"weights{suffix}"
    bad.write(path)
    with pytest.raises(bad.error, match=bad.says) as err:
        pretrained.load_checkpoint(path)
    message = str(err.value)
    assert str(path) in message and err.value.path == path
    assert isinstance(err.value, pretrained.CheckpointFileError)
    if bad.error is UNSAFE:
        assert "was not loaded" in message
        assert re.search(CONVERT, message, flags=re.S) or "torch.jit.load" in message, message
    else:
        assert re.search(EXPECTED[suffix], message), message
        assert "download it again" in message or "git lfs pull" in message
    assert "\x1b[" not in message  # no terminal colour codes copied from torch's own message


def test_error_hierarchy_keeps_existing_callers_working():
    """Callers that caught NotACheckpointError (a ValueError) or UnsafeCheckpointError (a RuntimeError) still do."""
    assert issubclass(pretrained.NotACheckpointError, pretrained.UnreadableCheckpointError)
    assert issubclass(pretrained.UnreadableCheckpointError, pretrained.CheckpointFileError)
    assert issubclass(pretrained.UnsafeCheckpointError, pretrained.CheckpointFileError)
    assert issubclass(pretrained.CheckpointFileError, ValueError)
    assert issubclass(pretrained.UnsafeCheckpointError, RuntimeError)


def test_legacy_format_with_allowed_contents_still_loads(tmp_path):
    """torch's weights-only unpickler reads the legacy (non-zip) format: such files are not refused for it."""
    path = tmp_path / "legacy.pth"
    checkpoint = {"model": weights(), "args": argparse.Namespace(lr=0.1), "epoch": 3}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    loaded = pretrained.load_checkpoint(path)
    assert loaded["args"] == checkpoint["args"] and loaded["epoch"] == 3
    assert all(torch.equal(loaded["model"][k], v) for k, v in checkpoint["model"].items())


# --------------------------------------------------------------------------- through pretrained=True


@pytest.fixture
def weights_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "weights"
    directory.mkdir()
    monkeypatch.setenv(pretrained.WEIGHTS_DIR_ENV, str(directory))
    monkeypatch.setenv(pretrained.ALLOW_UNCONFIRMED_ENV, "1")  # MISSING has unconfirmed tags (test_weights_trust.py)

    def offline(url, hf_hub_id, filename, destination):
        raise AssertionError(f"a file in the weights dir must not be downloaded again ({url or hf_hub_id})")

    monkeypatch.setattr(pretrained, "_download", offline)
    return directory


def _pretrained_cases():
    for missing in MISSING:
        suffix = format_of(Path(missing.target))
        for bad in BAD_FILES:
            if suffix in bad.formats:
                yield pytest.param(missing, bad, id=f"{missing.model}-{bad.name}", marks=missing.marks)


@pytest.mark.parametrize("official, bad", list(_pretrained_cases()))
def test_create_model_pretrained_with_a_bad_official_file(official, bad, weights_dir):
    """The bad file lies under the official name: the error names it and where to get the file again."""
    path = official_path(official.model, weights_dir)
    bad.write(path)
    with pytest.raises(bad.error, match=bad.says) as err:
        timm.create_model(official.model, pretrained=True)
    message = str(err.value)
    assert str(path) in message
    assert official.source in message  # the registered source page / URL
    if bad.error is not UNSAFE:
        assert re.search(EXPECTED[format_of(path)], message), message


def test_a_bad_file_named_by_the_caller_also_names_the_official_source(tmp_path):
    path = tmp_path / "mine.pth"
    truncated_zip(path)
    with pytest.raises(UNREADABLE, match=r"(?s)truncated or corrupt.*https://huggingface\.co/aldjalkdf/RAVLT"):
        timm.create_model("ravlt_s", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))


# --------------------------------------------------------------------------- dtypes: integers refused, floats cast


def tiny_ravlt_pretrained(state_dict: dict, weights_dir: Path) -> nn.Module:
    golden = load_golden("ravlt__tiny_cfg")
    torch.save(official_training_checkpoint(state_dict), weights_dir / "RAVLT_T.pth")
    classes = golden.constructor["num_classes"]
    return timm.create_model("ravlt_t", pretrained=True, num_classes=classes,
                             pretrained_cfg_overlay=dict(num_classes=classes), **zoo_kwargs(golden))


@pytest.mark.parametrize("dtype", [torch.int64, torch.int8, torch.uint8, torch.bool], ids=str)
def test_integer_state_dict_is_refused_with_the_keys_named(dtype, weights_dir):
    golden = load_golden("ravlt__tiny_cfg")
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in golden.state_dict.items()}
    with pytest.raises(CheckpointMismatchError, match=r"wrong dtype") as err:
        tiny_ravlt_pretrained(state, weights_dir)
    message = str(err.value)
    assert str(weights_dir / "RAVLT_T.pth") in message
    assert f"checkpoint {dtype} vs model torch.float32" in message


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64], ids=str)
def test_floating_point_state_dict_of_another_precision_is_cast(dtype, weights_dir):
    golden = load_golden("ravlt__tiny_cfg")
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in golden.state_dict.items()}
    model = tiny_ravlt_pretrained(state, weights_dir)
    loaded = model.state_dict()
    reference = timm.create_model("ravlt_t", num_classes=golden.constructor["num_classes"], **zoo_kwargs(golden))
    from zoo.models.ravlt import checkpoint_filter_fn
    expected = checkpoint_filter_fn(state, reference)
    assert all(loaded[k].dtype == torch.float32 and torch.equal(loaded[k], v.float())
               for k, v in expected.items() if v.is_floating_point())


def test_check_state_dict_compares_dtype_kinds():
    model = nn.BatchNorm1d(3)  # float weights and an int64 counter
    good = {k: v.clone() for k, v in model.state_dict().items()}
    assert check_state_dict({**good, "weight": good["weight"].half()}, model)  # float16 -> float32: cast
    assert check_state_dict({**good, "num_batches_tracked": good["num_batches_tracked"].int()}, model)
    with pytest.raises(CheckpointMismatchError, match=r"weight: checkpoint torch.int32 vs model torch.float32"):
        check_state_dict({**good, "weight": good["weight"].int()}, model)
    with pytest.raises(CheckpointMismatchError, match=r"num_batches_tracked: checkpoint torch.float32 vs model"):
        check_state_dict({**good, "num_batches_tracked": good["num_batches_tracked"].float()}, model)
