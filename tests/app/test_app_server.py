"""ssmvos app, server side (no browser): sessions are isolated, server paths stay inside --root,
uploads are limited and checked, bad requests get one-line JSON errors, never a traceback."""
from __future__ import annotations

import io
import json
import time
import zipfile

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the app's extra is not installed: pip install -e '.[app]'")
from starlette.testclient import TestClient  # noqa: E402

from ssmvos.app.server import AppConfig, create_app  # noqa: E402
from ssmvos.assets import demo_clip  # noqa: E402
from ssmvos.inference.predictor import VideoPredictor  # noqa: E402
from app_client import BASE, DEMO_FRAMES, RAW, error_of, make_root, new_session as session, write_video  # noqa: E402


@pytest.fixture(scope="module")
def predictor(model):
    return VideoPredictor(model, 224, device="cpu")


@pytest.fixture()
def root(tmp_path):
    """A --root folder with a frame folder, a video and a symbolic link that leads out of it."""
    return make_root(tmp_path)


@pytest.fixture()
def client(predictor, root, tmp_path):
    app = create_app(predictor, AppConfig(root=root, max_upload_mb=1, workdir=tmp_path / "work"))
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as c:
        yield c








def test_sessions_are_isolated(client):
    a, b = session(client), session(client)
    assert a != b and len(a) >= 20
    assert client.post(f"/api/sessions/{a}/demo", json={}).json()["video"]["frames"] == 30
    assert client.get(f"/api/sessions/{b}").json()["video"] is None  # b sees nothing of a
    mask = np.zeros((480, 854), np.uint8)
    mask[100:200, 300:400] = 2
    assert client.put(f"/api/sessions/{a}/frames/5/annotation", content=mask.tobytes(), headers=RAW).status_code == 200
    assert client.get(f"/api/sessions/{a}/frames/5/annotation").content == mask.tobytes()
    assert client.get(f"/api/sessions/{a}").json()["video"]["objects"] == [2]
    # b cannot read or write a's frames: it has no video, and ids are not guessable paths
    assert "no video is open" in error_of(client.get(f"/api/sessions/{b}/frames/5/annotation"), 400)
    assert "unknown session" in error_of(client.get("/api/sessions/not-a-session/frames/5.jpg"), 404)
    assert client.delete(f"/api/sessions/{a}").json() == {"deleted": True}
    assert "unknown session" in error_of(client.get(f"/api/sessions/{a}"), 404)


def test_server_paths_stay_inside_root(client, root):
    listing = client.get("/api/browse").json()
    names = {e["name"]: e["kind"] for e in listing["entries"]}
    assert names == {"clips": "folder"}  # the link that leads out is not listed
    inside = {e["name"]: e for e in client.get("/api/browse", params={"path": "clips"}).json()["entries"]}
    assert inside["frames"]["kind"] == "frames" and inside["frames"]["frames"] == 3
    assert inside["tiny.avi"]["kind"] == "video"
    sid = session(client)
    assert client.post(f"/api/sessions/{sid}/open", json={"path": "clips/frames"}).json()["video"]["frames"] == 3
    assert client.post(f"/api/sessions/{sid}/open", json={"path": "clips/tiny.avi"}).json()["video"]["frames"] == 3
    for bad in ("../secret", "clips/../../secret", "link-out", "link-out/a.jpg", str(root.parent / "secret"), "/etc"):
        message = error_of(client.post(f"/api/sessions/{sid}/open", json={"path": bad}), 400)
        assert "outside the server's --root" in message or "relative to the server's --root" in message, bad
        error_of(client.get("/api/browse", params={"path": bad}), 400)
    assert "neither a frame folder nor a video" in error_of(
        client.post(f"/api/sessions/{sid}/open", json={"path": "clips/frames/00000.jpg"}), 400)


def test_without_root_only_uploads(predictor, tmp_path):
    with TestClient(create_app(predictor, AppConfig(workdir=tmp_path / "w")), base_url=BASE,
                    raise_server_exceptions=False) as c:
        sid = session(c)
        assert "without --root" in error_of(c.get("/api/browse"), 403)
        assert "without --root" in error_of(c.post(f"/api/sessions/{sid}/open", json={"path": "x"}), 403)


