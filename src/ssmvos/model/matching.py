"""Pixel similarity between current and reference features (stride-16, 1024 channels).

* ``correlation``: every current pixel against every reference pixel (dot products, or
  cosine similarities), as one batched matrix product.
* ``masked_topk``: per current pixel, the k largest correlations over the reference
  foreground and over the background; the other pixels count as 0, as in the original's
  multiply-by-mask.
* ``SelfStructure``: the structure branch, wired as in the original: the k current
  positions whose foreground correlation sums are largest pick feature vectors out of the
  REFERENCE features, which are then correlated with the reference features themselves,
  so the output lies on the reference grid (reference and current share one size).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def correlation(cur: Tensor, ref: Tensor, cosine: bool = False) -> Tensor:
    """Similarity of every current pixel with every reference pixel.

    cur: N×C×Hc×Wc, ref: N×C×Hr×Wr -> N×(Hc·Wc)×(Hr·Wr).
    """
    if cosine:
        cur = F.normalize(cur, p=2, dim=1)
        ref = F.normalize(ref, p=2, dim=1)
    return torch.bmm(cur.flatten(2).transpose(1, 2), ref.flatten(2))


def reference_foreground(ref_mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Reference mask N×1×H×W -> N×1×(h·w) float {0, 1} at feature size (bilinear, > 0.5)."""
    small = F.interpolate(ref_mask, size, mode="bilinear", align_corners=False)
    return (small > 0.5).to(small.dtype).flatten(2)


def masked_topk(corr: Tensor, fg: Tensor, k: int, cur_size: tuple[int, int]) -> Tensor:
    """Top-k background and foreground correlations per current pixel.

    corr: N×(Hc·Wc)×(Hr·Wr), fg: N×1×(Hr·Wr) in {0, 1} -> N×2k×Hc×Wc, channels
    [background top-k (descending), foreground top-k (descending)].
    """
    if corr.shape[-1] < k:
        raise ValueError(
            f"keep_topk={k} exceeds the {corr.shape[-1]} reference positions at stride 16; "
            "use a larger input size or a smaller keep_topk"
        )
    fg_vals = torch.topk(corr * fg, k, dim=-1).values
    bg_vals = torch.topk(corr * (1.0 - fg), k, dim=-1).values
    n = corr.shape[0]
    out = torch.cat([bg_vals, fg_vals], dim=-1)  # N×HW×2k
    return out.transpose(1, 2).reshape(n, 2 * k, *cur_size)


class SelfStructure(nn.Module):
    """Separable structure branch: 'individual' grouped part and 'shared' mean part.

    Keys: ``group_conv.0`` (1024→1024, groups=k) and ``global_conv.0`` (1024→1024/k).
    """

    def __init__(self, keep_topk: int, channels: int = 1024):
        super().__init__()
        if channels % keep_topk:
            raise ValueError(f"keep_topk={keep_topk} must divide {channels}")
        self.keep_topk = keep_topk
        self.group_conv = nn.Sequential(nn.Conv2d(channels, channels, 1, groups=keep_topk), nn.ReLU())
        self.global_conv = nn.Sequential(nn.Conv2d(channels, channels // keep_topk, 1), nn.ReLU())

    def reference_parts(self, ref: Tensor) -> tuple[Tensor, Tensor]:
        """The parts that depend on the reference only: grouped and shared 1×1 convs.

        ref: N×C×H×W -> (N×C×H×W, N×(C/k)×H×W).
        """
        return self.group_conv(ref), self.global_conv(ref)

    def forward(self, corr: Tensor, fg: Tensor, ref: Tensor, group_feats: Tensor, global_feats: Tensor) -> Tensor:
        """corr: N×(Hc·Wc)×(Hr·Wr), fg: N×1×(Hr·Wr), ref: N×C×Hr×Wr (with its two
        ``reference_parts``) -> N×(2C/k)×Hr×Wr."""
        n, c, h, w = ref.shape
        k = self.keep_topk
        if corr.shape[1] != h * w:
            raise ValueError("the self-structure branch needs reference and current features of one size")
        # k current positions with the largest summed foreground correlation ...
        score = (corr * fg).sum(dim=-1)  # N×(Hc·Wc)
        idx = torch.topk(score, k, dim=1).indices  # N×k
        flat = ref.flatten(2)  # N×C×HW
        # ... index the REFERENCE features (the original's wiring).
        picked = torch.gather(flat, 2, idx.unsqueeze(1).expand(n, c, k)).transpose(1, 2)  # N×k×C
        maps = torch.bmm(picked, flat).view(n, k, 1, h, w)  # N×k×1×H×W
        individual = (group_feats.view(n, k, c // k, h, w) * maps).sum(dim=1)
        shared = global_feats * maps.mean(dim=1)
        return torch.cat([individual, shared], dim=1)


class PixelSimilarity(nn.Module):
    """Masked top-k matching plus the structure branch and its 2-channel head (``conv1x1``)."""

    def __init__(self, matching: str, keep_topk: int, channels: int = 1024):
        super().__init__()
        if matching not in ("conv", "cosine"):
            raise ValueError(f"matching must be 'conv' or 'cosine', not {matching!r}")
        self.cosine = matching == "cosine"
        self.keep_topk = keep_topk
        self.struct_channels = 2 * (channels // keep_topk)
        self.out_channels = 2 * keep_topk + self.struct_channels
        self.self_structure = SelfStructure(keep_topk, channels)
        self.conv1x1 = nn.Conv2d(self.struct_channels, 2, 1)

    def forward(self, cur: Tensor, ref: Tensor, fg: Tensor, group_feats: Tensor, global_feats: Tensor) -> tuple[Tensor, Tensor]:
        """cur, ref: N×C×h×w; fg: N×1×(h·w) -> (pixel map N×out_channels×h×w, struct logits N×2×h×w)."""
        corr = correlation(cur, ref, self.cosine)
        topk = masked_topk(corr, fg, self.keep_topk, cur.shape[-2:])
        struct = self.self_structure(corr, fg, ref, group_feats, global_feats)
        return torch.cat([topk, struct], dim=1), self.conv1x1(struct)
