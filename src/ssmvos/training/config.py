"""Training configuration (the original train.py flags plus a few of ours) and its checks."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import SSMVOSError
from ..model.ssm import input_problem, memory_needed, memory_problem
from ..options import DEVICES, PRECISIONS


@dataclass
class TrainConfig:
    """Everything a training run depends on. Field names follow the original's flags."""

    model_dir: str
    split: str
    batch_size: int = 16  # GLOBAL batch: split evenly over the processes
    max_epoch: int = 20
    num_workers: int = 16  # per process, capped at the CPUs available to it
    resume: str | None = None
    resume_step: bool = False
    seed: int = 123
    encoder: str = "resnet50"
    log_step: int = 10
    save_step: int = 4750
    matching: str = "conv"
    keep_topk: int = 32
    input_height: int = 512
    input_width: int = 512
    base_lr: float = 1e-5
    encoder_lr_weight: float = 1.0
    lr_decay_step: int = 9501
    lr_decay_rate: float = 0.9
    weight_decay: float = 5e-4
    flip_rate: float = 0.5
    blur_rate: float = 1.0
    rotation: float = 45.0
    min_margin: float = 0.0
    max_margin: float = 1.0
    max_steps: int | None = None  # stop once global_step reaches this (counts steps before a resume)
    device: str = "auto"
    precision: str = "fp32"
    pretrained: bool = True  # ImageNet-initialised encoder (ignored when --resume gives weights)
    channels_last: bool = True  # channels-last memory format (same numbers, faster convolutions)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for args.json."""
        return asdict(self)


def check_config(config: TrainConfig, world_size: int) -> None:
    """Checks that need no files: numbers, choices, sizes and the batch split.

    Raises SSMVOSError with one line naming the flag at fault.
    """
    positive = {"--batch-size": config.batch_size, "--log-step": config.log_step, "--save-step": config.save_step,
                "--lr-decay-step": config.lr_decay_step}
    for flag, value in positive.items():
        if value < 1:
            raise SSMVOSError(f"{flag} must be at least 1, got {value}")
    if config.max_epoch < 0:
        raise SSMVOSError(f"--max-epoch must not be negative, got {config.max_epoch}")
    if config.max_steps is not None and config.max_steps < 1:
        raise SSMVOSError(f"--max-steps must be at least 1, got {config.max_steps}")
    if config.num_workers < 0:
        raise SSMVOSError(f"--num-workers must not be negative, got {config.num_workers}")
    if config.base_lr < 0 or config.encoder_lr_weight < 0 or config.weight_decay < 0:
        raise SSMVOSError("--base-lr, --encoder-lr-weight and --weight-decay must not be negative")
    if config.precision not in PRECISIONS:
        raise SSMVOSError(f"--precision must be one of {', '.join(PRECISIONS)}, not {config.precision!r}")
    if config.device not in DEVICES:
        raise SSMVOSError(f"--device must be one of {', '.join(DEVICES)}, not {config.device!r}")
    if config.resume_step and not config.resume:
        raise SSMVOSError("--resume-step needs --resume CHECKPOINT")
    if config.batch_size % world_size:
        raise SSMVOSError(f"--batch-size {config.batch_size} is the global batch and must be divisible by the "
                          f"number of processes ({world_size})")
    sizes = "--input-size / --input-height / --input-width"
    problem = input_problem(config.input_height, config.input_width, config.keep_topk)
    if problem:
        raise SSMVOSError(f"{problem} (set by {sizes} / --keep-topk)")
    per_rank = config.batch_size // world_size
    problem = memory_problem(memory_needed(config.input_height, config.input_width, per_rank, training=True),
                             f"a training step of {per_rank} samples at {config.input_height}x{config.input_width}")
    if problem:
        raise SSMVOSError(f"{problem} (set by --batch-size / {sizes})")
    if config.min_margin > config.max_margin:
        raise SSMVOSError(f"--min-margin {config.min_margin} exceeds --max-margin {config.max_margin}")
    model_dir = Path(config.model_dir)
    if model_dir.exists() and not model_dir.is_dir():
        raise SSMVOSError(f"--model-dir {model_dir} is a file, not a directory")
