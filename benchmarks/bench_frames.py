"""Frame sources and kept results: what random access into a video file costs at frame 10 and
at frame 1000, backward against forward reading, and how many bytes a kept result takes.

    python benchmarks/bench_frames.py [--frames 1200] [--size 640x360] [--video FILE]

Without ``--video`` it writes an mp4 (OpenCV's mp4v encoder, a key frame every 12 frames) of
``--frames`` frames. Random access: for each target index, ``VideoFile.get`` right after a
read elsewhere in the file (so that every access is a jump), averaged over 5 targets next to
each index; against it the way a decoder without seeking gets there: open the file and
decode from frame 0. Kept results: the result store's compressed bytes per object-frame on
the original code's soft masks of libby (``../shared/reference``), against the raw uint8 and
float32 masks.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ssmvos.data.io import read_mask  # noqa: E402
from ssmvos.io.frames import VideoFile  # noqa: E402
from ssmvos.inference.results import Provenance, ResultStore  # noqa: E402


def write_video(path: Path, frames: int, width: int, height: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    for i in range(frames):
        frame = np.roll(base, 3 * i, axis=1)
        cv2.putText(frame, str(i), (20, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 5)
        writer.write(frame)
    writer.release()


def ms_per_access(video: VideoFile, targets: list[int]) -> float:
    times = []
    for target in targets:
        video.get((target + len(video) // 2) % len(video))  # read elsewhere first: the access is a jump
        t = time.perf_counter()
        video.get(target)
        times.append(time.perf_counter() - t)
    return statistics.mean(times) * 1000


def ms_decoding_from_start(path: Path, targets: list[int]) -> float:
    times = []
    for target in targets:
        t = time.perf_counter()
        cap = cv2.VideoCapture(str(path))
        for _ in range(target):
            cap.grab()
        cap.read()
        cap.release()
        times.append(time.perf_counter() - t)
    return statistics.mean(times) * 1000


def frames_per_second(video: VideoFile, indices: list[int]) -> float:
    t = time.perf_counter()
    n = sum(1 for _ in video.iterate(indices))
    return n / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1200)
    ap.add_argument("--size", default="640x360", help="WxH of the written video")
    ap.add_argument("--video", type=Path, help="time this video file instead of writing one")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.video
        if path is None:
            width, height = map(int, args.size.lower().split("x"))
            path = Path(tmp) / "clip.mp4"
            write_video(path, args.frames, width, height)
        t = time.perf_counter()
        video = VideoFile(path)
        opened = time.perf_counter() - t
        n = len(video)
        h, w = video.frame_size()
        print(f"{path.name}: {n} frames of {w}×{h}; opening (counting frames, noting timestamps) took "
              f"{opened:.2f} s; seeking exact: {video.exact_seek}")
        print("\nrandom access, ms per frame (mean of 5 targets)")
        print(f"{'frame index':>12} {'VideoFile.get':>14} {'decode from 0':>14}")
        for index in (10, 100, 500, 1000, n - 6):
            if index + 5 > n:
                continue
            targets = list(range(index, index + 5))
            print(f"{index:>12} {ms_per_access(video, targets):>14.2f} {ms_decoding_from_start(path, targets):>14.2f}")
        forward = frames_per_second(video, list(range(n)))
        backward = frames_per_second(video, list(range(n - 1, -1, -1)))
        print(f"\nwhole video through iterate(): forward {forward:.0f} frames/s, backward {backward:.0f} frames/s")

    masks = sorted((args.shared / "reference" / "pipeline_two_object_libby" / "per_object" / "libby").glob("*/*.png"))
    if masks:
        first = read_mask(masks[0])
        store = ResultStore(*first.shape)
        for k, png in enumerate(masks):
            soft = read_mask(png)
            store.put(k, 1, soft, soft > 127, Provenance(0, 1, 0, 1, False))
        per = store.memory_bytes / len(masks)
        print(f"\nkept results: {len(masks)} object-frames of {first.shape[1]}×{first.shape[0]} (libby, original soft "
              f"masks): {per / 1024:.1f} KiB each compressed, against {first.size / 1024:.0f} KiB as uint8 and "
              f"{first.size * 4 / 1024:.0f} KiB as float32 ({first.size * 4 / per:.0f}× smaller)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
