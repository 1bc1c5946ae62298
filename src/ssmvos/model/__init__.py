"""The SSM network: tensors in, tensors out (no file I/O, downloads or argparse here)."""
from .resnet import ResNetEncoder, adapt_conv1_to_rgbm, resnet50, resnet101
from .ssm import SSM, ReferenceEncoding

__all__ = ["SSM", "ReferenceEncoding", "ResNetEncoder", "adapt_conv1_to_rgbm", "resnet50", "resnet101"]