def test_uploads_are_limited_and_checked(client, tmp_path):
    sid = session(client)
    url = f"/api/sessions/{sid}/upload"
    video = tmp_path / "clip.avi"
    write_video(video, 4)
    info = client.post(url, params={"name": "clip.avi"}, content=video.read_bytes(), headers=RAW).json()
    assert info["video"]["frames"] == 4 and info["video"]["source"] == "upload:clip.avi"
    frames = io.BytesIO()
    with zipfile.ZipFile(frames, "w") as zf:
        for frame in sorted(DEMO_FRAMES.glob("*.jpg"))[:2]:
            zf.write(frame, f"clip/{frame.name}")
        zf.writestr("../../evil.jpg", b"x")  # a path that climbs out: only the name is used
        zf.writestr("notes.txt", b"ignored")
    buf = frames.getvalue()
    message = error_of(client.post(url, params={"name": "frames.zip"}, content=buf, headers=RAW), 400)
    assert "evil.jpg" in message or "frame" in message  # the broken 'frame' is named, nothing is opened
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as zf:
        for frame in sorted(DEMO_FRAMES.glob("*.jpg"))[:2]:
            zf.write(frame, f"clip/{frame.name}")
    assert client.post(url, params={"name": "frames.zip"}, content=good.getvalue(), headers=RAW).json()["video"]["frames"] == 2
    assert not any(p.name == "evil.jpg" for p in (tmp_path / "work").rglob("*"))

    assert "larger than the server's limit of 1 MiB" in error_of(
        client.post(url, params={"name": "big.mp4"}, content=b"0" * (2 * 2**20), headers=RAW), 413)
    assert "upload a video" in error_of(client.post(url, params={"name": "notes.txt"}, content=b"hello", headers=RAW), 400)
    assert "not a video file" in error_of(client.post(url, params={"name": "fake.mp4"}, content=b"not a video", headers=RAW), 400)
    assert "not a readable zip" in error_of(client.post(url, params={"name": "bad.zip"}, content=b"PK\x03\x04junk", headers=RAW), 400)
    assert "empty" in error_of(client.post(url, params={"name": "empty.mp4"}, content=b"", headers=RAW), 400)
    # a failed upload leaves the session on its last good video, and no files behind
    assert client.get(f"/api/sessions/{sid}").json()["video"]["frames"] == 2
    assert len(list((tmp_path / "work").rglob("upload-*"))) == 1


def test_masks_grabcut_and_bad_requests(client):
    sid = session(client)
    base = f"/api/sessions/{sid}"
    client.post(f"{base}/demo", json={})
    frame = client.get(f"{base}/frames/3.jpg")
    assert frame.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(frame.content, np.uint8), cv2.IMREAD_COLOR).shape == (480, 854, 3)
    assert "does not exist" in error_of(client.get(f"{base}/frames/30.jpg"), 400)
    assert "bytes" in error_of(client.put(f"{base}/frames/0/annotation", content=b"\x01\x02", headers=RAW), 400)
    # box -> mask: GrabCut finds the car of the demo clip's first frame
    response = client.post(f"{base}/grabcut", json={"frame": 0, "box": [293, 68, 674, 301]})
    mask = np.frombuffer(response.content, np.uint8).reshape(480, 854).astype(bool)
    from ssmvos.data.io import DAVIS_PALETTE, read_mask

    gt = read_mask(demo_clip()[1]) > 0
    assert (mask & gt).sum() / (mask | gt).sum() > 0.6
    assert "at least 4 pixels" in error_of(client.post(f"{base}/grabcut", json={"frame": 0, "box": [5, 5, 6, 6]}), 400)
    assert "grabcut needs" in error_of(client.post(f"{base}/grabcut", json={"frame": 0}), 400)
    assert "not JSON" in error_of(client.post(f"{base}/grabcut", content=b"{oops", headers={"Content-Type": "application/json"}), 400)
    # an RGB 'mask' is refused with how to fix it; a palette PNG is taken
    ok, rgb = cv2.imencode(".png", np.zeros((480, 854, 3), np.uint8) + np.uint8([0, 0, 7]))  # grey would be L
    assert "not a label map" in error_of(client.post(f"{base}/frames/0/annotation/import", content=rgb.tobytes(),
                                                     headers=RAW), 400)
    pal = io.BytesIO()
    from PIL import Image

    labels = np.zeros((480, 854), np.uint8)
    labels[10:50, 10:60] = 3
    image = Image.fromarray(labels, mode="P")
    image.putpalette(DAVIS_PALETTE)
    image.save(pal, format="PNG")
    client.post(f"{base}/frames/0/annotation/import", content=pal.getvalue(), headers=RAW)
    assert client.get(f"{base}/frames/0/annotation").content == labels.tobytes()
    assert "propagate first" in error_of(client.get(f"{base}/export/masks.zip"), 400)
    assert "direction must be one of" in error_of(client.post(f"{base}/propagate", json={"direction": "up"}), 400)
    # the session file round-trips the masks
    saved = client.get(f"{base}/export/session.json").json()
    other = session(client)
    client.post(f"/api/sessions/{other}/demo", json={})
    assert client.post(f"/api/sessions/{other}/session", content=json.dumps(saved),
                       headers={"Content-Type": "application/json"}).json()["video"]["annotated"] == [0]
    assert client.get(f"/api/sessions/{other}/frames/0/annotation").content == labels.tobytes()
    assert "not an ssmvos session file" in error_of(client.post(f"/api/sessions/{other}/session", json={"a": 1}), 400)


