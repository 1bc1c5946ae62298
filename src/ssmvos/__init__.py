"""ssmvos: SSM-VOS semi-supervised video object segmentation.

Importing the package does no work beyond defining names: no downloads, no CUDA calls.
"""
from .checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from .errors import SSMVOSError
from .inference.predictor import VideoPredictor
from .model import SSM, ReferenceEncoding

__version__ = "0.1.0"

__all__ = [
    "SSM",
    "ReferenceEncoding",
    "SSMVOSError",
    "VideoPredictor",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
    "__version__",
]
