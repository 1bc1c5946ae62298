"""Writing files: the one helper every output of ssmvos goes through.

A file is written to a temporary file beside it (``.<name>.<8 random chars><suffix>``) and
renamed onto its name only once complete, so a process killed mid-write leaves the previous
file (or none), never a half-written one. Any ``OSError`` on the way (no space, read-only
file system, a directory in the way, no permission) becomes one :class:`SSMVOSError` naming
the file and the reason; the temporary file is removed and files already complete stay as
they are. Files get the permissions a plain ``open()`` would give (0666 minus the umask),
not ``mkstemp``'s 0600.

Temporary files left by a killed process are skipped by readers (:func:`is_temporary`) and
removed by the next writer of their folder (:func:`remove_temporaries`).
"""
from __future__ import annotations

import errno
import functools
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import SSMVOSError

#: What a user can do about an errno, in words (others: the system's own text).
_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EISDIR: "it is a directory",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied (operation not permitted)",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EFBIG: "file too large (over the file size limit, see `ulimit -f`)",
    errno.ENAMETOOLONG: "file name too long",
    errno.ENOENT: "its folder does not exist",
}

#: Names of the temporary files this module creates (``tempfile``'s 8 random characters).
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}(?P<suffix>\.[A-Za-z0-9]+)")


def os_error_reason(exc: OSError) -> str:
    """A short reason for ``exc`` in words: 'no space left on the device', 'read-only file system', ..."""
    return _REASONS.get(exc.errno) or exc.strerror or str(exc) or type(exc).__name__


def write_error(path: str | os.PathLike, exc: OSError) -> SSMVOSError:
    """The one-line error for a failed write of ``path``."""
    return SSMVOSError(f"cannot write {path}: {os_error_reason(exc)}")


@contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn an ``OSError`` raised in the block into the one-line error naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise write_error(path, exc) from None


def make_dirs(folder: str | os.PathLike) -> Path:
    """Create ``folder`` and its parents (if missing); a failure is one line naming it."""
    folder = Path(folder)
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    try:  # Linux: read without changing it (os.umask would change it for every thread)
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
        return umask


def default_file_mode() -> int:
    """0666 minus this process's umask: the mode ``open()`` gives a new file."""
    return 0o666 & ~_umask()


def default_dir_mode() -> int:
    """0777 minus this process's umask: the mode ``mkdir()`` gives a new folder."""
    return 0o777 & ~_umask()


class PendingFile:
    """A temporary file beside ``path`` (its folder is created if needed), for writers that
    live longer than one block: ``commit()`` renames it onto ``path``, ``discard()``
    removes it. Failures raise the one-line :func:`write_error`."""

    def __init__(self, path: str | os.PathLike, suffix: str = ".tmp"):
        self.path = Path(path)
        make_dirs(self.path.parent)
        with writing(self.path):
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=suffix, dir=self.path.parent)
        self.tmp = Path(tmp)
        try:
            os.fchmod(fd, default_file_mode())
        except OSError:  # some file systems have no modes; the file is still usable
            pass
        finally:
            os.close(fd)

    def commit(self) -> Path:
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise write_error(self.path, exc) from None
        return self.path

    def discard(self) -> None:
        try:
            self.tmp.unlink(missing_ok=True)
        except OSError:
            pass  # its folder became unreadable meanwhile: nothing more to do


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder (created if needed); when the block
    succeeds it is renamed onto ``path``, otherwise removed. An ``OSError`` in the block
    becomes the one-line :func:`write_error` naming ``path``."""
    pending = PendingFile(path, suffix)
    try:
        yield pending.tmp
    except OSError as exc:
        pending.discard()
        raise write_error(path, exc) from None
    except BaseException:
        pending.discard()
        raise
    pending.commit()


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int = 4) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent))


def is_temporary(name: str) -> bool:
    """Whether a file name is one of this module's temporary files (e.g. ``.00000.png.k3j_x9a2.png``)."""
    return _TEMPORARY.fullmatch(name) is not None


def remove_temporaries(folder: str | os.PathLike) -> int:
    """Remove the temporary files a killed writer left in ``folder``; returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0  # absent or unreadable: the write that follows reports it
    for entry in entries:
        if is_temporary(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")  # pragma: no cover - a relative path's root is "."


def _probe(folder: Path, target: Path) -> None:
    """Prove a file can be created in the existing ``folder`` (``target`` names the output)."""
    if not folder.is_dir():
        raise SSMVOSError(f"cannot write {target}: {folder} is a file, not a folder")
    with writing(target):
        with tempfile.TemporaryFile(dir=folder):
            pass


def check_output_file(path: str | os.PathLike, what: str, folder_must_exist: bool = False) -> Path:
    """Before any work: raise SSMVOSError unless the file ``path`` (``what``: e.g. '--zip') can
    be written: not a directory, and its folder (or the nearest one that exists, unless
    ``folder_must_exist``) writable. Creates nothing."""
    path = Path(path)
    if path.is_dir():
        raise SSMVOSError(f"{what} {path} is a directory, not a file")
    folder = path.parent if str(path.parent) else Path(".")
    if folder_must_exist and not folder.is_dir():
        raise SSMVOSError(f"cannot write {what} {path}: folder {folder} does not exist")
    _probe(_nearest_existing(folder), path)
    return path


def check_output_folder(path: str | os.PathLike, what: str) -> Path:
    """Before any work: raise SSMVOSError unless the folder ``path`` can be written (or created).
    Creates nothing."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise SSMVOSError(f"{what} {path} exists and is not a folder")
    _probe(_nearest_existing(path), path)
    return path


def check_not_input(output: str | os.PathLike, what: str, inputs: dict[str, object]) -> None:
    """Before any work: refuse an output path that is one of the run's ``inputs`` (a
    description -> a path; other values are skipped), links resolved: writing it would destroy
    what the run reads (an overlay over the video, masks over the frame folder's frames)."""
    target = Path(output).resolve()
    for name, path in inputs.items():
        if isinstance(path, (str, os.PathLike)) and Path(path).resolve() == target:
            raise SSMVOSError(f"{what} {output} is {name}: writing there would destroy it; choose another path")


def unsafe_folder_name(name: str) -> str | None:
    """Why ``name`` (a video's name, which outputs are written under) cannot be one folder
    inside an output folder, or None when it can: empty, a path (/, \\, NUL, . or ..),
    hidden (a leading dot is also the form of this module's temporaries), over 200 bytes."""
    if not name.strip():
        return "an empty name"
    if any(c in name for c in "/\\\0") or name in (".", ".."):
        return f"the name {name!r} is not a plain folder name (no /, \\ or ..)"
    if name.startswith("."):
        return f"the name {name!r} starts with a dot (hidden, and the form of temporary folders)"
    if len(name.encode()) > 200:
        return f"the name {name[:20]!r}... is too long (over 200 bytes)"
    return None
