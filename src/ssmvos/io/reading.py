"""Reading a whole file a user named, with one clear line for each way that fails."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import SSMVOSError


def read_user_file(path: str | os.PathLike, what: str, expected: str) -> bytes:
    """The bytes of ``path``; SSMVOSError naming ``what`` (e.g. 'mask', 'session file') and
    the path if it is missing, a folder (not ``expected``, e.g. 'a PNG file') or unreadable."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SSMVOSError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise SSMVOSError(f"{what} {path} is a folder, not {expected}") from None
    except OSError as exc:
        raise SSMVOSError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
