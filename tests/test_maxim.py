"""MAXIM against the official Flax model's golden fixtures, the official checkpoint format, and zoo-restore.

The fixtures (`maxim__tiny_cfg`, `maxim__tiny_cfg_pad_nonsquare`) hold the official
Flax parameter tree of a 3-stage model, NHWC inputs and every stage/scale output of
the unmodified official code. specs/maxim.md §5 lists the numerical traps a port can
fall into; `test_each_trap_moves_the_output` shows each one would fail the fixture.
"""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from golden import GOLDEN_DIR, load_golden
from PIL import Image
from safetensors.torch import load_file

import zoo
import zoo.pretrained
from zoo.cli import restore_image as restore
from zoo.models import maxim
from zoo.models._checkpoint import CheckpointMismatchError
from zoo.models.maxim import MAXIM, checkpoint_filter_fn, pad_input
from zoo.pretrained import load_npz

TINY = "maxim__tiny_cfg"
PAD = "maxim__tiny_cfg_pad_nonsquare"
ZOO_ARGS = ("features", "depth", "num_stages", "num_groups", "num_supervision_scales", "high_res_stages",
            "block_size_hr", "block_size_lr", "grid_size_hr", "grid_size_lr", "num_bottleneck_blocks",
            "block_gmlp_factor", "grid_gmlp_factor", "input_proj_factor", "channels_reduction")


def tiny_kwargs(golden=None) -> dict:
    c = (golden or load_golden(TINY)).constructor
    assert c["num_outputs"] == 3 and c["use_bias"] and c["dropout_rate"] == 0.0 and c["lrelu_slope"] == 0.2
    return {k: c[k] for k in ZOO_ARGS}


def nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def stage_outputs(name: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(GOLDEN_DIR / f"{name}.safetensors").items() if k.startswith("output.s")}


@pytest.fixture(scope="module")
def tiny():
    golden = load_golden(TINY)
    model = MAXIM(**tiny_kwargs(golden)).eval()
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    return model


def assert_all_outputs(golden, outputs_all, expected: dict[str, torch.Tensor]) -> float:
    """Every stage/scale output; the official list per stage runs coarsest first (output.s<s>.scale<i> = [s][2-i])."""
    worst = 0.0
    assert len(outputs_all) == 3 and all(len(o) == 3 for o in outputs_all)
    for key, want in expected.items():
        s, i = int(key.split(".")[1][1:]), int(key.split(".")[2][5:])
        got = nhwc(outputs_all[s][2 - i])
        torch.testing.assert_close(got, want, atol=golden.meta["atol"], rtol=golden.meta["rtol"], msg=key)
        worst = max(worst, (got - want).abs().max().item())
    return worst


# ---------------------------------------------------------------------------- golden fixtures

def test_tiny_cfg_matches_official_every_stage_and_scale(tiny):
    golden = load_golden(TINY)
    assert sum(p.numel() for p in tiny.parameters()) == 269_199
    with torch.no_grad():
        outputs_all = tiny.forward_features(nchw(golden.input))
        final = tiny(nchw(golden.input))
    golden.assert_close(nhwc(final))
    assert_all_outputs(golden, outputs_all, stage_outputs(TINY))
    torch.testing.assert_close(tiny.forward_head(outputs_all), final)


def test_padding_pipeline_matches_run_eval(tiny):
    golden = load_golden(PAD)
    tensors = load_file(GOLDEN_DIR / f"{PAD}.safetensors")
    padded, (top, left) = pad_input(nchw(golden.input))
    assert torch.equal(nhwc(padded), tensors["input_padded"])
    assert (top, left) == (11, 19)
    with torch.no_grad():
        golden.assert_close(nhwc(tiny(nchw(golden.input))))
        outputs_all = tiny.forward_features(padded)
    assert_all_outputs(golden, outputs_all, stage_outputs(PAD))


