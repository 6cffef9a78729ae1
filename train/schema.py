"""Structured-config schemas: every key `zoo-train` accepts, with its type.

The YAML files in `configs/` fill these dataclasses in; because the primary
config starts from `TrainConfig`, a key that is not declared here is an error
(OmegaConf struct mode) instead of a silently ignored setting.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class ModelConfig:
    name: str = "ravlt_t"                 # any timm-registered model (zoo models included)
    pretrained: bool = False
    init_checkpoint: str | None = None  # weights (.safetensors or a checkpoint dir) to start from
    init_checkpoint_required: bool = False  # fine-tune experiments: refuse to start without init_checkpoint
    # Pass init_checkpoint through the family's checkpoint_filter_fn before the (still strict) load: resizes
    # what depends on the resolution (pos-embeds, relative-position tables) for the 384 fine-tunes from 224
    # weights. Off by default so that an init load is exact unless an experiment asks for the adaptation.
    init_checkpoint_adapt: bool = False
    num_classes: int | None = None     # None: the dataset's number of classes
    drop_rate: float | None = None     # None: the model's own default
    drop_path_rate: float | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra constructor arguments
    sync_bn: bool = False                 # convert BatchNorm to SyncBatchNorm under DDP on CUDA
    channels_last: bool = False
    compile: bool = False                 # torch.compile the model
    grad_checkpointing: bool = False


@dataclass
class DataConfig:
    # timm dataset name: "" (image folder / tar), "wds/...", "hfds/...", "hfids/...", "tfds/...", "torch/..."
    name: str = ""
    # Required (set it, or data=digits with root null for the embedded scikit-learn digits).
    root: str | None = MISSING
    train_split: str = "train"
    val_split: str = "validation"
    # Image folders: a root without the val_split folder (nor val/, eval/...) is an error, because timm would
    # validate on the root itself, i.e. on the training images. True: validate on the root as it is.
    allow_val_on_root: bool = False
    # Validation: an unreadable image is counted and named, and the run stops (after checkpointing the epoch)
    # unless this is true; then the metrics cover the readable images and the count is reported.
    allow_skips: bool = False
    num_classes: int | None = None     # needed for streaming datasets; folders count their classes
    class_map: str = ""
    download: bool = False
    img_size: int = 224
    crop_pct: float = 0.875
    # Eval resize: "center" (short side to img_size / crop_pct, then a centre crop), "squash" (the whole
    # image to img_size x img_size, aspect ratio not kept) or "border" (timm's; see timm.data.create_transform).
    crop_mode: str = "center"
    interpolation: str = "bicubic"
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    batch_size: int = 128                 # per process (per GPU)
    val_batch_size: int | None = None  # None: same as batch_size
    workers: int = 8
    pin_memory: bool = True


@dataclass
class AugConfig:
    auto_augment: str | None = None    # e.g. "rand-m9-mstd0.5-inc1" (RandAugment)
    color_jitter: float | None = None
    scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])
    hflip: float = 0.5
    train_interpolation: str = "bicubic"
    reprob: float = 0.0                   # random erasing probability
    remode: str = "pixel"
    recount: int = 1
    mixup: float = 0.0                    # Mixup alpha (0: off)
    cutmix: float = 0.0                   # CutMix alpha (0: off)
    cutmix_minmax: list[float] | None = None
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    mixup_mode: str = "batch"
    smoothing: float = 0.0                # label smoothing
    repeated_aug: int = 0                 # repeats per sample (DeiT RASampler); 0 or 1: off


@dataclass
class OptimConfig:
    opt: str = "adamw"                    # any timm.optim name
    lr: float | None = None            # absolute lr; None: base_lr * global_batch / lr_base_size
    base_lr: float = 5e-4
    lr_base_size: int = 512
    weight_decay: float = 0.05
    eps: float | None = 1e-8
    betas: list[float] | None = field(default_factory=lambda: [0.9, 0.999])
    momentum: float = 0.9
    layer_decay: float | None = None
    # timm: no weight decay on parameters with ndim <= 1 (norms, biases) nor the model's no_weight_decay()
    filter_bias_and_bn: bool = True
    clip_grad: float | None = None
    clip_mode: str = "norm"


@dataclass
class SchedConfig:
    sched: str = "cosine"                 # any timm.scheduler name
    epochs: int = 300
    warmup_epochs: int = 5
    warmup_lr: float = 1e-6
    min_lr: float = 1e-5
    cooldown_epochs: int = 0
    decay_epochs: float = 90
    decay_rate: float = 0.1
    step_on_epochs: bool = True           # False: update the lr every optimizer step
    # True: `epochs` excludes the warmup (timm's warmup_prefix: the cosine starts at the peak after warmup)
    warmup_prefix: bool = False
    # Swin-codebase recipes scale warmup_lr and min_lr like the lr: x global_batch / optim.lr_base_size
    scale_with_batch: bool = False


@dataclass
class EmaConfig:
    enabled: bool = False
    decay: float = 0.99996
    # DeiT-style recipes define the decay for a global batch of batch_base: decay ** (global_batch / batch_base)
    scale_with_batch: bool = True
    batch_base: int = 512                 # the global batch the decay is stated for (CSwin: 4096)
    warmup: bool = False


@dataclass
class CheckpointConfig:
    every_steps: int = 0                  # optimizer steps between mid-epoch checkpoints (0: off)
    every_minutes: float = 30.0           # wall-clock interval for mid-epoch checkpoints (0: off)
    keep: int = 2                         # how many checkpoints to keep (the newest ones)


@dataclass
class DebugConfig:
    max_steps_per_epoch: int | None = None  # cut epochs short (smoke tests)
    step_delay_s: float = 0.0                  # sleep after each step (preemption tests)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    ema: EmaConfig = field(default_factory=EmaConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    debug: DebugConfig = field(default_factory=DebugConfig)
    name: str = "default"                 # run name; the output dir is <output_root>/<name>
    output_root: str = "outputs"
    output_dir: str | None = None      # None: Hydra's run dir
    # "auto": the newest checkpoint in the output dir (none: a new run; unreadable: an error, never a new start);
    # "never": a new run, refused if the output dir already holds checkpoints; or a checkpoint directory (a
    # weights-only start is model.init_checkpoint=<dir> with resume=never).
    resume: str = "auto"
    precision: str = "bf16"               # "bf16" | "fp16" (with a GradScaler) | "fp32"
    accum_steps: int = 1                  # gradient accumulation
    seed: int = 0
    device: str = "auto"                  # "auto" | "cpu" | "cuda" | "cuda:N"
    eval_every_epochs: int = 1
    log_every_steps: int = 50
    progress: bool = True                 # progress bar with throughput and ETA (rank 0)
    tensorboard: bool = True              # skipped with a note if tensorboard is not installed


def register_configs() -> None:
    """Register the schema so `configs/train.yaml` can start from it."""
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
