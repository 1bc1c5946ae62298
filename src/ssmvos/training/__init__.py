"""Training: the original SSM-VOS recipe on DistributedDataParallel with exact resumption."""
from .config import TrainConfig, check_config, check_input_size
from .trainer import TrainSummary, Trainer, intersection_union, iou_from, segmentation_loss, train

__all__ = [
    "TrainConfig",
    "TrainSummary",
    "Trainer",
    "check_config",
    "check_input_size",
    "intersection_union",
    "iou_from",
    "segmentation_loss",
    "train",
]