def test_float64_matches_official_float64_run():
    # The fixture outputs are the official float64 run stored as float32: a float64 port agrees to storage rounding.
    golden = load_golden(TINY)
    model = MAXIM(**tiny_kwargs(golden)).double().eval()
    model.load_state_dict(checkpoint_filter_fn(golden.state_dict, model))
    with torch.no_grad():
        out = nhwc(model(nchw(golden.input).double()))
    assert (out - golden.output.double()).abs().max().item() < 1e-6


def _run_slip(model: MAXIM, golden, monkeypatch, slip: str) -> float:
    sd = checkpoint_filter_fn(golden.state_dict, model)
    if slip == "gelu_erf":
        for m in model.modules():
            if isinstance(m, torch.nn.GELU):
                m.approximate = "none"
    elif slip == "layernorm_eps_1e-5":
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.eps = 1e-5
    elif slip == "conv_transpose_not_flipped":
        sd = {k: v.flip(2, 3) if k.endswith("up.weight") else v for k, v in sd.items()}
    elif slip == "leaky_relu_0.01":
        monkeypatch.setattr(maxim, "LRELU_SLOPE", 0.01)
    elif slip == "legacy_nearest":
        monkeypatch.setattr(maxim, "resize_nearest",
                            lambda x, size: nhwc(F.interpolate(nchw(x), size=size, mode="nearest")))
    elif slip == "bilinear_no_antialias":
        monkeypatch.setattr(maxim, "resize_bilinear", lambda x, size: nhwc(F.interpolate(
            nchw(x), size=size, mode="bilinear", align_corners=False)))
    elif slip == "gate_u_times_v":
        monkeypatch.setattr(maxim.GatingUnit, "forward", lambda self, x: (lambda u, v: u * maxim._mix(
            self.norm(v), self.proj, self.axis, self.size))(*x.chunk(2, dim=-1)))
    model.load_state_dict(sd)
    with torch.no_grad():
        return (nhwc(model(nchw(golden.input))) - golden.output).abs().max().item()


@pytest.mark.parametrize("slip", ["gelu_erf", "layernorm_eps_1e-5", "conv_transpose_not_flipped", "leaky_relu_0.01",
                                  "legacy_nearest", "bilinear_no_antialias", "gate_u_times_v"])
def test_each_trap_moves_the_output(slip, monkeypatch):
    """specs/maxim.md §5: each slip moves the output by >= 30x the fixture tolerance, so the fixture tests catch it."""
    golden = load_golden(TINY)
    model = MAXIM(**tiny_kwargs(golden)).eval()
    assert _run_slip(model, golden, monkeypatch, slip) > 30 * golden.meta["atol"]


