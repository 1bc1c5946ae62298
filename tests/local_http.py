"""A small HTTP server on 127.0.0.1 for download tests (no internet needed).

It serves in-memory bytes or files on disk, honours ``Range: bytes=N-`` (206 with
Content-Range, 416 past the end), records every request's headers, and can be told to
misbehave for the next request(s) of a path: answer a status (404, 500), send only part
of the body while announcing the full Content-Length (a truncated transfer), stall,
leave out Content-Length, or ignore the Range header. It runs in a daemon thread and
shuts itself down after ``lifetime`` seconds at the latest.
"""
from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Fault:
    kind: str  # "status", "truncate", "stall", "no-length", "ignore-range"
    status: int = 500
    keep: int = 0  # body bytes sent before closing ("truncate") or stalling ("stall")
    seconds: float = 2.0  # how long "stall" waits (bounded)
    times: int | None = 1  # None: every request
    send_length: bool = True  # False: no Content-Length header (also what "no-length" does)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client that hung up is no news
        pass


class LocalServer:
    """``with LocalServer() as server: server.add("a.bin", data); server.url("a.bin")``."""

    def __init__(self, lifetime: float = 120.0):
        self.files: dict[str, bytes | Path] = {}
        self.faults: dict[str, list[Fault]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self._stopped = False

    # -- set-up -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def add(self, name: str, data: bytes | Path) -> str:
        """Serve ``data`` (bytes, or a file streamed from disk) at ``/name``; returns its URL."""
        self.files[name] = data
        return self.url(name)

    def fault(self, name: str, kind: str, **params) -> None:
        """Misbehave on the next request(s) of ``/name`` (see :class:`Fault`)."""
        self.faults.setdefault(name, []).append(Fault(kind, **params))

    def requests_for(self, name: str) -> list[dict[str, str]]:
        return [headers for path, headers in self.requests if path == name]

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> "LocalServer":
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._timer.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- used by the handler ------------------------------------------------------------
    def _take_fault(self, name: str) -> Fault | None:
        with self._lock:
            queue = self.faults.get(name) or []
            if not queue:
                return None
            fault = queue[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    queue.pop(0)
            return fault


def refused_url(name: str = "file.bin") -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


def _make_handler(server: LocalServer):
    class Handler(BaseHTTPRequestHandler):
        timeout = 20  # a stuck client cannot hold a thread forever

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            name = self.path.lstrip("/").split("?", 1)[0]
            with server._lock:
                server.requests.append((name, dict(self.headers.items())))
            fault = server._take_fault(name)
            data = server.files.get(name)
            if fault is not None and fault.kind == "status":
                return self._status(fault.status)
            if data is None:
                return self._status(404)
            size = len(data) if isinstance(data, bytes) else data.stat().st_size
            start = 0
            m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "").strip())
            use_range = m is not None and not (fault is not None and fault.kind == "ignore-range")
            if use_range:
                start = int(m.group(1))
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            else:
                self.send_response(200)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            if fault is None or (fault.send_length and fault.kind != "no-length"):
                self.send_header("Content-Length", str(size - start))
            self.end_headers()
            limit = size - start
            if fault is not None and fault.kind in ("truncate", "stall"):
                limit = min(limit, fault.keep)
            self._send_body(data, start, limit)
            if fault is not None and fault.kind == "stall":
                time.sleep(min(fault.seconds, 10.0))
            if fault is not None and fault.kind in ("truncate", "stall"):
                self.close_connection = True

        def _send_body(self, data: bytes | Path, start: int, limit: int) -> None:
            try:
                if isinstance(data, bytes):
                    self.wfile.write(data[start:start + limit])
                else:
                    with open(data, "rb") as f:
                        f.seek(start)
                        remaining = limit
                        while remaining > 0:
                            chunk = f.read(min(remaining, 1 << 20))
                            if not chunk:
                                break
                            self.wfile.write(chunk)
                            remaining -= len(chunk)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _status(self, code: int) -> None:
            body = f"<html><body>error {code}</body></html>".encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


__all__ = ["LocalServer", "refused_url"]
