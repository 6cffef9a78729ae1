"""The Hydra configs: paper recipes against the specs, typo errors, CLI behaviour."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from train_helpers import subprocess_env

from zoo.train.distributed import DistInfo
from zoo.train.engine import ema_decay, scaled_lr
from zoo.train.overrides import UnknownKeyError, check_overrides
from zoo.train.schema import register_configs

# Written by hand from ravlt.md §3-4 and mala.md §3-4 (not from the configs).
SPEC_RECIPE = {
    "sched.epochs": 300, "data.batch_size": 128, "sched.warmup_epochs": 5,
    "optim.opt": "adamw", "optim.eps": 1e-8, "optim.betas": [0.9, 0.999], "optim.weight_decay": 0.05,
    "optim.base_lr": 5e-4, "optim.lr_base_size": 512, "optim.lr": None,
    "optim.filter_bias_and_bn": True, "optim.clip_grad": None,
    "sched.sched": "cosine", "sched.step_on_epochs": True, "sched.warmup_lr": 1e-6, "sched.min_lr": 1e-5,
    "aug.auto_augment": "rand-m9-mstd0.5-inc1", "aug.color_jitter": 0.4, "aug.train_interpolation": "bicubic",
    "data.img_size": 224, "aug.reprob": 0.25, "aug.remode": "pixel", "aug.recount": 1,
    "aug.mixup": 0.8, "aug.cutmix": 1.0, "aug.mixup_prob": 1.0, "aug.mixup_switch_prob": 0.5,
    "aug.mixup_mode": "batch", "aug.smoothing": 0.1, "aug.repeated_aug": 3,
    "ema.enabled": True, "ema.decay": 0.99996, "ema.scale_with_batch": True, "seed": 0,
    "data.interpolation": "bicubic", "data.crop_pct": 0.875,
    "data.mean": [0.485, 0.456, 0.406], "data.std": [0.229, 0.224, 0.225], "data.num_classes": 1000,
    "model.sync_bn": True,
}
SPEC_DROP_PATH = {"t": 0.1, "s": 0.15, "b": 0.4, "l": 0.55}
EXPERIMENTS = [f"{family}_{size}_in1k" for family in ("ravlt", "mavit") for size in "tsbl"]


def compose_cfg(overrides: list[str]):
    register_configs()
    with initialize_config_module(config_module="zoo.configs", version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_matches_the_paper_recipe(experiment: str) -> None:
    cfg = compose_cfg([f"experiment={experiment}", "data.root=/data/imagenet"])
    family, size, _ = experiment.split("_")
    assert cfg.model.name == f"{family}_{size}"
    assert cfg.model.drop_path_rate == SPEC_DROP_PATH[size]
    assert cfg.name == experiment
    for key, want in SPEC_RECIPE.items():
        got = OmegaConf.select(cfg, key)
        got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
        assert got == pytest.approx(want) if isinstance(want, (float, list)) else got == want, (key, got, want)
    # "lr = 5e-4 x global_batch / 512 (1e-3 at 8x128)"; EMA 0.99996 ** (global_batch / 512).
    eight_gpus = DistInfo(rank=0, world_size=8)
    assert scaled_lr(cfg, eight_gpus) == pytest.approx(1e-3)
    assert ema_decay(cfg, eight_gpus) == pytest.approx(0.99996 ** 2)
    assert cfg.precision in ("bf16", "fp16")
    recipe = Path(__file__).parents[2] / "configs" / "experiment"  # the size file and its family's base recipe
    assert "fp16" in (recipe / f"{experiment}.yaml").read_text() + (recipe / f"{family}_in1k.yaml").read_text()


def test_every_registered_family_size_has_an_experiment() -> None:
    import timm

    import zoo  # noqa: F401

    names = set(timm.list_models("ravlt_*")) | set(timm.list_models("mavit_*"))
    assert names == {e.rsplit("_", 1)[0] for e in EXPERIMENTS}


def test_imagenet_data_root_is_required() -> None:
    cfg = compose_cfg(["experiment=ravlt_t_in1k"])
    assert OmegaConf.is_missing(cfg.data, "root")


def test_default_is_the_embedded_digits_run() -> None:
    cfg = compose_cfg([])
    assert cfg.data.root is None and cfg.model.name == "ravlt_t" and cfg.model.kwargs
    assert cfg.ema.enabled


@pytest.mark.parametrize("override, suggestion", [
    ("optim.lrr=1", "optim.lr"),
    ("optim.weight_decy=0.1", "optim.weight_decay"),
    ("sched.epoch=3", "sched.epochs"),
    ("modle.name=resnet18", "model.name"),
    ("experimnt=ravlt_s_in1k", "experiment"),
])
def test_a_typo_names_the_key_and_the_nearest_valid_ones(override: str, suggestion: str) -> None:
    with pytest.raises(UnknownKeyError) as err:
        check_overrides([override])
    message = str(err.value)
    assert override.split("=")[0] in message and suggestion in message


@pytest.mark.parametrize("override", [
    "optim.lr=1e-3", "model.kwargs.embed_dims=[8,16,24,32]", "experiment=ravlt_s_in1k", "+foo=1",
    "hydra/launcher=slurm", "hydra.run.dir=/tmp/x", "data.root=/data",
])
def test_valid_overrides_pass(override: str) -> None:
    check_overrides([override])


def test_unknown_key_in_a_yaml_is_an_error_too(tmp_path: Path) -> None:
    # The schema is a structured config: a key it lacks cannot come in through a config file either.
    from omegaconf.errors import ConfigKeyError

    from zoo.train.schema import TrainConfig

    schema = OmegaConf.structured(TrainConfig)
    with pytest.raises(ConfigKeyError, match="weight_decy"):
        OmegaConf.merge(schema, {"optim": {"weight_decy": 0.1}})


def test_cli_typo_exits_with_a_helpful_message(zoo_cache: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "zoo.train", "optim.weight_decy=0.1"], cwd=tmp_path,
                          env=subprocess_env(zoo_cache), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "optim.weight_decy" in proc.stderr and "optim.weight_decay" in proc.stderr


def test_cfg_job_prints_the_resolved_experiment(zoo_cache: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "zoo.train", "experiment=mavit_s_in1k", "data.root=/data/imagenet",
         "optim.weight_decay=0.1", "--cfg", "job"],
        cwd=tmp_path, env=subprocess_env(zoo_cache), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    printed = yaml.safe_load(proc.stdout)
    assert printed["model"]["name"] == "mavit_s" and printed["model"]["drop_path_rate"] == 0.15
    assert printed["optim"]["weight_decay"] == 0.1 and printed["data"]["root"] == "/data/imagenet"
    assert not list(tmp_path.iterdir()), "--cfg job must not start a run"


def test_slurm_launcher_config_is_a_submitit_config() -> None:
    cfg = yaml.safe_load((Path(__file__).parents[2] / "configs" / "hydra" / "launcher" / "slurm.yaml").read_text())
    assert cfg["defaults"] == ["submitit_slurm"]
    assert cfg["tasks_per_node"] == cfg["gpus_per_node"]


def test_weight_decay_rule_decays_4d_layer_scales_only_beyond_1d_params() -> None:
    from zoo.train.engine import create_model, create_optimizer

    cfg = compose_cfg(["experiment=ravlt_t_in1k", "data.root=/x"])
    model = create_model({"name": "ravlt_t", "kwargs": dict(
        embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], projection=32)}, 10)
    optimizer = create_optimizer(model, cfg, lr=1e-3)
    decay_of = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(decay_of) == len(named)
    gammas = [n for n, p in named.items() if n.endswith("gamma")]
    assert gammas and all(named[n].ndim == 4 and decay_of[id(named[n])] == 0.05 for n in gammas)
    for name, p in named.items():
        expected = 0.0 if p.ndim <= 1 or name.endswith(".bias") else 0.05
        assert decay_of[id(p)] == expected, name


def test_multirun_sweep_runs_each_job_in_its_own_directory(zoo_cache: Path, tmp_path: Path) -> None:
    from train_helpers import TINY

    proc = subprocess.run(
        [sys.executable, "-m", "zoo.train", "-m", *TINY, "optim.lr=1e-3,2e-3", "sched.epochs=1",
         "debug.max_steps_per_epoch=1", "ema.enabled=false"],
        cwd=tmp_path, env=subprocess_env(zoo_cache), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "outputs" / "multirun" / "digits"
    summaries = sorted(sweep.glob("*/summary.json"))
    assert len(summaries) == 2, list(sweep.iterdir())
    assert {json.loads(p.read_text())["lr"] for p in summaries} == {1e-3, 2e-3}
    assert sorted(p.parent.name for p in summaries) == ["0", "1"]


def test_drop_rates_from_the_model_config_or_its_kwargs() -> None:
    """model.drop_path_rate and model.kwargs.drop_path_rate both reach the model; set to different values,
    they are an error rather than a silent pick (zoo-validate's --model-kwargs fills model.kwargs)."""
    from zoo.train.engine import create_model

    tiny = dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1])
    paths = lambda m: [getattr(d, "drop_prob", 0.0) for n, d in m.named_modules() if n.endswith("drop_path1")]
    from_kwargs = create_model({"name": "ravlt_t", "kwargs": {**tiny, "drop_path_rate": 0.3}}, 10)
    from_field = create_model({"name": "ravlt_t", "drop_path_rate": 0.3, "kwargs": tiny}, 10)
    assert paths(from_kwargs) == paths(from_field) and max(paths(from_field)) == pytest.approx(0.3)
    with pytest.raises(ValueError, match=r"model.drop_path_rate=0.1 and model.kwargs.drop_path_rate=0.3 disagree"):
        create_model({"name": "ravlt_t", "drop_path_rate": 0.1, "kwargs": {**tiny, "drop_path_rate": 0.3}}, 10)


def test_every_experiment_includes_its_family_recipe() -> None:
    """Hydra's experiment pattern: <family>_in1k.yaml holds what a family's sizes share and picks no model;
    each <variant>_in1k.yaml includes it first, then picks the model and overrides what differs."""
    folder = Path(__file__).parents[2] / "configs" / "experiment"
    files = {p.stem: yaml.safe_load(p.read_text()) for p in folder.glob("*.yaml")}
    bases = {name for name, cfg in files.items() if not any("/model" in str(d) for d in cfg["defaults"])}
    assert bases == {f"{family}_in1k" for family in ("ravlt", "mavit", "inline", "soft", "vig", "maxformer",
                                                     "poolformerv1", "inception_transformer")}
    for name, cfg in files.items():
        if name in bases:
            assert "name" not in cfg, name
            continue
        family = max((b for b in bases if name.startswith(b.removesuffix("in1k"))), key=len)
        assert cfg["defaults"][0] == family and cfg["defaults"][-1] == "_self_", name
        assert cfg["name"] == name
