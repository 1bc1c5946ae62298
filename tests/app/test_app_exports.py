"""ssmvos app's exports: COCO-style RLE JSON that pycocotools decodes to the results, the
DAVIS palette-PNG zip, and a training set in YouTube-VOS layout that ``ssmvos index --mose``
and ``ssmvos train --resume`` take as they are (README's "fine-tune on your own clips")."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the app's extra is not installed: pip install -e '.[app]'")

from app_client import RAW, client_for, error_of, make_root, new_session, wait_job  # noqa: E402
from conftest import run_cli  # noqa: E402
from stub_network import stub_predictor  # noqa: E402
from ssmvos.app.server import AppConfig, create_app  # noqa: E402

FRAMES = 4


@pytest.fixture(scope="module")
def propagated(tmp_path_factory):
    """A client and a session whose 4-frame clip has two objects propagated over every frame."""
    base = tmp_path_factory.mktemp("exports")
    root = make_root(base, frames=FRAMES)
    app = create_app(stub_predictor()[0], AppConfig(root=root, state_dir=base / "state"))
    with client_for(app) as client:
        sid = new_session(client)
        client.post(f"/api/sessions/{sid}/open", json={"path": "clips/frames"})
        labels = np.zeros((480, 854), np.uint8)
        labels[100:300, 300:600] = 1
        labels[320:420, 50:200] = 4
        client.put(f"/api/sessions/{sid}/frames/0/annotation", content=labels.tobytes(), headers=RAW)
        client.post(f"/api/sessions/{sid}/propagate", json={"direction": "forward"})
        assert wait_job(client, sid)["job"]["state"] == "done"
        yield client, f"/api/sessions/{sid}"


def results(client, base: str) -> list[np.ndarray]:
    return [np.frombuffer(client.get(f"{base}/frames/{k}/result").content, np.uint8).reshape(480, 854)
            for k in range(FRAMES)]


def test_coco_json_decodes_to_the_results(propagated):
    mask_api = pytest.importorskip("pycocotools.mask", reason="pycocotools is the test oracle (test extra)")
    client, base = propagated
    response = client.get(f"{base}/export/masks.coco.json")
    assert response.status_code == 200 and "masks.coco.json" in response.headers["content-disposition"]
    (video,) = response.json()["videos"]
    assert video["name"] == "frames" and (video["height"], video["width"]) == (480, 854)
    assert [f["frame"] for f in video["frames"]] == list(range(FRAMES))
    for frame, labels in zip(video["frames"], results(client, base)):
        ids = sorted(int(i) for i in frame["objects"])
        assert ids == [int(i) for i in np.unique(labels) if i] and ids
        for obj, rle in frame["objects"].items():
            assert (mask_api.decode(rle) == (labels == int(obj))).all()


def test_palette_png_zip_is_the_davis_layout(propagated):
    client, base = propagated
    with zipfile.ZipFile(io.BytesIO(client.get(f"{base}/export/masks.zip").content)) as zf:
        assert zf.namelist() == [f"{k:05d}.png" for k in range(FRAMES)]
        for k, labels in enumerate(results(client, base)):
            image = Image.open(io.BytesIO(zf.read(f"{k:05d}.png")))
            assert image.mode == "P" and (np.asarray(image) == labels).all()


def test_fine_tune_on_an_exported_training_set(propagated, reference_checkpoint, tmp_path):
    """README's recipe, end to end at 224 px: export, unzip, index, train a step."""
    client, base = propagated
    with zipfile.ZipFile(io.BytesIO(client.get(f"{base}/export/dataset.zip").content)) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "mine")
    assert "train/meta.json" in names and sum(n.startswith("train/JPEGImages/frames/") for n in names) == FRAMES
    meta = json.loads((tmp_path / "mine" / "train" / "meta.json").read_text())
    assert meta == {"videos": {"frames": {"objects": {o: {"frames": [f"{k:05d}" for k in range(FRAMES)]}
                                                      for o in ("1", "4")}}}}
    proc = run_cli("index", "--mose", tmp_path / "mine", "--out-dir", tmp_path / "splits")
    assert proc.returncode == 0, proc.stderr
    split = tmp_path / "splits" / "mose_train.json"
    assert len(json.loads(split.read_text())) == 2 * FRAMES  # two objects, every frame
    proc = run_cli("train", "--model-dir", tmp_path / "model", "--split", split, "--resume", reference_checkpoint,
                   "--input-size", "224", "--batch-size", "2", "--max-steps", "1", "--log-step", "1",
                   "--save-step", "1000", "--num-workers", "0", "--device", "cpu", "--no-pretrained")
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "model" / "logs" / "train.log").read_text()
    assert "8 samples" in log and "step 0 (0, 0): loss:" in log and "stopping at --max-steps 1" in log


def test_exports_need_results(tmp_path):
    root = make_root(tmp_path)
    with client_for(create_app(stub_predictor()[0], AppConfig(root=root, state_dir=tmp_path / "s"))) as client:
        sid = new_session(client)
        client.post(f"/api/sessions/{sid}/open", json={"path": "clips/frames"})
        for export in ("masks.coco.json", "dataset.zip"):
            assert "propagate first" in error_of(client.get(f"/api/sessions/{sid}/export/{export}"), 400)
