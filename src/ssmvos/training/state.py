"""What exact resumption needs beyond the weights: RNG states and a sampler that can skip.

RNG states are stored as tensors, ints and lists only, so checkpoints stay loadable with
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state(device: torch.device) -> dict[str, Any]:
    """This process's RNG states: python, numpy (global), torch CPU and, on CUDA, the device's."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    n = state["numpy"]
    np.random.set_state({
        "bit_generator": "MT19937",
        "state": {"key": n["key"].numpy().astype(np.uint32), "pos": int(n["pos"])},
        "has_gauss": int(n["has_gauss"]),
        "gauss": float(n["gauss"]),
    })
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def loader_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    """The DataLoader's own generator for one epoch (worker base seeds).

    Giving the loader its own generator keeps iterator creation from drawing on the global
    torch RNG, which would otherwise shift the dropout masks after a mid-epoch resume.
    """
    value = int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, np.uint64)[0] >> 1)
    return torch.Generator().manual_seed(value)


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (shuffled per epoch from ``seed + epoch``) that can start mid-epoch.

    For a fixed global batch B and world size W, rank r's j-th batch holds positions
    ``(j·B/W + t)·W + r`` of the epoch's permutation, so global batch j is permutation
    positions ``j·B ... j·B + B − 1`` whatever W is. Skipping ``s`` samples on every rank
    therefore resumes after the first ``s·W`` samples of the epoch.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int, shuffle: bool = True):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` samples of this rank in the coming epoch."""
        self.start = max(0, int(start))

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)
