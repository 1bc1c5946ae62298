"""ssmvos app as an attacker probes it: DNS rebinding (foreign Host), cross-site requests
(foreign Origin, text/plain bodies), frames linked out of --root, the server's own paths in
messages, and inputs that used to end in a 500 (NUL in paths, a huge PNG in a zip, NaN
boxes, no video open, oversized bodies): each is one 4xx with a one-line message."""
from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the app's extra is not installed: pip install -e '.[app]'")

from app_client import DEMO_FRAMES, JSON, RAW, client_for, error_of, make_root, new_session, write_video  # noqa: E402
from stub_network import stub_predictor  # noqa: E402
from ssmvos.app.network import HostRule  # noqa: E402
from ssmvos.app.server import AppConfig, create_app  # noqa: E402


@pytest.fixture()
def root(tmp_path):
    return make_root(tmp_path)


@pytest.fixture()
def client(root, tmp_path):
    app = create_app(stub_predictor()[0], AppConfig(root=root, max_upload_mb=1, state_dir=tmp_path / "state",
                                                    port=7860))
    with client_for(app) as c:
        c.app_root = root
        yield c


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header announces width x height (its data is one empty row: never decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_only_the_servers_own_host_is_answered(client):
    assert client.get("/api/server").status_code == 200
    for host in ("localhost:7860", "127.0.0.1:7860", "[::1]:7860"):
        assert client.get("/api/server", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:7860", "127.0.0.1:8000", "localhost.evil.example:7860", ""):
        assert "does not answer for the host" in error_of(client.get("/api/browse", headers={"Host": host}), 403)
    rule = HostRule("0.0.0.0", 7860, extra=("proxy.lan",))  # every interface: IP literals, not rebindable names
    assert rule.allows("192.168.1.5:7860") and rule.allows("proxy.lan:7860") and rule.allows("[fe80::1]:7860")
    assert not rule.allows("evil.example:7860") and not rule.allows("192.168.1.5:1")
    exact = HostRule("10.0.0.2", 80)
    assert exact.allows("10.0.0.2") and exact.allows("10.0.0.2:80") and not exact.allows("localhost")


def test_cross_site_requests_are_refused(client):
    evil = {"Origin": "http://evil.example"}
    assert "refused" in error_of(client.post("/api/sessions", json={}, headers=evil), 403)
    sid = new_session(client)
    assert "refused" in error_of(client.post(f"/api/sessions/{sid}/demo", json={}, headers=evil), 403)
    assert "refused" in error_of(client.delete(f"/api/sessions/{sid}", headers=evil), 403)
    # what a page can send cross-site without a preflight: text/plain, forms, no type at all
    for kind in ("text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": kind} if kind else {}
        for path in ("/api/sessions", f"/api/sessions/{sid}/open", f"/api/sessions/{sid}/demo"):
            message = error_of(client.post(path, content=b'{"path": "clips/frames"}', headers=headers), 415)
            assert "application/json" in message
    assert client.get(f"/api/sessions/{sid}").json()["video"] is None  # nothing was opened
    tiny = (client.app_root / "clips" / "tiny.avi").read_bytes()  # an upload in its own type is fine
    response = client.post(f"/api/sessions/{sid}/upload", params={"name": "t.avi"}, content=tiny,
                           headers={"Content-Type": "video/x-msvideo"})
    assert response.json()["video"]["frames"] == 3
    same = {"Origin": "http://127.0.0.1:7860"}
    assert client.post(f"/api/sessions/{sid}/open", json={"path": "clips/frames"}, headers=same).status_code == 200
    # a browser that marks a request cross-site is believed, with or without an Origin
    for marked in ({"Sec-Fetch-Site": "cross-site"}, {**same, "Sec-Fetch-Site": "cross-site"}):
        assert "another site" in error_of(client.post(f"/api/sessions/{sid}/demo", json={}, headers=marked), 403)
    assert client.post(f"/api/sessions/{sid}/demo", json={}, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_a_frame_linked_out_of_root_is_not_served(client, root, tmp_path):
    folder = root / "clips" / "mixed"
    folder.mkdir()
    (folder / "00000.jpg").write_bytes((DEMO_FRAMES / "00000.jpg").read_bytes())
    os.symlink(tmp_path / "secret" / "a.jpg", folder / "00001.jpg")
    sid = new_session(client)
    message = error_of(client.post(f"/api/sessions/{sid}/open", json={"path": "clips/mixed"}), 400)
    assert "00001.jpg is a link to a file outside" in message
    (folder / "00001.jpg").unlink()
    (folder / "00002.png").write_bytes(png_header(13400, 13400))  # and each frame's size, from its header
    assert "13400x13400" in error_of(client.post(f"/api/sessions/{sid}/open", json={"path": "clips/mixed"}), 400)
    assert client.get(f"/api/sessions/{sid}").json()["video"] is None
    (folder / "00002.png").unlink()
    os.symlink(tmp_path / "secret" / "a.jpg", folder / ".hidden.jpg")  # hidden: not a frame, never read or served
    video = client.post(f"/api/sessions/{sid}/open", json={"path": "clips/mixed"}).json()["video"]
    assert video["names"] == ["00000"]


def test_messages_do_not_reveal_server_paths(client, tmp_path):
    sid = new_session(client)
    url = f"/api/sessions/{sid}/upload"
    for name, content in (("fake.mp4", b"not a video"), ("bad.zip", b"PK\x03\x04junk")):
        message = error_of(client.post(url, params={"name": name}, content=content, headers=RAW), 400)
        assert str(tmp_path) not in message and "/tmp" not in message, message


def test_inputs_that_were_500s_are_one_line_4xx(client, tmp_path):
    sid = new_session(client)
    base = f"/api/sessions/{sid}"
    # no video open: saving a mask, importing one, GrabCut, every export
    mask = bytes(480 * 854)
    assert "no video is open" in error_of(client.put(f"{base}/frames/0/annotation", content=mask, headers=RAW), 400)
    assert "no video is open" in error_of(client.post(f"{base}/frames/0/annotation/import", content=b"x",
                                                      headers=RAW), 400)
    for export in ("masks.zip", "overlay.mp4", "masks.coco.json", "dataset.zip", "session.json"):
        assert "no video is open" in error_of(client.get(f"{base}/export/{export}"), 400), export
    # a NUL character in a path
    assert "NUL" in error_of(client.get("/api/browse", params={"path": "clips\x00/x"}), 400)
    assert "NUL" in error_of(client.post(f"{base}/open", json={"path": "clips/frames\x00"}), 400)
    # a 13400x13400 PNG in a zip: refused from its header, never decoded
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("00000.png", png_header(13400, 13400))
    message = error_of(client.post(f"{base}/upload", params={"name": "f.zip"}, content=archive.getvalue(),
                                   headers=RAW), 400)
    assert "13400x13400" in message and "40 MP" in message
    video = write_video(tmp_path / "big.avi", 1, size=(7000, 6000))  # 42 MP, refused from the container's header
    message = error_of(client.post(f"{base}/upload", params={"name": "big.avi"}, content=video.read_bytes(),
                                   headers=RAW), 400)
    assert "big.avi: its frames are 7000x6000" in message
    # NaN, infinities and huge numbers in a GrabCut box
    client.post(f"{base}/demo", json={})
    for body in (b'{"frame": 0, "box": [NaN, 0, 100, 100]}', b'{"frame": 0, "box": [0, 0, 1e999, 100]}',
                 b'{"frame": 1e999, "box": [0, 0, 100, 100]}', b'{"frame": 0, "box": [0, 0, Infinity, 100]}'):
        message = error_of(client.post(f"{base}/grabcut", content=body, headers=JSON), 400)
        assert "grabcut" in message or "not JSON" in message, body
    from ssmvos import SSMVOSError
    from ssmvos.inference.prompts import grabcut_mask

    with pytest.raises(SSMVOSError, match="finite numbers"):  # the tool itself, called from Python
        grabcut_mask(np.zeros((64, 64, 3), np.uint8), (float("nan"), 0, 40, 40))


def test_bodies_are_limited_on_every_route_that_reads_one(client):
    sid = new_session(client)
    base = f"/api/sessions/{sid}"
    client.post(f"{base}/demo", json={})
    big = bytes(64 << 20)  # a 64 MiB 'mask' for a 854x480 frame
    assert "more than the 409920" in error_of(client.put(f"{base}/frames/0/annotation", content=big, headers=RAW), 413)
    assert "more than" in error_of(client.post(f"{base}/grabcut", content=b" " * (2 << 20), headers=JSON), 413)
    assert "more than" in error_of(client.post(f"{base}/session", content=b" " * (2 << 20), headers=JSON), 413)
    assert "more than" in error_of(client.post(f"{base}/frames/0/annotation/import", content=big[:2 << 20],
                                               headers=RAW), 413)


def test_names_the_system_cannot_resolve_and_deep_json_are_one_line_4xx(client, root):
    """What the helpers' probes found ending in a 500: a path component longer than the
    system allows, a loop of links under --root (which must not hide the rest of a listing),
    a JSON body nested 100k deep, an imported mask whose header announces a huge image."""
    sid = new_session(client)
    base = f"/api/sessions/{sid}"
    long = "a" * 300
    assert "cannot be opened" in error_of(client.get("/api/browse", params={"path": long}), 400)
    assert "cannot be opened" in error_of(client.post(f"{base}/open", json={"path": f"clips/{long}"}), 400)
    os.symlink(root / "clips" / "loop", root / "clips" / "loop")
    listing = client.get("/api/browse", params={"path": "clips"}).json()
    assert [e["name"] for e in listing["entries"]] == ["frames", "tiny.avi"]  # the loop is left out, not fatal
    assert "cannot be opened" in error_of(client.post(f"{base}/open", json={"path": "clips/loop"}), 400)
    deep = b"[" * 100_000 + b"]" * 100_000
    assert "nests too deeply" in error_of(client.post("/api/sessions", content=deep, headers=JSON), 400)
    client.post(f"{base}/open", json={"path": "clips/tiny.avi"})
    message = error_of(client.post(f"{base}/frames/0/annotation/import", content=png_header(11585, 11585),
                                   headers=RAW), 400)
    assert "is 11585x11585, but the video is 64x48" in message


def test_a_relative_root_is_not_replaced_inside_words(tmp_path, monkeypatch):
    """Messages hide the server's folders; a --root given as a short relative name must not
    be replaced wherever that word occurs ('--root folder' stays readable)."""
    make_root(tmp_path)
    monkeypatch.chdir(tmp_path)
    app = create_app(stub_predictor()[0], AppConfig(root=Path("root"), state_dir=tmp_path / "state", port=7860))
    with client_for(app) as c:
        sid = new_session(c)
        message = error_of(c.post(f"/api/sessions/{sid}/open", json={"path": "../secret"}), 400)
        assert message == "'../secret' is outside the server's --root folder"
