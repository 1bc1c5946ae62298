"""Frame files are read in natural order (``2.jpg`` before ``10.jpg``), by every way in: the
Python API, ``ssmvos segment``, indexing and scoring; zero-padded names keep their order."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import run_cli
from ssmvos.data.index import index_davis_videos
from ssmvos.errors import SSMVOSError
from ssmvos.data.io import list_frames, read_mask, write_palette_png
from ssmvos.io.frames.files import frame_key
from ssmvos.scoring.labels import annotation_frames
from stub_network import stub_predictor

W, H = 96, 64
STEP = 20  # frame k is grey level STEP * k: the frame read at index k shows which file it came from


def _frame_folder(folder, names: list[str]):
    """Frames named ``names`` (in frame order); frame k is a grey STEP*k picture with a dark square."""
    folder.mkdir()
    for k, name in enumerate(names):
        image = np.full((H, W, 3), STEP * k, np.uint8)
        image[20:44, 30:60] = 255 - STEP * k // 2
        cv2.imwrite(str(folder / name), image)
    return folder


def test_frame_key_orders_digit_runs_as_numbers():
    names = ["10.jpg", "2.jpg", "frame10.jpg", "1.jpg", "frame2.jpg", "0.jpg", "01.jpg", "00011.jpg", "b.jpg"]
    assert sorted(names, key=frame_key) == ["0.jpg", "01.jpg", "1.jpg", "2.jpg", "10.jpg", "00011.jpg", "b.jpg",
                                            "frame2.jpg", "frame10.jpg"]
    assert sorted(["Frame_3.jpg", "frame_1.jpg", "FRAME_10.JPG", "frame_2.png"], key=frame_key) == \
        ["frame_1.jpg", "frame_2.png", "Frame_3.jpg", "FRAME_10.JPG"]  # the case of the text does not count
    padded = [f"{k:05d}.jpg" for k in range(120)]
    assert sorted(padded, key=frame_key) == sorted(padded)  # DAVIS / YouTube-VOS names: unchanged


@pytest.mark.parametrize("names", [[f"{k}.jpg" for k in range(12)], ["frame2.jpg", "frame10.jpg", "frame11.png"]])
def test_the_api_reads_a_folder_in_natural_order(tmp_path, names):
    folder = _frame_folder(tmp_path / "frames", names)
    assert [p.name for p in list_frames(folder)] == names
    predictor, _ = stub_predictor()
    state = predictor.init_state(video_path=folder)
    assert [state.frames.name(k) for k in range(len(names))] == [n.rsplit(".", 1)[0] for n in names]
    mask = np.zeros((H, W), bool)
    mask[20:44, 30:60] = True
    predictor.add_new_mask(state, 0, 1, mask)
    seen = [(k, int(np.median(state.frames.get(k)[:8, :8]))) for k, _, _ in predictor.propagate_in_video(state)]
    assert seen == [(k, STEP * k) for k in range(len(names))]


def test_segment_writes_and_overlays_frames_in_natural_order(tmp_path, reference_checkpoint):
    """The mask is for frame 10 (``10.jpg``, not ``8.jpg`` as sorted by name), forward: two
    frames through the network."""
    names = [f"{k}.jpg" for k in range(12)]
    folder = _frame_folder(tmp_path / "frames", names)
    labels = np.zeros((H, W), np.uint8)
    labels[20:44, 30:60] = 1
    write_palette_png(tmp_path / "mask.png", labels)
    proc = run_cli("segment", "--frames", folder, "--mask", f"10:{tmp_path / 'mask.png'}", "--direction", "forward",
                   "--out", tmp_path / "out", "--overlay", tmp_path / "overlay.mp4", "--weights", reference_checkpoint,
                   "--input-size", 224, "--device", "cpu", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    assert np.array_equal(read_mask(out / "10.png"), labels)
    assert (out / "11.png").is_file()
    cap = cv2.VideoCapture(str(tmp_path / "overlay.mp4"))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    for k, bgr in zip((10, 11), frames[-2:]):
        background = read_mask(out / f"{k}.png") == 0
        assert background.sum() > 100
        # the overlay of frame k shows k.jpg (grey STEP*k where no object is painted)
        assert abs(float(np.median(bgr[background])) - STEP * k) <= 6, k


def test_index_and_scoring_list_frames_in_natural_order(tmp_path):
    images, labels = tmp_path / "JPEGImages" / "v", tmp_path / "Annotations" / "v"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for k in (0, 1, 2, 10, 11):
        (images / f"{k}.jpg").touch()  # indexing decodes no frame
        write_palette_png(labels / f"{k}.png", np.ones((8, 8), np.uint8))
    entries = index_davis_videos(tmp_path / "JPEGImages", tmp_path / "Annotations", ["v"])
    assert [(e.frame_index, e.image_path.rsplit("/", 1)[1]) for e in entries] == \
        [(0, "0.jpg"), (1, "1.jpg"), (2, "2.jpg"), (3, "10.jpg"), (4, "11.jpg")]
    assert annotation_frames(labels) == ["0.png", "1.png", "2.png", "10.png", "11.png"]


def test_hidden_files_are_not_frames_and_names_that_would_collide_are_refused(tmp_path):
    """A folder copied from a Mac holds ``._<name>`` beside every file (not images): no frame
    list, index or scorer reads them. Two frames named alike but for the extension would
    write one result file: refused before anything runs, naming both."""
    folder = _frame_folder(tmp_path / "frames", ["0.jpg", "1.jpg", "2.jpg"])
    (folder / "._1.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    assert [p.name for p in list_frames(folder)] == ["0.jpg", "1.jpg", "2.jpg"]
    labels = tmp_path / "Annotations" / "v"
    labels.mkdir(parents=True)
    write_palette_png(labels / "0.png", np.ones((8, 8), np.uint8))
    (labels / "._0.png").write_bytes(b"\x00\x05\x16\x07")
    assert annotation_frames(labels) == ["0.png"]
    images = tmp_path / "JPEGImages" / "v"
    images.mkdir(parents=True)
    (images / "0.jpg").touch()
    (images / "._0.jpg").touch()
    assert [e.image_path.rsplit("/", 1)[1] for e in
            index_davis_videos(tmp_path / "JPEGImages", tmp_path / "Annotations", ["v"])] == ["0.jpg"]
    cv2.imwrite(str(folder / "1.png"), np.zeros((H, W, 3), np.uint8))
    with pytest.raises(SSMVOSError, match=r"frames 1.jpg and 1.png in .* share the name '1'"):
        list_frames(folder)
