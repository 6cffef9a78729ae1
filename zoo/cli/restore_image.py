"""`zoo-restore`: restore images with a zoo restoration model (MAXIM), and score restorations.

    zoo-restore --model maxim_3s_denoising_sidd --input noisy.png --output clean.png
    zoo-restore --model maxim_2s_deraining_rain13k --eval data/Rain13k/test   # input/ + target/ pairs

Restoring follows the official inference (`maxim/run_eval.py`): RGB read as
float32 / 255, the model pads to its multiple and crops back (so the output has
the input's size), the PNG is written as `(clip(pred, 0, 1) * 255).astype(uint8)`
(truncation, as `run_eval.save_img`). Images larger than `--tile` on a side are
restored in overlapping tiles blended with linear ramps, which bounds memory
(the official code runs the whole image at once; MAXIM's grid branch is global,
so tiling changes the result slightly: use `--tile 0` for the official protocol).

Evaluation reads `<dir>/input/*` and `<dir>/target/*` (the official layout, paired
by file name), restores each input whole, and reports PSNR and SSIM on RGB or on
the Y channel (ITU-R BT.601, MATLAB `rgb2ycbcr`) as the task's protocol says
(`TASK_METRIC_CHANNEL`): PSNR as `run_eval.calculate_psnr` (float64, prediction
neither clipped nor rounded), SSIM as BasicSR's `calculate_ssim` (11x11 Gaussian,
sigma 1.5, valid region, averaged over channels; the official repository
computes no SSIM) on the prediction clipped and rounded to 8 bits.

The command line checks what it can before the slow model work: that the model
is a restoration model (its output is an image), that the input exists, and that
the output file or folder can be written.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["restore_array", "read_image", "write_image", "psnr", "ssim", "evaluate_folder", "restoration_models",
           "check_restoration_model", "check_writable_folder", "main"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")

# How each task is scored. run_eval.py computes RGB PSNR for every task; deraining is scored on the
# Y channel, as the deraining benchmarks MAXIM reports (Rain13k test sets, after MPRNet) are.
TASK_METRIC_CHANNEL = {
    "denoising": "rgb", "deblurring": "rgb", "deraining": "y", "dehazing": "rgb", "enhancement": "rgb",
}

# The zoo.models families whose models map an image to the restored image (the others classify).
RESTORATION_FAMILIES = ("maxim",)

Model = Callable[[torch.Tensor], torch.Tensor]


class NotARestorationModelError(ValueError):
    """A model whose output is not an image of its input's size (a classifier, a backbone)."""


# ---------------------------------------------------------------------------- images

def read_image(path: str | Path) -> np.ndarray:
    """An image file as float32 RGB (H, W, 3) in [0, 1], as run_eval reads it."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """run_eval.save_img: clip to [0, 1], scale by 255, truncate."""
    return (np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_image(image: np.ndarray, path: str | Path) -> None:
    """Save a float (H, W, 3) image in [0, 1] as PNG (8 bits, truncated as the official code does)."""
    Image.fromarray(to_uint8(image)).save(path, "PNG")


# ---------------------------------------------------------------------------- restoration

def _ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """Blend weights along one tile side: linear ramps over the overlaps shared with neighbours."""
    w = torch.ones(n, dtype=torch.float64)
    ramp = torch.arange(1, overlap + 1, dtype=torch.float64) / (overlap + 1)
    if overlap and not at_start:
        w[:overlap] = ramp
    if overlap and not at_end:
        w[n - overlap:] = ramp.flip(0)
    return w


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride)) + [size - tile]
    return sorted(set(starts))


def _check_image_out(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise NotARestorationModelError(
            f"the model returned {got} for an image batch of shape {tuple(x.shape)}: a restoration model returns "
            f"the restored images, of the input's shape. Use one of: {', '.join(restoration_models())}")
    return out


@torch.no_grad()
def restore_tensor(model: Model, x: torch.Tensor, tile: int = 0, overlap: int = 64) -> torch.Tensor:
    """Restore an NCHW batch; `tile` > 0 runs overlapping tile x tile windows (blended), 0 the whole image."""
    h, w = x.shape[-2:]
    if tile <= 0 or (h <= tile and w <= tile):
        return _check_image_out(model(x), x).float()
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    th, tw = min(tile, h), min(tile, w)
    out = torch.zeros(x.shape[0], x.shape[1], h, w, dtype=torch.float64)
    weight = torch.zeros(h, w, dtype=torch.float64)
    ys, xs = _starts(h, th, overlap), _starts(w, tw, overlap)
    for i, top in enumerate(ys):
        for j, left in enumerate(xs):
            window = x[..., top:top + th, left:left + tw]
            patch = _check_image_out(model(window), window).double().cpu()
            wy = _ramp(th, overlap if th < h else 0, i == 0, i == len(ys) - 1)
            wx = _ramp(tw, overlap if tw < w else 0, j == 0, j == len(xs) - 1)
            wt = wy[:, None] * wx[None, :]
            out[..., top:top + th, left:left + tw] += patch * wt
            weight[top:top + th, left:left + tw] += wt
    return (out / weight).float()


def restore_array(model: Model, image: np.ndarray, tile: int = 0, overlap: int = 64,
                  device: str | torch.device = "cpu") -> np.ndarray:
    """Restore one float (H, W, C) image in [0, 1]; returns float32 (H, W, C), not clipped."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None].to(device)
    return restore_tensor(model, x, tile, overlap)[0].permute(1, 2, 0).cpu().numpy()


