"""Atomic file writing: write to a temporary file beside the target, then rename it into place.

A process killed mid-write leaves the previous file (or none), never a half-written one.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class PendingFile:
    """A temporary file beside ``path`` (its folder is created if needed), for writers that
    live longer than one block: ``commit()`` renames it onto ``path``, ``discard()``
    removes it."""

    def __init__(self, path: str | os.PathLike, suffix: str = ".tmp"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=suffix, dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)

    def commit(self) -> Path:
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder (created if needed); when the block
    succeeds it is renamed onto ``path``, otherwise removed."""
    pending = PendingFile(path, suffix)
    try:
        yield pending.tmp
        pending.commit()
    except BaseException:
        pending.discard()
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int = 4) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent))