def test_objects_points_and_delete(client):
    """The objects panel's routes (name, delete) and the point tool's (add_new_points_or_box)."""
    sid = session(client)
    base = f"/api/sessions/{sid}"
    client.post(f"{base}/open", json={"path": "clips/frames"})  # 3 frames of the demo clip
    info = client.put(f"{base}/objects/3", json={"name": "  the   dog "}).json()
    assert info["video"]["objects"] == [3] and info["video"]["object_names"] == {"3": "the dog"}
    assert "1..255" in error_of(client.put(f"{base}/objects/300", json={"name": "x"}), 400)
    # a box, then a positive and a negative click: the object's mask on that frame
    mask = np.zeros((480, 854), np.uint8)
    mask[20:60, 20:80] = 1  # object 1, drawn; the clicks must leave it alone
    client.put(f"{base}/frames/0/annotation", content=mask.tobytes(), headers=RAW)
    body = {"frame": 0, "object": 2, "points": [[480, 180]], "labels": [1], "box": [293, 68, 674, 301]}
    labels = np.frombuffer(client.post(f"{base}/points", json=body).content, np.uint8).reshape(480, 854)
    assert labels[180, 480] == 2 and (labels == 1).sum() == mask.sum()
    ys, xs = np.nonzero(labels == 2)
    k = int(np.argmax(np.hypot(xs - 480, ys - 180)))
    body.update(points=[[480, 180], [int(xs[k]), int(ys[k])]], labels=[1, 0])
    again = np.frombuffer(client.post(f"{base}/points", json=body).content, np.uint8).reshape(480, 854)
    assert again[ys[k], xs[k]] == 0 and again[180, 480] == 2  # the negative click is background
    assert client.get(f"{base}/frames/0/annotation").content == again.tobytes()
    assert "points need" in error_of(client.post(f"{base}/points", json={"frame": 0}), 400)
    assert "finite" in error_of(client.post(f"{base}/points", content=b'{"frame": 0, "object": 2, "points": [[1e999, 5]], '
                                            b'"labels": [1]}', headers={"Content-Type": "application/json"}), 400)
    assert "positive point" in error_of(client.post(f"{base}/points", json={
        "frame": 0, "object": 2, "points": [[5, 5]], "labels": [0]}), 400)
    # propagate, then delete object 2: gone from the masks, the results and the objects
    client.post(f"{base}/propagate", json={"direction": "forward"})
    for _ in range(600):
        job = client.get(base).json()["job"]
        if job["state"] != "running":
            break
        time.sleep(0.1)
    assert job["state"] == "done", job
    result = np.frombuffer(client.get(f"{base}/frames/2/result").content, np.uint8)
    assert set(np.unique(result)) >= {2}
    info = client.delete(f"{base}/objects/2").json()
    assert info["video"]["objects"] == [1, 3]
    assert 2 not in np.unique(np.frombuffer(client.get(f"{base}/frames/0/annotation").content, np.uint8))
    for frame in range(3):
        result = np.frombuffer(client.get(f"{base}/frames/{frame}/result").content, np.uint8)
        assert 2 not in np.unique(result) and 1 in np.unique(result)
