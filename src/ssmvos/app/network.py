"""Who may talk to ``ssmvos app``, and how much they may send.

* **Host** (every request): only the address the server listens on — ``localhost``,
  ``127.0.0.1`` or ``[::1]`` for a loopback ``--host``, or the exact ``--host`` — with its
  port. A page on another domain that rebinds its DNS name to 127.0.0.1 sends its own name
  as Host and is refused (403). A server listening on every interface (0.0.0.0, ::) also
  takes IP literals and this machine's host name: a rebinding attack needs a domain name.
* **State-changing requests** (POST, PUT, PATCH, DELETE) must carry an ``Origin``, when
  there is one, equal to the Host they were sent to, and none marked ``Sec-Fetch-Site:
  cross-site`` by the browser (403); POST, PUT and PATCH also a
  ``Content-Type`` that no cross-site form or simple fetch can send without a CORS
  preflight, which this server never grants: ``application/json``, or for raw bytes
  ``application/octet-stream`` or their own type (``video/mp4``, ``image/png``...) — not
  ``text/*``, forms, or none at all (415). A cross-site DELETE is always preflighted.
* **Body sizes**: :func:`read_body` refuses a declared or streamed body over its limit
  (413) before it is read whole.
* **Messages**: :func:`public_message` replaces the server's own folders in error texts.
"""
from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterable
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..numbers import is_number

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# what a foreign page can send without a CORS preflight (and text of any kind): refused
SIMPLE_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "")


def _host_name(host: str) -> str:
    """``host`` as it appears in a Host header (IPv6 in brackets), lower case."""
    host = host.strip().lower()
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


class HostRule:
    """The Host header values a server listening on ``host``:``port`` answers.

    ``port`` None accepts any port (for an app mounted without a known port, e.g. in tests).
    ``extra``: more names to accept (e.g. a reverse proxy's).
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, extra: Iterable[str] = ()):
        self.port = port
        self.any_ip = host.strip() in WILDCARDS
        names = {_host_name(host), *(_host_name(n) for n in extra)}
        if self.any_ip or self._loopback(host):
            names.update(LOOPBACK_NAMES)
        if self.any_ip:
            for name in (socket.gethostname(), socket.getfqdn()):
                if name:
                    names.add(name.lower())
        names.discard("[]")
        names.discard("")
        self.names = frozenset(names)

    @staticmethod
    def _loopback(host: str) -> bool:
        try:
            return ipaddress.ip_address(host.strip("[]")).is_loopback
        except ValueError:
            return host.strip().lower() == "localhost"

    def allows(self, header: str | None) -> bool:
        """Whether a Host header value (``name[:port]``) is this server's address."""
        if not header:
            return False
        header = header.strip().lower()
        if header.startswith("["):
            name, _, rest = header.partition("]")
            name += "]"
            port = rest[1:] if rest.startswith(":") else None
        else:
            name, sep, port = header.rpartition(":")
            if not sep:
                name, port = header, None
        if port is not None and not is_number(port):
            return False
        if self.port is not None and (port or "80") != str(self.port):
            return False
        return name in self.names or (self.any_ip and _is_ip_literal(name))


def _json_error(status: int, message: str) -> tuple[dict, bytes]:
    body = json.dumps({"error": message}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    return start, body


class GuardMiddleware:
    """ASGI middleware applying the Host, Origin and Content-Type rules of this module."""

    def __init__(self, app, hosts: HostRule):
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        problem = self.check(scope.get("method", "GET").upper(), headers)
        if problem is None:
            return await self.app(scope, receive, send)
        start, body = _json_error(*problem)
        await send(start)
        await send({"type": "http.response.body", "body": body})

    def check(self, method: str, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, message) when a request breaks a rule; None when it may go on."""
        host = headers.get("host")
        if not self.hosts.allows(host):
            return 403, (f"this server does not answer for the host {host!r}: open it as "
                         "http://localhost:PORT/ (or the exact --host it was started with)")
        if method not in STATE_CHANGING:
            return None
        origin = headers.get("origin")
        if origin is not None:
            scheme, sep, rest = origin.partition("://")
            if not sep or scheme not in ("http", "https") or rest.rstrip("/").lower() != host.strip().lower():
                return 403, f"requests from the page at {origin!r} are refused: use the app's own page"
        if headers.get("sec-fetch-site", "").strip().lower() == "cross-site":  # a browser's word, Origin or not
            return 403, "requests from another site are refused: use the app's own page"
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        simple = not media or media in SIMPLE_TYPES or media.startswith("text/")
        if method != "DELETE" and simple:  # a cross-site DELETE is always preflighted
            return 415, (f"{method} requests must be sent as application/json (raw bytes: application/octet-stream "
                         f"or their own type), not {media or 'without a Content-Type'}")
        return None


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The request's body, refused with 413 as soon as its declared length or the bytes
    received pass ``limit`` (nothing larger is held in memory)."""
    declared = request.headers.get("content-length")
    if declared is not None and is_number(declared.strip()) and int(declared) > limit:
        raise HTTPException(413, f"{what} is {int(declared)} bytes, more than the {limit} accepted")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"{what} is more than the {limit} bytes accepted")
        chunks.append(chunk)
    return b"".join(chunks)


def public_message(message: str, folders: dict[Path, str]) -> str:
    """``message`` with each of the server's own ``folders`` (resolved or as given) replaced by
    its public name (e.g. the state folder by ``<session>``), longest first; a relative folder only
    as resolved (its bare name could be any word of the message)."""
    pairs = []
    for folder, name in folders.items():
        # a relative folder only as resolved: 'root' as given would replace that word anywhere
        for form in {str(folder), str(folder.resolve())} if folder.is_absolute() else {str(folder.resolve())}:
            if len(form) > 1:
                pairs.append((form, name))
    for form, name in sorted(pairs, key=lambda p: -len(p[0])):
        message = message.replace(form, name)
    return message
