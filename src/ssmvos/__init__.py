"""ssmvos: SSM-VOS semi-supervised video object segmentation.

Importing the package does no work beyond defining names: no downloads, no CUDA calls, and
not even torch until a name that needs it is used (commands such as ``ssmvos score`` never
load it).
"""
from __future__ import annotations

import importlib
from typing import Any

from .errors import SSMVOSError, SSMVOSRuntimeError, SSMVOSValueError

__version__ = "0.1.0"

#: public name -> module that defines it (imported on first use)
_LAZY = {
    "SSM": ".model",
    "ReferenceEncoding": ".model",
    "VideoPredictor": ".inference.predictor",
    "build_predictor": ".build",
    "RuntimeSpec": ".runtime",
    "load_checkpoint": ".checkpoint",
    "read_checkpoint": ".checkpoint",
    "save_checkpoint": ".checkpoint",
}

__all__ = ["SSMVOSError", "SSMVOSRuntimeError", "SSMVOSValueError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ssmvos' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
