"""Helpers for the app's server tests: a TestClient on the address the app answers for, the
headers state-changing requests carry, a small --root folder, one-line error checks."""
from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np

from ssmvos.assets import demo_clip

DEMO_FRAMES = demo_clip()[0]
BASE = "http://127.0.0.1:7860"  # the Host the app answers for (any other is refused)
RAW = {"Content-Type": "application/octet-stream"}
JSON = {"Content-Type": "application/json"}


def client_for(app):
    """A TestClient sending ``Host: 127.0.0.1:7860``; use it as a context manager."""
    from starlette.testclient import TestClient

    return TestClient(app, base_url=BASE, raise_server_exceptions=False)


def write_video(path: Path, frames: int, size: tuple[int, int] = (64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    for k in range(frames):
        writer.write(np.full((size[1], size[0], 3), 40 * k, np.uint8))
    writer.release()
    return path


def make_root(base: Path, frames: int = 3) -> Path:
    """``base/root`` with ``clips/frames`` (the demo's first frames), ``clips/tiny.avi``
    (64x48) and ``link-out`` (a symbolic link to a folder outside it, ``base/secret``)."""
    root = base / "root"
    (root / "clips" / "frames").mkdir(parents=True)
    for frame in sorted(DEMO_FRAMES.glob("*.jpg"))[:frames]:
        (root / "clips" / "frames" / frame.name).write_bytes(frame.read_bytes())
    write_video(root / "clips" / "tiny.avi", 3)
    outside = base / "secret"
    outside.mkdir()
    (outside / "a.jpg").write_bytes((DEMO_FRAMES / "00000.jpg").read_bytes())
    os.symlink(outside, root / "link-out")
    return root


def new_session(client) -> str:
    response = client.post("/api/sessions", json={})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def error_of(response, status: int) -> str:
    """The one-line error of a response with ``status``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


def wait_job(client, sid: str, timeout: float = 120) -> dict:
    """The session's info once its propagation has ended."""
    deadline = time.monotonic() + timeout
    while True:
        info = client.get(f"/api/sessions/{sid}").json()
        if info["job"] and info["job"]["state"] != "running":
            return info
        assert time.monotonic() < deadline, "the propagation did not end"
        time.sleep(0.05)
