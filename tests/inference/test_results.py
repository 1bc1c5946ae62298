"""The result store: exact round trip, compact entries, a memory bound with spilling to disk."""
from __future__ import annotations

import numpy as np

from ssmvos.inference.results import Provenance, ResultStore

H, W = 120, 160
PROV = Provenance(0, 1, 0, 1, False)


def _masks(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A soft mask that is zero outside a box (as pasted back) and its argmax mask."""
    rng = np.random.default_rng(seed)
    soft = np.zeros((H, W), np.uint8)
    y, x = rng.integers(0, 60, 2)
    soft[y : y + 50, x : x + 70] = rng.integers(0, 256, (50, 70), dtype=np.uint8)
    return soft, soft > 127


def test_round_trip_is_exact_and_compact():
    store = ResultStore(H, W)
    soft, chain = _masks(0)
    store.put(3, 1, soft, chain, PROV)
    boxed = store.memory_bytes
    got = store.get(3, 1)
    assert np.array_equal(got.soft, soft) and np.array_equal(got.chain, chain) and got.provenance == PROV
    assert store.get(3, 2) is None and store.provenance(4, 1) is None
    assert store.objects_at(3) == [1] and store.frames() == [3]
    # an empty frame costs under 1 % of its raw bytes; a boxed mask less than the raw soft mask
    store.put(4, 1, np.zeros((H, W), np.uint8), np.zeros((H, W), bool), PROV)
    assert store.memory_bytes - boxed < 0.01 * soft.nbytes
    assert boxed < soft.nbytes


def test_memory_bound_spills_to_a_folder_removed_on_clear():
    store = ResultStore(H, W, memory_limit=20_000)
    want = {}
    for frame in range(40):
        want[frame] = _masks(frame)
        store.put(frame, 1, *want[frame], PROV)
    assert store.memory_bytes <= 20_000 and store.spilled_bytes > 0
    folder = store.spill_folder
    assert folder is not None and len(list(folder.iterdir())) > 0
    for frame, (soft, chain) in want.items():
        got = store.get(frame, 1)
        assert np.array_equal(got.soft, soft) and np.array_equal(got.chain, chain)
    store.put(39, 1, *want[0], PROV)  # replacing an entry frees its old bytes
    assert np.array_equal(store.get(39, 1).soft, want[0][0])
    store.remove_object(1)
    assert store.frames() == [] and store.memory_bytes == 0 and store.spilled_bytes == 0
    store.put(0, 2, *want[1], PROV)
    store.clear()
    assert store.frames() == [] and not folder.exists()
