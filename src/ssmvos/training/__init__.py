"""Training: the original SSM-VOS recipe on DistributedDataParallel with exact resumption."""
from .config import TrainConfig, check_config
from .trainer import TrainSummary, Trainer, intersection_union, iou_from, segmentation_loss, train

__all__ = [
    "TrainConfig",
    "TrainSummary",
    "Trainer",
    "check_config",
    "intersection_union",
    "iou_from",
    "segmentation_loss",
    "train",
]