# ---------------------------------------------------------------------------- metrics

def to_y_channel(image_255: np.ndarray) -> np.ndarray:
    """run_eval.to_y_channel: RGB in [0, 255] -> Y (BT.601, MATLAB rgb2ycbcr) in [16, 235], float, not rounded."""
    img = image_255.astype(np.float32) / 255.0
    y = np.dot(img, np.array([65.481, 128.553, 24.966], dtype=np.float32)) + 16.0
    return (y / 255.0).astype(np.float32)[..., None] * 255.0


def psnr(target: np.ndarray, pred: np.ndarray, channel: str = "rgb", crop_border: int = 0) -> float:
    """run_eval.calculate_psnr on images in [0, 1] (scaled to [0, 255]); pred is neither clipped nor rounded."""
    a, b = _prepare(target, pred, channel, crop_border)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(20.0 * np.log10(255.0 / np.sqrt(mse)))


def _prepare(target: np.ndarray, pred: np.ndarray, channel: str, crop_border: int) -> tuple[np.ndarray, np.ndarray]:
    if target.shape != pred.shape:
        raise ValueError(f"image shapes differ: target {target.shape} vs prediction {pred.shape}")
    if channel not in ("rgb", "y"):
        raise ValueError(f"channel must be 'rgb' or 'y', got {channel!r}")
    a, b = target.astype(np.float64) * 255.0, pred.astype(np.float64) * 255.0
    if crop_border:
        a, b = (a[crop_border:-crop_border, crop_border:-crop_border],
                b[crop_border:-crop_border, crop_border:-crop_border])
    if channel == "y":
        a, b = to_y_channel(a).astype(np.float64), to_y_channel(b).astype(np.float64)
    return a, b


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - size // 2) ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(target: np.ndarray, pred: np.ndarray, channel: str = "rgb", crop_border: int = 0) -> float:
    """SSIM (Wang et al. 2004) as BasicSR computes it, on images in [0, 1]: 11x11 Gaussian (sigma 1.5), L = 255,
    valid region, mean over channels. The prediction is clipped and rounded to 8 bits first (a saved image)."""
    pred = np.round(np.clip(pred, 0.0, 1.0) * 255.0) / 255.0
    a, b = _prepare(target, pred, channel, crop_border)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    window = _gaussian_window()[None, None]
    scores = []
    for c in range(a.shape[-1]):
        x = torch.from_numpy(np.ascontiguousarray(a[..., c]))[None, None]
        y = torch.from_numpy(np.ascontiguousarray(b[..., c]))[None, None]
        mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
        sxx = F.conv2d(x * x, window) - mu_x ** 2
        syy = F.conv2d(y * y, window) - mu_y ** 2
        sxy = F.conv2d(x * y, window) - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
        scores.append(ssim_map.mean().item())
    return float(np.mean(scores))


# ---------------------------------------------------------------------------- folders

def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def evaluate_folder(model: Model, folder: str | Path, channel: str = "rgb", tile: int = 0, overlap: int = 64,
                    save_dir: str | Path | None = None, device: str | torch.device = "cpu",
                    log: Callable[[str], Any] | None = print) -> dict[str, Any]:
    """PSNR / SSIM over `<folder>/input/*` vs `<folder>/target/*` (same file names); returns means and per-image."""
    folder = Path(folder)
    inputs = _images(folder / "input")
    if not inputs:
        raise FileNotFoundError(f"no images in {folder / 'input'} (expected {folder}/input/* and {folder}/target/*)")
    missing = [p.name for p in inputs if not (folder / "target" / p.name).is_file()]
    if missing:
        raise FileNotFoundError(f"no target for {', '.join(missing[:5])} in {folder / 'target'}")
    if save_dir is not None:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
    per_image = []
    for path in inputs:
        pred = restore_array(model, read_image(path), tile, overlap, device)
        target = read_image(folder / "target" / path.name)
        row = dict(image=path.name, psnr=psnr(target, pred, channel), ssim=ssim(target, pred, channel))
        per_image.append(row)
        if save_dir is not None:
            write_image(pred, Path(save_dir) / f"{path.stem}.png")
        if log:
            log(f"{path.name}: PSNR {row['psnr']:.4f} dB  SSIM {row['ssim']:.4f}")
    return dict(
        channel=channel, num_images=len(per_image),
        psnr=float(np.mean([r["psnr"] for r in per_image])), ssim=float(np.mean([r["ssim"] for r in per_image])),
        images=per_image)


# ---------------------------------------------------------------------------- command line

