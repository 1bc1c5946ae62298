"""The published SSM-VOS models: one card each, the one place their facts live.

A card gives where the checkpoint comes from, the network configuration it fits, the input
size it was trained at and the image normalisation it expects. The download and cache code
(:mod:`ssmvos.weights`), the builder (:mod:`ssmvos.build`), the image tensors
(:mod:`ssmvos.data.tensors`), the ONNX manifest and the command-line defaults read them from
here. Nothing here imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: ImageNet statistics the encoder was trained with: images are /255, then (x - mean) / std per channel.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The network input size (height = width) of the published models and of the original scripts.
DEFAULT_INPUT_SIZE = 512


@dataclass(frozen=True)
class PretrainedCard:
    """One published model."""

    name: str
    title: str
    url: str  # the original project's share link (a direct download with ``?dl=1``)
    config: dict = field(default_factory=lambda: {"encoder": "resnet50", "matching": "conv", "keep_topk": 32})
    input_size: tuple[int, int] = (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    reported: str = ""  # the accuracy the paper reports for it

    @property
    def download_url(self) -> str:
        return self.url + "?dl=1"


PRETRAINED: dict[str, PretrainedCard] = {c.name: c for c in (
    PretrainedCard("davis16", "DAVIS 2016 fine-tuned", "https://www.dropbox.com/s/7dctisjdrl2b47c/ssm_davis16.pt",
                   reported="DAVIS 2016 val J&F 85.9 (J 86.2, F 85.6)"),
    PretrainedCard("davis17", "DAVIS 2017 fine-tuned (the default)",
                   "https://www.dropbox.com/s/ew2d2gy3rldxob9/ssm_davis17.pt",
                   reported="DAVIS 2017 test-dev J&F 62.0"),
    PretrainedCard("youtube", "YouTube-VOS 2018 pre-trained",
                   "https://www.dropbox.com/s/jm24vm2puprcldz/ssm_youtube.pt"),
)}


def input_size_for(input_size: int | tuple[int, int] | None = None, weights: object = None) -> tuple[int, int]:
    """(height, width) from ``input_size`` (N for N×N, or (H, W)); None: the input size of
    the published model ``weights`` names, else :data:`DEFAULT_INPUT_SIZE`."""
    if input_size is None:
        card = PRETRAINED.get(weights) if isinstance(weights, str) else None
        return card.input_size if card is not None else (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)
    if isinstance(input_size, int):
        return input_size, input_size
    height, width = input_size
    return int(height), int(width)
