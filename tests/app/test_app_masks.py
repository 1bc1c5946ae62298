"""ssmvos app, server side: importing a mask and loading a session file follow the label-map
rules and the session-file contract (docs/design.md): a 16-bit map with ids 1 and 2 is two
objects, a 0/255 PNG is object 1; a session replaces the masks, all or nothing, and one made
for another video is refused."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the app's extra is not installed: pip install -e '.[app]'")
from starlette.testclient import TestClient  # noqa: E402

from ssmvos.app.server import AppConfig, create_app  # noqa: E402
from ssmvos.assets import demo_clip  # noqa: E402
from ssmvos.inference.predictor import VideoPredictor  # noqa: E402

H, W = 480, 854  # the demo clip's frames


@pytest.fixture(scope="module")
def client(model, tmp_path_factory):
    """A server with one session on a 3-frame folder of the demo clip."""
    root = tmp_path_factory.mktemp("root")
    (root / "clip").mkdir()
    for frame in sorted(demo_clip()[0].glob("*.jpg"))[:3]:
        (root / "clip" / frame.name).write_bytes(frame.read_bytes())
    app = create_app(VideoPredictor(model, 224, device="cpu"),
                     AppConfig(root=root, workdir=tmp_path_factory.mktemp("work")))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture()
def base(client) -> str:
    sid = client.post("/api/sessions").json()["id"]
    assert client.post(f"/api/sessions/{sid}/open", json={"path": "clip"}).json()["video"]["frames"] == 3
    return f"/api/sessions/{sid}"


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(buf, format="PNG")
    return buf.getvalue()


def two_objects() -> np.ndarray:
    labels = np.zeros((H, W), np.uint8)
    labels[100:200, 100:300] = 1
    labels[250:400, 400:700] = 2
    return labels


def error_of(response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]


def annotation(client, base: str, frame: int) -> np.ndarray | None:
    response = client.get(f"{base}/frames/{frame}/annotation")
    return None if response.status_code == 204 else np.frombuffer(response.content, np.uint8).reshape(H, W)


def session_json(masks: dict[str, bytes], num_frames: int = 3, height: int = H, width: int = W) -> str:
    return json.dumps({"version": 1, "video": {"name": "clip", "num_frames": num_frames, "height": height,
                                               "width": width},
                       "masks": {k: base64.b64encode(v).decode() for k, v in masks.items()}})


def test_import_16_bit_two_objects_and_binary_as_object_1(client, base):
    labels = two_objects()
    info = client.post(f"{base}/frames/0/annotation/import", content=png(labels.astype(np.uint16))).json()
    assert info["video"]["objects"] == [1, 2]  # not one object
    np.testing.assert_array_equal(annotation(client, base, 0), labels)
    binary = np.where(labels > 0, 255, 0).astype(np.uint8)
    info = client.post(f"{base}/frames/1/annotation/import", content=png(binary, "L")).json()
    assert info["video"]["objects"] == [1, 2]  # frame 1's mask is object 1, not 255
    np.testing.assert_array_equal(annotation(client, base, 1), (labels > 0).astype(np.uint8))
    assert "is a JPEG" in error_of(client.post(f"{base}/frames/2/annotation/import",
                                               content=_jpeg(binary)))


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG")
    return buf.getvalue()


def test_loading_a_session_replaces_the_masks_all_or_nothing(client, base):
    labels = two_objects()
    client.put(f"{base}/frames/1/annotation", content=((labels == 2) * 3).astype(np.uint8).tobytes())
    assert client.get(base).json()["video"]["annotated"] == [1]
    # a bad mask on frame 2 after a good one on frame 0: refused, nothing applied
    colour = png(np.dstack([labels * 100, labels, labels]))
    message = error_of(client.post(f"{base}/session", content=session_json({"0": png(labels), "2": colour})))
    assert "the mask of frame 2 in the session file" in message and "colour" in message
    assert "mask for frame 5, but the video has 3 frames" in error_of(
        client.post(f"{base}/session", content=session_json({"0": png(labels), "5": png(labels)})))
    assert "whole number" in error_of(client.post(f"{base}/session", content=json.dumps(
        {"version": 1, "video": {"name": "c", "num_frames": 3, "height": True, "width": W}, "masks": {}})))
    assert client.get(base).json()["video"]["annotated"] == [1]
    np.testing.assert_array_equal(annotation(client, base, 1), (labels == 2) * 3)
    # a good one replaces (no merge): frame 1's mask is gone
    info = client.post(f"{base}/session", content=session_json({"0": png(labels)})).json()
    assert info["video"]["annotated"] == [0] and info["video"]["objects"] == [1, 2]
    assert annotation(client, base, 1) is None
    # the file the app saves loads back (and is the versioned format)
    saved = client.get(f"{base}/export/session.json").json()
    assert saved["version"] == 1 and saved["video"]["num_frames"] == 3 and list(saved["masks"]) == ["0"]
    assert set(saved["objects"]) == {"1", "2"}
    assert client.post(f"{base}/session", content=json.dumps(saved)).json()["video"]["annotated"] == [0]


def test_a_session_for_another_video_is_refused(client, base):
    labels = two_objects()
    assert "another video" in error_of(client.post(f"{base}/session",
                                                   content=session_json({"0": png(labels)}, num_frames=30)))
    small = labels[:240, :427]
    assert "another video" in error_of(client.post(f"{base}/session",
                                                   content=session_json({"0": png(small)}, height=240, width=427)))
    assert client.get(base).json()["video"]["annotated"] == []
    # a file of the first release (unversioned) still loads
    old = {"format": "ssmvos-session/1", "video": "clip", "frames": 3, "width": W, "height": H,
           "masks": {"2": base64.b64encode(png(labels)).decode()}}
    assert client.post(f"{base}/session", content=json.dumps(old)).json()["video"]["annotated"] == [2]
