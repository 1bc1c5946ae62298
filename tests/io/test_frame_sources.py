"""Frame sources: random access into video files, arrays, and live sources (pipes, iterables,
network streams) with their bounded queue and drop policy."""
from __future__ import annotations

import io
import socket
import time

import cv2
import numpy as np
import pytest

from local_http import LocalServer
from ssmvos import SSMVOSError
from ssmvos.io.frames import video as video_module
from ssmvos.io.frames import (ArrayFrames, CaptureStream, FrameFiles, IterableStream, PipeStream, VideoFile, is_live,
                              open_frames)

N = 120


@pytest.fixture(scope="module")
def numbered_mp4(tmp_path_factory):
    """An mp4 (mp4v, a key frame every 12 frames) whose frames all differ."""
    path = tmp_path_factory.mktemp("video") / "numbered.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    for i in range(N):
        bgr = np.zeros((48, 64, 3), np.uint8)
        bgr[:, : i // 2 + 1, 1] = 255
        bgr[:, :, 2] = (i * 37) % 256
        writer.write(bgr)
    writer.release()
    return path


class _CountingCapture:
    """Wraps a cv2.VideoCapture and counts the frames it decodes by grab()."""

    grabs = 0

    def __init__(self, cap):
        self.cap = cap

    def grab(self):
        _CountingCapture.grabs += 1
        return self.cap.grab()

    def __getattr__(self, name):
        return getattr(self.cap, name)


def test_video_random_access_equals_sequential_decoding(numbered_mp4, monkeypatch):
    video = VideoFile(numbered_mp4)
    assert len(video) == N and video.fps == 25 and video.exact_seek
    seq = [frame for _, frame in video.iterate(list(range(N)))]
    assert len({f.tobytes() for f in seq}) == N
    real_open = video_module.open_video
    monkeypatch.setattr(video_module, "open_video", lambda p: (_CountingCapture(real_open(p)[0]), 25.0))
    for i in (100, 5, 119, 0, 60, 61, 63, 90, 30, 118):
        assert np.array_equal(video.get(i), seq[i]), i
    # seeking, not decoding from frame 0: only the short jump 61 -> 63 was decoded through
    assert _CountingCapture.grabs == 1
    # backward (in blocks read forward) and from the middle, in the order asked
    back = list(video.iterate(list(range(N - 1, -1, -1))))
    assert [i for i, _ in back] == list(range(N - 1, -1, -1))
    assert all(np.array_equal(f, seq[i]) for i, f in back)
    assert all(np.array_equal(f, seq[i]) for i, f in video.iterate([70, 71, 75, 99]))


def test_inexact_seek_is_caught_and_read_sequentially(numbered_mp4):
    video = VideoFile(numbered_mp4)
    seq = [frame for _, frame in video.iterate(list(range(N)))]
    video.times = video.times.copy()
    video.times[80] += 1000.0  # as if the seek landed on another frame
    assert np.array_equal(video.get(80), seq[80])
    assert not video.exact_seek
    assert np.array_equal(video.get(10), seq[10]) and np.array_equal(video.get(111), seq[111])


def test_a_truncated_video_is_refused_not_cut_short(tmp_path):
    """A video cut off in transfer decodes to its first frames only: refused, naming how many
    of the frames its header declares were there (it used to pass as a 2-frame video)."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(12):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    assert len(VideoFile(path)) == 12
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(SSMVOSError, match=r"cut.avi ends after \d of the 12 frames its header declares"):
        VideoFile(cut)


def test_array_frames():
    clip = np.random.default_rng(0).integers(0, 256, (3, 8, 10, 3), dtype=np.uint8)
    source = open_frames(clip)
    assert isinstance(source, ArrayFrames) and len(source) == 3 and source.frame_size() == (8, 10)
    assert np.array_equal(source.get(2), clip[2])
    with pytest.raises(SSMVOSError, match="T×H×W×3 uint8"):
        open_frames(clip.astype(np.float32))
    with pytest.raises(SSMVOSError, match="T×H×W×3 uint8"):
        open_frames(clip[..., 0])


def _images(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(n)]


def _encode(rgb: np.ndarray, ext: str) -> bytes:
    return cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def _stream(source) -> list[np.ndarray]:
    return [frame for _, frame, _ in source.stream()]


def test_pipe_of_jpeg_png_and_yuv4mpeg_frames():
    images = _images()
    jpegs = [_encode(im, ".jpg") for im in images]
    # an APP1 segment holding an end-of-image marker (as an EXIF thumbnail does) is skipped by its length
    app1 = b"Exif\x00\x00\xff\xd8thumb\xff\xd9"
    jpegs[0] = jpegs[0][:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + jpegs[0][2:]
    got = _stream(PipeStream(io.BytesIO(b"".join(jpegs)), "jpegs"))
    want = [cv2.cvtColor(cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for j in jpegs]
    assert len(got) == 3 and all(np.array_equal(a, b) for a, b in zip(got, want))

    got = _stream(PipeStream(io.BytesIO(b"".join(_encode(im, ".png") for im in images)), "pngs"))
    assert all(np.array_equal(a, b) for a, b in zip(got, images)) and len(got) == 3

    yuv = [cv2.cvtColor(im, cv2.COLOR_RGB2YUV_I420) for im in images]
    data = b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\n" + b"".join(b"FRAME\n" + y.tobytes() for y in yuv)
    source = PipeStream(io.BytesIO(data), "y4m")
    got = _stream(source)
    assert source.fps == 25 and len(got) == 3
    assert all(np.array_equal(a, cv2.cvtColor(y, cv2.COLOR_YUV2RGB_I420)) for a, y in zip(got, yuv))
    gray = [im[..., 0] for im in images]
    data = b"YUV4MPEG2 W64 H48 F30000:1001 Cmono\n" + b"".join(b"FRAME\n" + g.tobytes() for g in gray)
    got = _stream(PipeStream(io.BytesIO(data), "mono"))
    assert all(np.array_equal(a[..., 1], g) for a, g in zip(got, gray))


def test_pipe_errors_name_the_problem():
    jpeg = _encode(_images(1)[0], ".jpg")
    with pytest.raises(SSMVOSError, match="ended in the middle of frame 1"):
        _stream(PipeStream(io.BytesIO(jpeg + jpeg[:100]), "stdin"))
    with pytest.raises(SSMVOSError, match="neither JPEG/PNG images nor a YUV4MPEG2"):
        PipeStream(io.BytesIO(b"hello world"), "stdin")
    with pytest.raises(SSMVOSError, match="stdin gave no frame"):
        PipeStream(io.BytesIO(b""), "stdin")
    with pytest.raises(SSMVOSError, match="C422"):
        PipeStream(io.BytesIO(b"YUV4MPEG2 W64 H48 F25:1 C422\nFRAME\n"), "stdin")


def _counting_frames(n: int):
    """Frames whose pixels hold their index, yielded as fast as the consumer lets them."""
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(n)]
    yield from frames


def test_live_queue_drops_the_oldest_frames_but_never_one_with_a_mask():
    source = IterableStream(_counting_frames(200), queue_size=2)
    seen = []
    for index, frame, arrival in source.stream(keep=lambda i: i in (0, 150)):
        assert frame[0, 0, 0] == index and arrival <= time.monotonic()
        seen.append(index)
        time.sleep(0.004)  # a network slower than the source
    assert seen == sorted(seen) and seen[0] == 0 and 150 in seen and seen[-1] == 199
    assert source.dropped > 0 and source.dropped + len(seen) == 200 == source.received
    # with drop=False every frame is processed, in order
    source = IterableStream(_counting_frames(50), queue_size=2, drop=False)
    seen = [index for index, _, _ in source.stream() if time.sleep(0.002) is None]
    assert seen == list(range(50)) and source.dropped == 0


def test_network_stream_and_bad_live_sources(numbered_mp4):
    seq = [frame for _, frame in VideoFile(numbered_mp4).iterate(list(range(N)))]
    with LocalServer() as server:
        source = open_frames(server.add("numbered.mp4", numbered_mp4))
        assert isinstance(source, CaptureStream) and source.live and source.frame_size() == (48, 64)
        got = [(i, frame) for i, frame, _ in source.stream(keep=lambda i: True)]
    assert [i for i, _ in got] == list(range(N)) and all(np.array_equal(f, seq[i]) for i, f in got)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SSMVOSError, match=f"cannot open stream http://127.0.0.1:{port}/x.mp4"):
        open_frames(f"http://127.0.0.1:{port}/x.mp4")
    with pytest.raises(SSMVOSError, match="cannot open camera 57"):
        open_frames("57")
    with pytest.raises(SSMVOSError, match="frame 1 of the iterable is 4×4 float64"):
        _stream(IterableStream(iter([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4))])))


def test_is_live_follows_open_frames_dispatch(tmp_path, numbered_mp4):
    folder = tmp_path / "0"  # a folder named like a camera index is a folder
    folder.mkdir()
    cv2.imwrite(str(folder / "00000.png"), np.zeros((8, 8, 3), np.uint8))
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    for video, kind in ((folder, FrameFiles), (numbered_mp4, VideoFile), (frames, ArrayFrames),
                        ([folder / "00000.png"], FrameFiles), (io.BytesIO(b"\xff\xd8 not a jpeg"), PipeStream),
                        (iter([frames[0]]), IterableStream)):
        assert is_live(video) == kind.live, kind
        try:
            source = open_frames(video)
        except SSMVOSError:
            assert kind is PipeStream  # the broken JPEG: opening reads the first frame
            continue
        assert type(source) is kind
        source.close()
    for video in ("rtsp://127.0.0.1:9/x", "-", 3, str(tmp_path / "nothing"), "²", True, object()):
        assert is_live(video) == (video in ("rtsp://127.0.0.1:9/x", "-", 3)), video
    for video in (str(tmp_path / "nothing"), "²", True, object()):
        with pytest.raises(SSMVOSError):
            open_frames(video)


def test_the_old_import_paths_name_the_same_objects():
    import ssmvos.data.io as data_io
    import ssmvos.inference.frames as old
    from ssmvos.io.frames import files, open as open_module, video

    assert old.open_frames is open_module.open_frames and old.is_live is open_module.is_live
    assert old.FrameFiles is FrameFiles and old.VideoFile is VideoFile and old.PipeStream is PipeStream
    assert data_io.list_frames is files.list_frames and data_io.read_frame is files.read_frame
    assert data_io.open_video is video.open_video and data_io.VIDEO_SUFFIXES is video.VIDEO_SUFFIXES
    assert data_io.IMAGE_SUFFIXES is files.IMAGE_SUFFIXES
