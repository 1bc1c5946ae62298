"""Run many ``ssmvos`` command lines in ONE Python process and report each one's exit status,
stdout and stderr (captured at the file-descriptor level, so C libraries' messages count).

    python tests/cli_batch.py CASES.json RESULTS.json

CASES.json is a list of ``{"argv": [...], "env": {...}, "fault": {...} | null}``. Importing
torch once for the whole batch keeps dozens of bad-input cases cheap. ``main()`` is what
``python -m ssmvos`` runs; an exception escaping it is printed as Python would print it
(a "Traceback"), so a case behaves as it would in its own process.

Faults (file-system failures a user meets, simulated in this process; ``under`` is a folder):

* ``{"kind": "enospc", "under": DIR, "after": N}``: the first N files opened for writing under
  DIR are written normally; the next one fails part-way with ENOSPC (disk full), and so does
  every one after it.
* ``{"kind": "erofs", "under": DIR}``: creating or writing anything under DIR fails with EROFS
  (read-only file system), as a read-only mount does (also for root, whom permission bits
  would not stop).
"""
from __future__ import annotations

import builtins
import errno
import io
import json
import os
import sys
import tempfile
import traceback
from contextlib import contextmanager
from pathlib import Path


def _under(path, folder: str) -> bool:
    try:
        path = os.path.abspath(os.fspath(path))
    except TypeError:  # a file descriptor, not a path
        return False
    return path == folder or path.startswith(folder.rstrip("/") + "/")


class _FailingFile:
    """A writable file that accepts ``budget`` bytes, then fails every write with ENOSPC."""

    def __init__(self, file, budget: int):
        self._file, self._budget = file, budget

    def write(self, data) -> int:
        if len(data) > self._budget:
            self._file.write(data[: self._budget])  # what a full disk leaves: a partial write
            self._budget = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), getattr(self._file, "name", None))
        self._budget -= len(data)
        return self._file.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()

    def __getattr__(self, name):
        return getattr(self._file, name)


@contextmanager
def fault(spec: dict | None):
    """Apply a fault (see the module doc) for the duration of the block."""
    if not spec:
        yield
        return
    folder = os.path.abspath(spec["under"])
    real_open, real_os_open, real_mkdir, real_replace = builtins.open, os.open, os.mkdir, os.replace
    opened = {"n": 0}

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    def writes(mode: str) -> bool:
        return any(c in mode for c in "wax+")

    def fake_open(file, mode="r", *args, **kwargs):
        if not (writes(mode) and _under(file, folder)):
            return real_open(file, mode, *args, **kwargs)
        if spec["kind"] == "erofs":
            refuse(file)
        opened["n"] += 1
        handle = real_open(file, mode, *args, **kwargs)
        return handle if opened["n"] <= spec["after"] else _FailingFile(handle, 100)

    def fake_os_open(path, flags, *args, **kwargs):
        if spec["kind"] == "erofs" and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _under(path, folder):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if spec["kind"] == "erofs" and _under(path, folder):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def fake_replace(src, dst, *args, **kwargs):
        if spec["kind"] == "erofs" and _under(dst, folder):
            refuse(dst)
        return real_replace(src, dst, *args, **kwargs)

    builtins.open = io.open = fake_open
    os.open, os.mkdir, os.replace = fake_os_open, fake_mkdir, fake_replace
    try:
        yield
    finally:
        builtins.open = io.open = real_open
        os.open, os.mkdir, os.replace = real_os_open, real_mkdir, real_replace


@contextmanager
def captured_fds():
    """Send file descriptors 1 and 2 to temporary files; yields a dict filled with their text."""
    out: dict[str, str] = {}
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    files = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    os.dup2(files[0].fileno(), 1)
    os.dup2(files[1].fileno(), 2)
    try:
        yield out
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        for key, f in zip(("stdout", "stderr"), files):
            f.seek(0)
            out[key] = f.read().decode("utf-8", "replace")
            f.close()


def run_case(case: dict) -> dict:
    """One command line as ``python -m ssmvos`` would run it: its status, stdout and stderr."""
    from ssmvos.cli import main

    saved_env = {key: os.environ.get(key) for key in case.get("env", {})}
    os.environ.update(case.get("env", {}))
    cwd = os.getcwd()
    try:
        with captured_fds() as out:
            try:
                with fault(case.get("fault")):
                    status = main([str(a) for a in case["argv"]])
            except SystemExit as exc:  # argparse
                status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # what the interpreter would print for an uncaught exception
                traceback.print_exc()
                status = 1
    finally:
        os.chdir(cwd)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {"status": status, **out}


if __name__ == "__main__":
    cases = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps([run_case(case) for case in cases]))