def test_grid_size_lr_is_never_read():
    kwargs = tiny_kwargs()
    assert kwargs["grid_size_lr"] != kwargs["block_size_lr"]  # the fixture sets them apart on purpose
    model = MAXIM(**kwargs)
    lr_tokens = kwargs["block_size_lr"][0] * kwargs["block_size_lr"][1]
    # Level 2 (low-res) and the bottleneck mix a block_size_lr grid: 8 x 8 token kernels, not 4 x 4.
    assert model.stages[0].encoders[2].blocks[0].mab.grid_mlp.gate.proj.weight.shape == (lr_tokens, lr_tokens)
    assert model.stages[0].bottleneck[0].blocks[0].mab.grid_mlp.gate.proj.weight.shape == (lr_tokens, lr_tokens)
    other = MAXIM(**{**kwargs, "grid_size_lr": (4, 2)})
    assert {k: v.shape for k, v in other.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_checkpoint_mismatch_lists_keys():
    golden = load_golden(TINY)
    model = MAXIM(**{**tiny_kwargs(golden), "num_supervision_scales": 1})  # NS=1 model, NS=3 weights
    with pytest.raises(CheckpointMismatchError, match="wrong shape"):
        checkpoint_filter_fn(golden.state_dict, model)


# ---------------------------------------------------------------------------- official checkpoint files

def official_npz(tmp_path, golden, name="checkpoint.npz"):
    """What run_eval loads: a numpy .npz of the flax.optim tree, params under opt/target/, plus optimizer moments."""
    arrays = {f"opt/target/{k[len('params/'):]}": v.numpy() for k, v in golden.state_dict.items()}
    first = next(iter(arrays))
    arrays["opt/state/step"] = np.array(1000, dtype=np.int64)
    arrays[f"opt/state/param_states/{first[len('opt/target/'):]}/grad_ema"] = np.zeros_like(arrays[first])
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def test_load_npz_reads_only_parameters(tmp_path):
    golden = load_golden(TINY)
    state = load_npz(official_npz(tmp_path, golden))
    assert len(state) == 2754 and all(k.startswith("opt/target/") for k in state)
    bad = tmp_path / "objects.npz"
    np.savez(bad, **{"opt/target/x": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError):
        load_npz(bad)


@pytest.fixture
def npz_loader(monkeypatch, tmp_path):
    """zoo.pretrained.load_checkpoint with an .npz branch: the shared hook if present, else added here."""
    probe = tmp_path / "probe.npz"
    np.savez(probe, **{"opt/target/a": np.zeros(1, np.float32)})
    original = zoo.pretrained.load_checkpoint
    try:
        hooked = "opt/target/a" in original(probe)
    except Exception:
        hooked = False
    if not hooked:
        monkeypatch.setattr(zoo.pretrained, "load_checkpoint",
                            lambda path: load_npz(path) if str(path).endswith(".npz") else original(path))


def test_create_model_pretrained_from_official_npz(tmp_path, npz_loader):
    golden = load_golden(TINY)
    path = official_npz(tmp_path, golden)
    model = timm.create_model("maxim_3s_denoising_sidd", pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(path)), **tiny_kwargs(golden)).eval()
    with torch.no_grad():
        golden.assert_close(nhwc(model(nchw(golden.input))))
    # The same weights handed over in memory (works without any .npz support in the file loader).
    in_memory = timm.create_model("maxim_3s_denoising_sidd", pretrained=True, **tiny_kwargs(golden),
                                  pretrained_cfg_overlay=dict(state_dict=load_npz(path)))
    assert all(torch.equal(a, b) for a, b in zip(in_memory.state_dict().values(), model.state_dict().values()))


def test_official_file_in_weights_dir_and_instructions_when_missing(tmp_path, monkeypatch, npz_loader):
    golden = load_golden(TINY)
    monkeypatch.setenv(zoo.pretrained.WEIGHTS_DIR_ENV, str(tmp_path))

    def offline(url, hf_hub_id, filename, destination):
        assert url == "https://storage.googleapis.com/gresearch/maxim/ckpt/Deraining/Rain13k/checkpoint.npz"
        assert destination == tmp_path / "maxim_2s_deraining_rain13k.npz"  # not checkpoint.npz: all share that name
        raise ConnectionError("offline")

    monkeypatch.setattr(zoo.pretrained, "_download", offline)
    with pytest.raises(zoo.pretrained.WeightsNotFoundError, match=r"(?s)offline.*maxim_2s_deraining_rain13k\.npz"):
        timm.create_model("maxim_2s_deraining_rain13k", pretrained=True)
    official_npz(tmp_path, golden, "maxim_3s_denoising_sidd.npz")
    model = timm.create_model("maxim_3s_denoising_sidd", pretrained=True, **tiny_kwargs(golden)).eval()
    with torch.no_grad():
        golden.assert_close(nhwc(model(nchw(golden.input))))


def test_zoo_convert_round_trip(tmp_path, npz_loader):
    from zoo.cli.convert import convert
    golden = load_golden(TINY)
    kwargs = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in tiny_kwargs(golden).items()}
    out = tmp_path / "converted"
    assert convert("maxim_3s_denoising_sidd", official_npz(tmp_path, golden), out, kwargs) == 0
    reloaded = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    with torch.no_grad():
        golden.assert_close(nhwc(reloaded(nchw(golden.input))))


# ---------------------------------------------------------------------------- any input size, model API

