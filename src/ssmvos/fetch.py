"""Fetching one file over HTTP(S): streamed, resumable, checked, and put in place atomically.

The file is written to a temporary name beside its destination and renamed into place
only once it is complete (and accepted by an optional ``verify`` callback), so a failed
or interrupted download never leaves a half-written file under the final name.
Every failure a user can meet (offline, unknown host, refused connection, HTTP errors,
time-outs, truncated transfers) becomes one :class:`~ssmvos.errors.SSMVOSError` whose
message names the URL and says what to do.
"""
from __future__ import annotations

import http.client
import os
import re
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import urlparse

from tqdm import tqdm

from .atomic import default_file_mode
from .cpus import human_size
from .errors import SSMVOSError
from .numbers import is_number

try:  # POSIX only; elsewhere concurrent downloads of one file are simply not guarded
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

#: Bytes read from the connection per step.
CHUNK_SIZE = 1 << 20
USER_AGENT = "ssmvos (python urllib)"


#: Address schemes :func:`download` fetches from.
URL_SCHEMES = ("http://", "https://", "file://")


def base_url_from_env(variable: str) -> str | None:
    """The base URL in environment variable ``variable`` (None when unset or empty).

    Raises SSMVOSError naming the variable when it is not an http(s):// or file:// address.
    """
    value = os.environ.get(variable, "").strip()
    if not value:
        return None
    if not value.lower().startswith(URL_SCHEMES):
        raise SSMVOSError(f"{variable}={value!r} is not a URL: it must start with http://, https:// or file:// "
                          f"(or unset it to use the official address)")
    return value


def file_name(url: str) -> str:
    """The last path component of a URL (``.../ssm_davis17.pt?dl=1`` -> ``ssm_davis17.pt``)."""
    return PurePosixPath(urlparse(url).path).name


def mirrored(url: str, variable: str, base_url: str | None = None) -> str:
    """The mirror rule, the same for checkpoints, ImageNet weights and datasets: with a base
    URL (``base_url``, else the environment variable ``variable``) the file is fetched from
    that base + ``url``'s file name; without one, from ``url`` itself."""
    base = base_url or base_url_from_env(variable)
    return f"{base.rstrip('/')}/{file_name(url)}" if base else url


