"""Per-frame results of a video kept compactly, so that memory stays flat with video length.

One entry per (frame, object): the object's soft mask (H×W uint8, p·255, what ``segment``
and ``evaluate`` write) and its chain mask (H×W bool: argmax(background, foreground), what
the next frame is cropped around), zlib-compressed together (a few KB: both are zero outside
the object's box), and how it was made (:class:`Provenance`). Entries stay in memory up to
``memory_limit`` bytes of compressed data; past it, new entries go to files in a temporary
folder that is removed when the store is cleared, closed or garbage-collected.
"""
from __future__ import annotations

import shutil
import tempfile
import weakref
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Provenance:
    """How a result was made: a chain that started from the mask given at frame ``anchor``
    (its version ``anchor_version``), matched against the mask given at frame ``ref``
    (version ``ref_version``) as the reference, running backward if ``reverse``.

    A given mask is stored with ``anchor`` = its own frame.
    """

    anchor: int
    anchor_version: int
    ref: int
    ref_version: int
    reverse: bool


@dataclass
class StoredResult:
    """One object's result at one frame, decompressed."""

    soft: np.ndarray  # H×W uint8
    chain: np.ndarray  # H×W bool
    provenance: Provenance


@dataclass
class _Entry:
    provenance: Provenance
    size: int  # compressed bytes
    blob: bytes | None = None  # in memory, or
    path: Path | None = None  # spilled to a file


class ResultStore:
    """Compressed (frame, object) -> result entries for H×W frames (see the module docstring)."""

    def __init__(self, height: int, width: int, memory_limit: int = 256 << 20):
        self.height, self.width = height, width
        self.memory_limit = memory_limit
        self._entries: dict[int, dict[int, _Entry]] = {}
        self.memory_bytes = 0  # compressed bytes held in memory
        self.spilled_bytes = 0  # compressed bytes in the spill folder
        self._folder: Path | None = None
        self._cleanup: weakref.finalize | None = None

    def put(self, frame: int, obj: int, soft: np.ndarray, chain: np.ndarray, provenance: Provenance) -> None:
        """Store object ``obj``'s soft mask (H×W uint8) and chain mask (H×W, nonzero = 1) at ``frame``."""
        data = np.ascontiguousarray(soft, dtype=np.uint8).tobytes() + np.packbits(np.asarray(chain) > 0).tobytes()
        blob = zlib.compress(data, 1)
        self._drop(frame, obj)
        entry = _Entry(provenance, len(blob))
        if self.memory_bytes + len(blob) <= self.memory_limit:
            entry.blob = blob
            self.memory_bytes += len(blob)
        else:
            entry.path = self._spill_folder() / f"{frame}_{obj}.bin"
            entry.path.write_bytes(blob)
            self.spilled_bytes += len(blob)
        self._entries.setdefault(frame, {})[obj] = entry

    @property
    def spill_folder(self) -> Path | None:
        """The temporary folder holding spilled entries (None until the first spill)."""
        return self._folder

    def provenance(self, frame: int, obj: int) -> Provenance | None:
        """How the entry at (frame, obj) was made, or None if there is none (no decompression)."""
        entry = self._entries.get(frame, {}).get(obj)
        return None if entry is None else entry.provenance

    def get(self, frame: int, obj: int) -> StoredResult | None:
        """The entry at (frame, obj), decompressed, or None."""
        entry = self._entries.get(frame, {}).get(obj)
        if entry is None:
            return None
        blob = entry.blob if entry.blob is not None else entry.path.read_bytes()
        data = np.frombuffer(zlib.decompress(blob), dtype=np.uint8)
        n = self.height * self.width
        soft = data[:n].reshape(self.height, self.width)
        chain = np.unpackbits(data[n:], count=n).reshape(self.height, self.width).astype(bool)
        return StoredResult(soft, chain, entry.provenance)

    def objects_at(self, frame: int) -> list[int]:
        """Ids of the objects with an entry at ``frame``, ascending."""
        return sorted(self._entries.get(frame, {}))

    def frames(self) -> list[int]:
        """Frames with at least one entry, ascending."""
        return sorted(f for f, objs in self._entries.items() if objs)

    def remove_object(self, obj: int) -> None:
        """Forget every entry of object ``obj``."""
        for frame in list(self._entries):
            self._drop(frame, obj)

    def clear(self) -> None:
        """Forget everything (and remove the spill folder)."""
        self._entries.clear()
        self.memory_bytes = self.spilled_bytes = 0
        self.close()

    def close(self) -> None:
        """Remove the spill folder, if any (entries spilled there are lost)."""
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None
            self._folder = None
            for objs in self._entries.values():
                for obj in [o for o, e in objs.items() if e.path is not None]:
                    self.spilled_bytes -= objs.pop(obj).size

    def _drop(self, frame: int, obj: int) -> None:
        entry = self._entries.get(frame, {}).pop(obj, None)
        if entry is None:
            return
        if entry.blob is not None:
            self.memory_bytes -= entry.size
        else:
            entry.path.unlink(missing_ok=True)
            self.spilled_bytes -= entry.size

    def _spill_folder(self) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="ssmvos-results-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._folder), True)
        return self._folder