def run_eval_padding(image: np.ndarray) -> np.ndarray:
    """maxim/run_eval.py make_shape_even + mod_padding_symmetric(64), with numpy (jnp.pad has numpy's semantics)."""
    h, w = image.shape[:2]
    image = np.pad(image, [(0, h % 2), (0, w % 2), (0, 0)], mode="reflect")
    h, w = image.shape[:2]
    padh = ((h + 64) // 64) * 64 - h if h % 64 else 0
    padw = ((w + 64) // 64) * 64 - w if w % 64 else 0
    return np.pad(image, [(padh // 2, padh // 2), (padw // 2, padw // 2), (0, 0)], mode="reflect")


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (7, 130), (20, 5), (41, 90), (64, 64), (65, 128), (129, 64)])
def test_padding_is_numpy_reflect_for_any_size(size):
    image = np.random.default_rng(0).random((*size, 3), dtype=np.float32)
    padded, (top, left) = pad_input(nchw(torch.from_numpy(image)[None]))
    expected = run_eval_padding(image)
    np.testing.assert_array_equal(nhwc(padded)[0].numpy(), expected)
    h_even, w_even = size[0] + size[0] % 2, size[1] + size[1] % 2
    assert (top, left) == (expected.shape[0] // 2 - h_even // 2, expected.shape[1] // 2 - w_even // 2)


def test_any_size_keeps_shape_and_network_sizes_are_checked(tiny):
    x = torch.rand(1, 3, 17, 33)
    with torch.no_grad():
        assert tiny(x).shape == x.shape
    assert tiny.size_multiple == (32, 16)
    with pytest.raises(ValueError, match=r"multiple of 32.*48x48"):
        tiny.forward_features(torch.rand(1, 3, 48, 48))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        tiny(torch.rand(1, 4, 64, 64))
    official = zoo.create_model("maxim_2s_enhancement_lol")
    assert official.size_multiple == (64, 64)
    with pytest.raises(ValueError, match="96x96"):
        official.forward_features(torch.rand(1, 3, 96, 96))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_reduced_precision_runs_on_cpu(tiny, dtype):
    """PyTorch has no CPU float16 / bfloat16 antialiased resize: MAXIM resizes in float32 and rounds
    once, so the resize is exactly the float32 one rounded, and the whole model runs in that dtype."""
    x = torch.rand(2, 3, 64, 32, generator=torch.Generator().manual_seed(5))
    maps = nhwc(x).to(dtype)
    for size in [(32, 16), (16, 8), (128, 64)]:  # antialiased shrinking, and growing
        torch.testing.assert_close(maxim.resize_bilinear(maps, size),
                                   maxim.resize_bilinear(maps.float(), size).to(dtype), atol=0, rtol=0)
    # The whole network in `dtype` (the fixture's random 4-channel config amplifies rounding, see
    # test_grad_checkpointing_and_batch_independence_three_stages, so only the resize is compared).
    model = copy.deepcopy(tiny).to(dtype)
    with torch.no_grad():
        out = model(x.to(dtype))
    assert out.dtype == dtype and out.shape == x.shape and torch.isfinite(out).all()


def test_no_classifier_options_are_refused():
    with pytest.raises(ValueError, match="num_classes"):
        zoo.create_model("maxim_2s_enhancement_lol", num_classes=10)
    with pytest.raises(ValueError, match="drop"):
        zoo.create_model("maxim_2s_enhancement_lol", drop_path_rate=0.1)


def test_forward_backward_reaches_every_parameter(tiny):
    model = MAXIM(**tiny_kwargs()).train()
    model.load_state_dict(tiny.state_dict())
    x = torch.rand(2, 3, 64, 32)
    assert model(x).shape == x.shape
    # Multi-stage, multi-scale supervision (every stage's every scale, as the checkpoints were trained):
    # the coarse output convs of the last stage feed no later output, only their own loss term.
    outputs = [o for stage in model.forward_features(x) for o in stage]
    assert [o.shape[-2:] for o in outputs] == [(16, 8), (32, 16), (64, 32)] * 3
    sum(F.l1_loss(o, F.interpolate(x, size=o.shape[-2:], mode="area")) for o in outputs).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_grad_checkpointing_and_batch_independence_three_stages(tiny):
    x = torch.rand(3, 3, 64, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        # At the fixture tolerance: this random 4-channel config amplifies float32 rounding (GEMM blocking
        # differs with the batch size) to ~1e-4; mixing images across the batch would move it by O(1).
        torch.testing.assert_close(tiny(x[1:2]), tiny(x)[1:2], atol=2e-3, rtol=1e-3)
    results = []
    for enable in (False, True):
        model = MAXIM(**tiny_kwargs()).train()
        model.load_state_dict(tiny.state_dict())
        model.set_grad_checkpointing(enable)
        loss = sum(o.square().mean() for stage in model.forward_features(x[:2]) for o in stage)
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters()}))
    (loss_plain, grads_plain), (loss_ckpt, grads_ckpt) = results
    torch.testing.assert_close(loss_ckpt, loss_plain)
    for name, grad in grads_plain.items():
        torch.testing.assert_close(grads_ckpt[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_features_only_gives_last_stage_encoder_and_bottleneck(tiny):
    backbone = zoo.create_model("maxim_3s_denoising_sidd", features_only=True, **tiny_kwargs()).eval()
    backbone.model.load_state_dict(tiny.state_dict(), strict=False)  # decoder side of the last stage pruned
    assert backbone.feature_info.channels() == [4, 8, 16, 16]
    assert backbone.feature_info.reduction() == [1, 2, 4, 8]
    x = torch.rand(1, 3, 64, 32)
    with torch.no_grad():
        features = backbone(x)
        _, full = tiny.forward_intermediates(x)
    assert [tuple(f.shape) for f in features] == [(1, 4, 64, 32), (1, 8, 32, 16), (1, 16, 16, 8), (1, 16, 8, 4)]
    for a, b in zip(features, full):
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------------------- zoo-restore and evaluation

def sample_image(name: str, size=(96, 128)) -> np.ndarray:
    from sklearn.datasets import load_sample_image
    image = Image.fromarray(load_sample_image(name)).resize(size[::-1], Image.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 255.0


def test_restore_matches_official_pipeline_on_fixture(tiny):
    golden = load_golden(PAD)
    pred = restore.restore_array(tiny, golden.input[0].numpy(), tile=0)
    golden.assert_close(torch.from_numpy(np.stack([pred, restore.restore_array(tiny, golden.input[1].numpy())])))


def test_tiles_cover_and_blend_exactly():
    # A pixelwise model restores the same in tiles as whole: checks tile placement and weight normalisation.
    image = sample_image("flower.jpg", (101, 150))
    pointwise = lambda x: x ** 2 + 0.5 * x
    whole = restore.restore_array(pointwise, image, tile=0)
    tiled = restore.restore_array(pointwise, image, tile=64, overlap=16)
    np.testing.assert_allclose(tiled, image ** 2 + 0.5 * image, atol=1e-6)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)


def test_zoo_restore_cli_end_to_end(tmp_path, tiny, npz_loader):
    golden = load_golden(TINY)
    clean = sample_image("china.jpg", (96, 128))
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape), 0, 1)
    Image.fromarray((noisy * 255).round().astype(np.uint8)).save(tmp_path / "noisy.png")
    ckpt = official_npz(tmp_path, golden)
    args = ["--model", "maxim_3s_denoising_sidd", "--checkpoint", str(ckpt), "--model-args", json.dumps(tiny_kwargs())]
    assert restore.main(args + ["--input", str(tmp_path / "noisy.png"), "--output", str(tmp_path / "out.png"),
                                "--tile", "0"]) == 0
    with Image.open(tmp_path / "out.png") as out_image:
        assert out_image.format == "PNG" and out_image.mode == "RGB" and out_image.size == (128, 96)
        out = np.asarray(out_image)
    x = torch.from_numpy(np.asarray(Image.open(tmp_path / "noisy.png"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        pred = tiny(x)[0].permute(1, 2, 0).numpy()
    expected = np.floor(np.clip(pred, 0, 1) * 255)  # run_eval.save_img truncates
    assert np.abs(out.astype(np.float64) - expected).max() <= 1  # float rounding at integer boundaries
    assert (out.astype(np.float64) != expected).mean() < 1e-3
    # Tiled (64 x 64 tiles over 96 x 128, a deviation from the whole-image protocol): same size.
    assert restore.main(args + ["--input", str(tmp_path / "noisy.png"), "--output", str(tmp_path / "tiled.png"),
                                "--tile", "64", "--overlap", "16"]) == 0
    with Image.open(tmp_path / "tiled.png") as tiled:
        assert tiled.size == (128, 96)


@pytest.fixture
def no_model_work(monkeypatch):
    """Fail the test if zoo-restore builds a model: its argument checks must come first."""
    def forbidden(*args, **kwargs):
        raise AssertionError("zoo-restore built the model before checking its arguments")
    monkeypatch.setattr(restore, "load_model", forbidden)


def run_restore_expecting_usage_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        restore.main(argv)
    assert exit_info.value.code == 2  # argparse's usage error
    return capsys.readouterr().err


@pytest.mark.parametrize("model", ["ravlt_t", "inception_transformer_small", "vit_base_patch16_224_ggem"])
def test_zoo_restore_refuses_a_model_that_is_not_a_restoration_model(model, tmp_path, capsys, no_model_work):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
    err = run_restore_expecting_usage_error(
        ["--model", model, "--no-pretrained", "--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "o.png")],
        capsys)
    assert f"{model} is not an image restoration model" in err
    assert "maxim_3s_denoising_sidd" in err and "maxim_2s_deraining_rain13k" in err  # what to use instead
    assert not (tmp_path / "o.png").exists()


def test_restoration_models_are_exactly_the_maxim_checkpoints():
    assert restore.restoration_models() == sorted(maxim.CHECKPOINTS)


def test_restore_array_refuses_a_model_whose_output_is_not_an_image():
    """A classifier that reaches restore_array (e.g. loaded from a local folder) fails with the reason, not a
    permute error from inside torch."""
    classifier = timm.create_model("ravlt_t", num_classes=10).eval()
    with pytest.raises(restore.NotARestorationModelError, match=r"returned \(1, 10\) for an image batch"):
        restore.restore_array(classifier, np.zeros((32, 32, 3), np.float32))


@pytest.mark.parametrize("option", ["--output", "--save-dir"])
def test_zoo_restore_checks_the_output_folder_before_restoring(option, tmp_path, capsys, no_model_work):
    """Tests run as root, where permissions do not stop a write: the folder lies under a regular file instead."""
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
    blocking = tmp_path / "a_file"
    blocking.write_text("not a folder")
    args = ["--model", "maxim_3s_denoising_sidd", "--no-pretrained"]
    if option == "--output":
        args += ["--input", str(tmp_path / "in.png"), "--output", str(blocking / "out" / "clean.png")]
    else:
        (tmp_path / "pairs" / "input").mkdir(parents=True)
        args += ["--eval", str(tmp_path / "pairs"), "--save-dir", str(blocking / "restored")]
    err = run_restore_expecting_usage_error(args, capsys)
    assert f"{blocking} is a file, not a folder" in err and "cannot write" in err


def test_zoo_restore_output_that_is_a_folder_or_a_missing_input_fails_first(tmp_path, capsys, no_model_work):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
    args = ["--model", "maxim_3s_denoising_sidd", "--no-pretrained"]
    err = run_restore_expecting_usage_error(args + ["--input", str(tmp_path / "in.png"), "--output", str(tmp_path)],
                                            capsys)
    assert f"--output {tmp_path} is a folder" in err and str(tmp_path / "in.png") in err
    err = run_restore_expecting_usage_error(
        args + ["--input", str(tmp_path / "missing.png"), "--output", str(tmp_path / "o.png")], capsys)
    assert f"--input {tmp_path / 'missing.png'}: no such file" in err
    err = run_restore_expecting_usage_error(args + ["--eval", str(tmp_path / "nowhere")], capsys)
    assert "no input/ folder" in err


def test_zoo_restore_creates_a_missing_output_folder(tmp_path, tiny, npz_loader):
    golden = load_golden(TINY)
    Image.fromarray((sample_image("china.jpg", (32, 48)) * 255).astype(np.uint8)).save(tmp_path / "in.png")
    out = tmp_path / "new" / "folder" / "clean.png"
    args = ["--model", "maxim_3s_denoising_sidd", "--checkpoint", str(official_npz(tmp_path, golden)),
            "--model-args", json.dumps(tiny_kwargs()), "--input", str(tmp_path / "in.png"), "--output", str(out)]
    assert restore.main(args) == 0
    with Image.open(out) as image:
        assert image.size == (48, 32)


def naive_ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of one channel in [0, 255], written from the definition with scipy
    (independent of zoo.cli.restore_image)."""
    from scipy.signal import convolve2d
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    win = np.outer(g, g) / np.outer(g, g).sum()
    mu_a, mu_b = convolve2d(a, win, "valid"), convolve2d(b, win, "valid")
    var_a = convolve2d(a * a, win, "valid") - mu_a ** 2
    var_b = convolve2d(b * b, win, "valid") - mu_b ** 2
    cov = convolve2d(a * b, win, "valid") - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float(np.mean((2 * mu_a * mu_b + c1) * (2 * cov + c2)
                         / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))))


def test_metrics_against_definitions():
    clean = sample_image("china.jpg", (64, 80)).astype(np.float64)
    shifted = clean + 5 / 255  # uniform error of 5 grey levels: PSNR = 20 log10(255 / 5)
    assert restore.psnr(clean, shifted) == pytest.approx(20 * math.log10(255 / 5), abs=1e-9)
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 0.05, clean.shape), 0, 1)
    a, b = clean * 255, np.round(noisy * 255)
    assert restore.ssim(clean, noisy) == pytest.approx(
        np.mean([naive_ssim_channel(a[..., c], b[..., c]) for c in range(3)]), abs=1e-9)
    y = lambda img: img @ np.array([65.481, 128.553, 24.966]) + 16.0  # MATLAB rgb2ycbcr, Y in [16, 235]
    mse_y = np.mean((y(clean) - y(noisy)) ** 2)
    assert restore.psnr(clean, noisy, "y") == pytest.approx(10 * math.log10(255 ** 2 / mse_y), abs=1e-3)
    assert restore.ssim(clean, clean) == pytest.approx(1.0, abs=1e-12)


def test_evaluate_folder_of_pairs(tmp_path, capsys):
    for sub in ("input", "target"):
        (tmp_path / sub).mkdir()
    rng = np.random.default_rng(2)
    expected_psnr = []
    for name in ("china.jpg", "flower.jpg"):
        clean = (sample_image(name, (64, 96)) * 255).round().astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).round().astype(np.uint8)
        Image.fromarray(clean).save(tmp_path / "target" / f"{name[:-4]}.png")
        Image.fromarray(noisy).save(tmp_path / "input" / f"{name[:-4]}.png")
        mse = np.mean((clean.astype(np.float64) - noisy.astype(np.float64)) ** 2)
        expected_psnr.append(10 * math.log10(255 ** 2 / mse))
    identity = lambda x: x
    result = restore.evaluate_folder(identity, tmp_path, "rgb", log=None)
    assert result["num_images"] == 2
    assert result["psnr"] == pytest.approx(np.mean(expected_psnr), abs=1e-6)
    assert 0 < result["ssim"] < 1
    assert restore.TASK_METRIC_CHANNEL["deraining"] == "y" and restore.TASK_METRIC_CHANNEL["denoising"] == "rgb"
