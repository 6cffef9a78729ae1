"""Console entry points: `zoo-train` (Hydra app) and `zoo-validate`."""
from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from .overrides import UnknownKeyError, check_overrides
from .schema import register_configs

register_configs()


@hydra.main(config_path="pkg://zoo.configs", config_name="train", version_base="1.3")
def _hydra_train(cfg: DictConfig) -> float | None:
    # Heavy imports only once Hydra has parsed the command line.
    from zoo import UnknownModelError

    from .checkpoint import ResumeError
    from .data import DataLayoutError
    from .engine import UnreadableImagesError
    from .trainer import TrainingInterrupted, run

    try:
        summary = run(cfg, output_dir=HydraConfig.get().runtime.output_dir)
    except TrainingInterrupted as stop:
        logging.getLogger("zoo.train").warning("%s", stop)
        sys.exit(128 + stop.signum)  # the shell convention for "ended by signal N"
    except (UnknownModelError, DataLayoutError, ResumeError) as err:  # bad input: the message says what to do
        print(f"zoo-train: error: {err}", file=sys.stderr)
        sys.exit(2)
    except UnreadableImagesError as err:  # the data, not the command: as zoo-validate without --allow-skips
        print(f"zoo-train: error: {err}", file=sys.stderr)
        sys.exit(1)
    top1 = summary.get("final_top1")
    return float(top1) if top1 is not None else None  # the sweep's objective (e.g. for Optuna)


def train_main() -> None:
    """`zoo-train [overrides]`: see configs/train.yaml; `zoo-train --cfg job` prints the config."""
    try:
        check_overrides(sys.argv[1:])
    except UnknownKeyError as err:
        print(f"zoo-train: error: {err}", file=sys.stderr)
        sys.exit(2)
    logging.getLogger("zoo.train").setLevel(logging.INFO)
    _hydra_train()


def validate_main(argv: list[str] | None = None) -> None:
    """`zoo-validate --model NAME [NAME | WILDCARD ...] (--pretrained | --checkpoint PATH) --data DIR`."""
    from .validate import main

    sys.exit(main(argv))