def task_of(model: torch.nn.Module) -> str | None:
    """The task of a registered MAXIM checkpoint name (None for other models)."""
    from ..models.maxim import CHECKPOINTS
    name = (getattr(model, "pretrained_cfg", None) or {}).get("architecture", "")
    return CHECKPOINTS[name][2] if name in CHECKPOINTS else None


def restoration_models() -> list[str]:
    """The registered models whose output is the restored image."""
    import timm

    from ..factory import list_models
    return [name for name in list_models()
            if timm.models.model_entrypoint(name).__module__.rsplit(".", 1)[-1] in RESTORATION_FAMILIES]


def check_restoration_model(name: str) -> None:
    """Refuse a registered model that is not a restoration model, by name, before it is built.

    Unknown names are left to `zoo.create_model` (which suggests close ones); a model loaded from a hub or a
    local folder is checked by its output (`restore_tensor`).
    """
    import timm
    architecture = name.split(":")[-1].split(".")[0]
    if ":" in name or not timm.is_model(architecture) or architecture in restoration_models():
        return
    family = timm.models.model_entrypoint(architecture).__module__.rsplit(".", 1)[-1]
    raise NotARestorationModelError(
        f"{name} is not an image restoration model ({family} models output class scores or features, not an "
        f"image). zoo-restore needs one of: {', '.join(restoration_models())}")


def check_writable_folder(folder: str | Path, what: str) -> Path:
    """Create `folder` if needed and check that a file can be written in it: a bad output path fails now,
    not after the slow restoration."""
    folder = Path(folder)
    blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise NotADirectoryError(f"cannot write {what} in {folder}: {blocking} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise type(err)(f"cannot write {what} in {folder}: {err.strerror or err}") from err
    return folder


def _check_paths(args: argparse.Namespace) -> None:
    """Every path check of the command line, before the model is built."""
    if args.input:
        if not Path(args.input).is_file():
            raise FileNotFoundError(f"--input {args.input}: no such file")
        if Path(args.output).is_dir():
            raise IsADirectoryError(f"--output {args.output} is a folder: give the PNG file to write, "
                                    f"e.g. {Path(args.output) / (Path(args.input).stem + '.png')}")
        check_writable_folder(Path(args.output).resolve().parent, "--output")
        return
    if not (Path(args.eval) / "input").is_dir():
        raise FileNotFoundError(f"--eval {args.eval}: no input/ folder (expected {args.eval}/input/* and "
                                f"{args.eval}/target/*)")
    if args.save_dir:
        check_writable_folder(args.save_dir, "--save-dir images")


def load_model(name: str, checkpoint: str | None = None, pretrained: bool = True,
               model_args: dict[str, Any] | None = None, device: str = "cpu") -> torch.nn.Module:
    from ..factory import create_model
    kwargs = dict(model_args or {})
    if checkpoint:
        kwargs["pretrained_cfg_overlay"] = dict(file=str(checkpoint))
    model = create_model(name, pretrained=pretrained or bool(checkpoint), **kwargs)
    return model.eval().to(device)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zoo-restore", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="registered model, e.g. maxim_3s_denoising_sidd")
    parser.add_argument("--checkpoint", help="weights file (official .npz or converted); default: the official file")
    parser.add_argument("--no-pretrained", action="store_true", help="random weights (for testing the pipeline)")
    parser.add_argument("--model-args", default="{}", help="JSON constructor arguments")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--input", help="image to restore")
    mode.add_argument("--eval", metavar="DIR", help="score the pairs DIR/input/* vs DIR/target/*")
    parser.add_argument("--output", help="PNG to write (with --input)")
    parser.add_argument("--save-dir", help="also write the restored images here (with --eval)")
    parser.add_argument("--channel", choices=("rgb", "y"), help="metric channel (default: the task's protocol)")
    parser.add_argument("--tile", type=int, default=None,
                        help="tile side for large images (default 512 with --input, 0 = whole image with --eval)")
    parser.add_argument("--overlap", type=int, default=64, help="tile overlap in pixels")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.input and not args.output:
        parser.error("--input needs --output")
    try:  # what can be checked before the slow model work
        check_restoration_model(args.model)
        _check_paths(args)
    except (NotARestorationModelError, OSError) as err:
        parser.error(str(err))

    model = load_model(args.model, args.checkpoint, not args.no_pretrained, json.loads(args.model_args), args.device)
    if args.input:
        image = read_image(args.input)
        tile = 512 if args.tile is None else args.tile
        pred = restore_array(model, image, tile, args.overlap, args.device)
        write_image(pred, args.output)
        print(f"restored {args.input} ({image.shape[1]}x{image.shape[0]}) -> {args.output}")
        return 0
    channel = args.channel or TASK_METRIC_CHANNEL.get(task_of(model) or "", "rgb")
    result = evaluate_folder(model, args.eval, channel, args.tile or 0, args.overlap, args.save_dir, args.device)
    print(f"{args.model} on {args.eval}: {result['num_images']} images, {channel.upper()} "
          f"PSNR {result['psnr']:.4f} dB, SSIM {result['ssim']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
