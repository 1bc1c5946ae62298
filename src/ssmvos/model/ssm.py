"""The SSM network (Zhu et al., T-CSVT 2021), numerically faithful to the original code."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .decoder import GlobalConvolutionBlock, RefinementModule
from .matching import PixelSimilarity, reference_foreground
from .resnet import ENCODERS

#: Smallest input height: layer4 (stride 32) needs 7 rows for the GCB's unpadded 7×1 conv.
MIN_INPUT_HEIGHT = 193
#: Channels of the stride-16 features; keep_topk must divide them (the structure branch's groups).
X4_CHANNELS = 1024


def stride16_size(height: int, width: int) -> tuple[int, int]:
    """Rows and columns of the encoder's stride-16 features for an H×W input (conv1 and every
    later stride-2 step round up)."""
    h, w = height, width
    for _ in range(4):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return h, w


#: Peak memory per input pixel, measured on the CPU in fp32 (256² and 512² inputs): about
#: 1.2-1.4 KiB per object for inference, 6-7 KiB per sample for a training step (forward,
#: backward and the weights' gradients). Used to refuse sizes no machine here could run.
INFERENCE_BYTES_PER_PIXEL = 1536
TRAIN_BYTES_PER_PIXEL = 8192


def topk_problem(keep_topk: object) -> str | None:
    """Why ``keep_topk`` cannot configure the network, or None (the words name no flag)."""
    if not isinstance(keep_topk, int) or isinstance(keep_topk, bool) or keep_topk < 1 or X4_CHANNELS % keep_topk:
        return (f"keep_topk {keep_topk} is not a positive divisor of {X4_CHANNELS} (the structure branch splits "
                f"the {X4_CHANNELS} stride-16 channels into keep_topk groups)")
    return None


def memory_needed(height: int, width: int, samples: int = 1, training: bool = False) -> int:
    """Rough peak bytes for ``samples`` objects (inference) or samples (a training step) at height×width."""
    per_pixel = TRAIN_BYTES_PER_PIXEL if training else INFERENCE_BYTES_PER_PIXEL
    return per_pixel * height * width * samples


def memory_problem(needed: int, what: str) -> str | None:
    """Why ``needed`` bytes (for ``what``) cannot be had on this machine, or None."""
    from ..cpus import human_size, physical_memory

    have = physical_memory()
    if have is not None and needed > have:
        return (f"{what} would need about {human_size(needed)} of memory, more than this machine has "
                f"({human_size(have)})")
    return None


def shape_problem(height: int, width: int, keep_topk: int | None = None) -> str | None:
    """Why the network's layers cannot take height×width inputs with ``keep_topk``, or None:
    the rules of its shapes alone, cheap enough to check on every forward pass."""
    if keep_topk is not None:
        problem = topk_problem(keep_topk)
        if problem:
            return problem
    if height < MIN_INPUT_HEIGHT or width < 1:
        return (f"input size {height}x{width} (height x width) is too small: the network needs a height of at "
                f"least {MIN_INPUT_HEIGHT} px (its 7x1 convolution on the stride-32 features)")
    h, w = stride16_size(height, width)
    if keep_topk is not None and h * w < keep_topk:
        return (f"input size {height}x{width} gives only {h}x{w} = {h * w} stride-16 positions, fewer than "
                f"keep_topk {keep_topk}: use a larger input or a smaller keep_topk")
    return None


def input_problem(height: int, width: int, keep_topk: int | None = None) -> str | None:
    """Why the network cannot run on height×width inputs with ``keep_topk`` on this machine, or None:
    :func:`shape_problem`, then the memory one object needs at that size.

    ``keep_topk`` None checks what holds for every keep_topk (the minimum height, the memory),
    for use before a checkpoint says which it is. The words name no flag: each front end adds
    its own.
    """
    problem = shape_problem(height, width, keep_topk)
    if problem:
        return problem
    return memory_problem(memory_needed(height, width), f"input size {height}x{width} (height x width) for one object")


def check_input_size(height: int, width: int, keep_topk: int | None = None, source: str = "input_size") -> None:
    """Raise SSMVOSError with :func:`input_problem`'s words and ``source`` (what set the size:
    an argument's name, or a command's flags) when the network cannot run at height×width."""
    from ..errors import SSMVOSError

    problem = input_problem(height, width, keep_topk)
    if problem:
        raise SSMVOSError(f"{problem} (set by {source})")


@dataclass
class ReferenceEncoding:
    """Everything the network needs from the reference pair, computed once per object.

    x5: N×2048×h32×w32, x4: N×1024×h16×w16, fg: N×1×(h16·w16) foreground in {0, 1},
    group_feats: N×1024×h16×w16 and global_feats: N×(1024/k)×h16×w16 (the
    reference-only parts of the structure branch).
    """

    x5: Tensor
    x4: Tensor
    fg: Tensor
    group_feats: Tensor
    global_feats: Tensor

    def __len__(self) -> int:
        return self.x5.shape[0]

    @staticmethod
    def cat(encodings: list["ReferenceEncoding"]) -> "ReferenceEncoding":
        """Stack several encodings along the batch dimension."""
        return ReferenceEncoding(
            **{f.name: torch.cat([getattr(e, f.name) for e in encodings]) for f in fields(ReferenceEncoding)}
        )


class SSM(nn.Module):
    """Separable Structure Modeling network for one object per batch row.

    ``model(ref_img, ref_mask, cur_img, prev_mask) -> (logits, struct_logits)``:
    images N×3×H×W (ImageNet-normalised), masks N×1×H×W in [0, 1], both outputs
    N×2×H×W (background, foreground). Reference and current share one size H×W
    (the structure branch lives on the reference grid); H must be at least 193, since
    the original GCB convolves layer4 (stride 32) with an unpadded 7×1 kernel, and
    (H/16)·(W/16) must hold at least keep_topk positions.

    Building the network downloads nothing; the encoder starts random (see
    ``ssmvos.weights.init_encoder_from_imagenet`` for ImageNet initialisation).
    """

    def __init__(self, encoder: str = "resnet50", matching: str = "conv", keep_topk: int = 32):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {sorted(ENCODERS)}, not {encoder!r}")
        self.config = {"encoder": encoder, "matching": matching, "keep_topk": keep_topk}
        self.encoder = ENCODERS[encoder](in_chans=4)
        self.pixel_corr = PixelSimilarity(matching, keep_topk)
        extra = self.pixel_corr.out_channels
        self.GCB = GlobalConvolutionBlock(4096)
        self.RM1 = RefinementModule(1024 + extra, 256)
        self.RM2 = RefinementModule(512 + extra, 256)
        self.RM3 = RefinementModule(256 + extra, 256)
        self.classifier = nn.Conv2d(256, 2, kernel_size=3, padding=1)
        self.dropout2d = nn.Dropout2d(p=0.5)

    def _check_input(self, images: Tensor) -> None:
        problem = shape_problem(*images.shape[-2:], self.config["keep_topk"])
        if problem:
            raise ValueError(problem)

    def encode_reference(self, ref_img: Tensor, ref_mask: Tensor) -> ReferenceEncoding:
        """Encode the reference pair once: ref_img N×3×H×W, ref_mask N×1×H×W."""
        self._check_input(ref_img)
        x5, x4, _, _, _ = self.encoder(torch.cat([ref_img, ref_mask], dim=1))
        fg = reference_foreground(ref_mask, x4.shape[-2:])
        group_feats, global_feats = self.pixel_corr.self_structure.reference_parts(x4)
        return ReferenceEncoding(x5, x4, fg, group_feats, global_feats)

    def encode_current(self, cur_img: Tensor, prev_mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Encoder on the current pair: -> (x5, x4, x3, x2) at strides 32, 16, 8, 4."""
        self._check_input(cur_img)
        x5, x4, x3, x2, _ = self.encoder(torch.cat([cur_img, prev_mask], dim=1))
        return x5, x4, x3, x2

    def match(self, ref: ReferenceEncoding, cur_x4: Tensor) -> tuple[Tensor, Tensor]:
        """Pixel similarity: cur_x4 N×1024×h×w -> (pixel map N×C×h×w, struct logits N×2×h×w)."""
        return self.pixel_corr(cur_x4, ref.x4, ref.fg, ref.group_feats, ref.global_feats)

    def decode(self, ref: ReferenceEncoding, cur: tuple[Tensor, Tensor, Tensor, Tensor], pixel_map: Tensor) -> Tensor:
        """GCB on [ref x5, cur x5], then refinement at strides 16, 8, 4 -> N×2×(H/4)×(W/4) logits."""
        cur_x5, cur_x4, cur_x3, cur_x2 = cur
        ref_x5 = ref.x5
        if ref_x5.shape[-2:] != cur_x5.shape[-2:]:
            ref_x5 = F.interpolate(ref_x5, cur_x5.shape[-2:], mode="bilinear", align_corners=False)
        x = self.GCB(torch.cat([ref_x5, cur_x5], dim=1))
        low4 = torch.cat([cur_x4, pixel_map], dim=1)
        pixel_map = F.interpolate(pixel_map, cur_x3.shape[-2:], mode="nearest")
        low3 = torch.cat([cur_x3, pixel_map], dim=1)
        pixel_map = F.interpolate(pixel_map, cur_x2.shape[-2:], mode="nearest")
        low2 = torch.cat([cur_x2, pixel_map], dim=1)
        x = self.RM1(x, low4)
        x = self.RM2(x, low3)
        x = self.RM3(x, low2)
        return self.classifier(self.dropout2d(x))

    def segment(self, ref: ReferenceEncoding, cur_img: Tensor, prev_mask: Tensor) -> tuple[Tensor, Tensor]:
        """The current-frame part: cur_img N×3×H×W, prev_mask N×1×H×W -> two N×2×H×W logits."""
        size = cur_img.shape[-2:]
        cur = self.encode_current(cur_img, prev_mask)
        pixel_map, struct_logits = self.match(ref, cur[1])
        x = self.decode(ref, cur, pixel_map)
        logits = F.interpolate(x, size, mode="bilinear", align_corners=False)
        struct_logits = F.interpolate(struct_logits, size, mode="bilinear", align_corners=False)
        return logits, struct_logits

    def forward(self, ref_img: Tensor, ref_mask: Tensor, cur_img: Tensor, prev_mask: Tensor) -> tuple[Tensor, Tensor]:
        """One-call forward: ``segment(encode_reference(ref_img, ref_mask), cur_img, prev_mask)``."""
        return self.segment(self.encode_reference(ref_img, ref_mask), cur_img, prev_mask)