def describe_network_error(exc: BaseException) -> str:
    """A short, one-line description of a network error (URLError, HTTPError, socket errors)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered HTTP {exc.code} {exc.reason}".rstrip()
    inner = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(inner, socket.gaierror):
        return f"the host name could not be resolved ({inner.strerror or inner}); are you offline?"
    if isinstance(inner, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(inner, (TimeoutError, socket.timeout)):
        return "the connection timed out"
    if isinstance(inner, http.client.IncompleteRead):
        return "the connection closed early"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    text = str(inner).strip().splitlines()
    return text[0] if text else type(inner).__name__


def _expected_total(resp: http.client.HTTPResponse, offset: int) -> int | None:
    """Full size of the file from Content-Range (206) or Content-Length (+ offset)."""
    content_range = resp.headers.get("Content-Range", "")
    m = re.fullmatch(r"\s*bytes\s+\d+-\d+/(\d+)\s*", content_range)
    if m:
        return int(m.group(1))
    length = resp.headers.get("Content-Length")
    if length is not None and is_number(length.strip()):
        return offset + int(length)
    return None


def _range_start(resp: http.client.HTTPResponse) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-", resp.headers.get("Content-Range", ""))
    return int(m.group(1)) if m else None


def _open(url: str, offset: int, timeout: float, fail: Callable[[str], SSMVOSError]) -> http.client.HTTPResponse | None:
    """Send the request (with a Range header when ``offset`` > 0).

    Returns None when the server refuses the range (HTTP 416): the caller restarts.
    """
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        request = urllib.request.Request(url, headers=headers)
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return None
        raise fail(describe_network_error(exc)) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise fail(describe_network_error(exc)) from None


def _lock(handle) -> None:
    if fcntl is None:  # pragma: no cover
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SSMVOSError(f"{handle.name} is being written by another download; wait for it to finish") from None


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    progress: bool = True,
    resume: bool = True,
    timeout: float = 60.0,
    verify: Callable[[Path], None] | None = None,
    keep_partial: bool = True,
    hint: str | None = None,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest`` (as a Path).

    * Streams to ``<dest>.part`` beside ``dest`` (with ``resume=False``, to a fresh
      unique temporary name there instead) and shows a tqdm bar on stderr when
      ``progress`` is true and stderr is a terminal.
    * ``resume``: an existing ``<dest>.part`` is continued with an HTTP Range request;
      a server that answers 200 instead of 206 (or 416) gets a fresh start.
    * The size is checked against Content-Length / Content-Range when the server sends
      them; a short transfer is an error.
    * ``verify(temp_path)`` may raise (an SSMVOSError, ideally) to reject the complete
      file; the temporary file is then removed.
    * Only a complete, accepted file is renamed into place (``os.replace``): an existing
      ``dest`` survives any failure untouched.
    * When the transfer fails, the bytes received so far stay in ``<dest>.part`` for a
      later resume if ``resume`` and ``keep_partial`` are true; otherwise (and when
      nothing was received) the temporary file is removed.
    * ``timeout``: seconds to wait for the connection and for each read.
    * ``hint``: what the user can do instead, appended to error messages.

    Raises SSMVOSError (one line naming the URL) for every network or HTTP failure.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SSMVOSError(f"cannot create the folder {dest.parent}: {exc.strerror or exc}") from None
    if hint is None:
        hint = f"check your internet connection and the address, or download the file by hand and save it as {dest}"
    keep = resume and keep_partial

    def fail(reason: str) -> SSMVOSError:
        return SSMVOSError(f"cannot download {url}: {reason}; {hint}")

    try:
        if resume:
            part = dest.with_name(dest.name + ".part")
            handle = open(part, "ab")
        else:
            fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
            os.fchmod(fd, default_file_mode())  # the file it becomes gets open()'s permissions, not 0600
            part, handle = Path(name), os.fdopen(fd, "wb")
    except OSError as exc:
        raise SSMVOSError(f"cannot write in {dest.parent}: {exc.strerror or exc}") from None
    try:
        _lock(handle)
    except BaseException:
        handle.close()  # the temporary file belongs to the other download: leave it
        raise
    try:
        with handle:
            _fetch(url, part, handle, dest.name, resume, progress, timeout, fail, keep)
    except BaseException:
        if not keep or not part.exists() or part.stat().st_size == 0:
            part.unlink(missing_ok=True)
        raise
    try:
        if verify is not None:
            verify(part)
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest


def _fetch(url: str, part: Path, handle, label: str, resume: bool, progress: bool, timeout: float,
           fail: Callable[[str], SSMVOSError], keep: bool) -> None:
    """Stream the body into ``handle`` (opened on ``part``), resuming from its size."""
    offset = part.stat().st_size if resume else 0
    resp = _open(url, offset, timeout, fail)
    if resp is not None and offset and resp.status != 206:
        offset = 0  # the server ignored the range and sends the whole file: start again
    elif resp is not None and offset and _range_start(resp) != offset:
        resp.close()  # a range other than the one asked for
        resp = None
    if resp is None and offset:
        offset = 0
        resp = _open(url, 0, timeout, fail)
    if resp is None:  # pragma: no cover - 416 without a range cannot happen
        raise fail("the server refused the request")
    if offset == 0:
        handle.seek(0)
        handle.truncate()
    total = _expected_total(resp, offset)
    show = progress and sys.stderr.isatty()
    if progress:
        start = f" (resuming after {human_size(offset)})" if offset else ""
        print(f"Downloading {url} ({human_size(total)}){start}", file=sys.stderr, flush=True)
    got = offset
    with resp, tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=label, disable=not show, leave=False) as bar:
        while True:
            try:
                chunk = resp.read1(CHUNK_SIZE)
            except (OSError, http.client.HTTPException) as exc:
                raise _interrupted(fail, describe_network_error(exc), got, total, keep) from None
            if not chunk:
                break
            try:
                handle.write(chunk)
            except OSError as exc:
                raise SSMVOSError(f"cannot write {part}: {exc.strerror or exc}") from None
            got += len(chunk)
            bar.update(len(chunk))
    if total is not None and got != total:
        raise _interrupted(fail, "the connection closed early", got, total, keep)
    try:
        handle.flush()
        os.fsync(handle.fileno())
    except OSError as exc:
        raise SSMVOSError(f"cannot write {part}: {exc.strerror or exc}") from None


def _interrupted(fail: Callable[[str], SSMVOSError], reason: str, got: int, total: int | None, keep: bool) -> SSMVOSError:
    what = f"{reason} after {human_size(got)} of {human_size(total)}"
    if keep:
        what += " (run the command again to resume)"
    return fail(what)


__all__ = ["describe_network_error", "download", "human_size"]
