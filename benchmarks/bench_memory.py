"""Peak memory of `ssmvos evaluate` does not grow with video length.

Runs the engine in fresh processes over the same clip looped to 1× and 4× its length and
prints each run's peak resident memory (ru_maxrss):

    python benchmarks/bench_memory.py [--frames 12] [--size 256]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys
sys.path[:0] = [{src!r}, {tests!r}]
from conftest import fill_reference_weights
from ssmvos import SSM
from ssmvos.inference.engine import Engine
from ssmvos.runtime import RuntimeSpec
from ssmvos.inference.evaluate import evaluate_split
entries = json.load(open({split!r}))
model = SSM().eval(); fill_reference_weights(model)
stats = evaluate_split(entries, Engine.for_model(model, ({size}, {size}), RuntimeSpec(device="cpu")), {out!r}, {out!r} + "_merged", progress=False)
print(json.dumps({{"frames": stats.frames, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=12, help="frames of the base clip")
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    demo = ROOT / "src" / "ssmvos" / "assets" / "demo"
    frames = sorted((demo / "frames").glob("*.jpg"))[: args.frames]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for loops in (1, 4):
            video = Path(tmp) / f"x{loops}" / "JPEGImages" / "clip"
            video.mkdir(parents=True)
            entries = []
            n = len(frames) * loops
            for i in range(n):
                (video / f"{i:05d}.jpg").symlink_to(frames[i % len(frames)])
                entries.append(dict(image_path=str(video / f"{i:05d}.jpg"), mask_path=str(demo / "mask.png"),
                                    video_name="clip", num_frames=n, frame_index=i, object_index=255))
            split = Path(tmp) / f"split{loops}.json"
            split.write_text(json.dumps(entries))
            code = CHILD.format(src=str(ROOT / "src"), tests=str(ROOT / "tests"), split=str(split),
                                size=args.size, out=str(Path(tmp) / f"out{loops}"))
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            results[loops] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{loops}x clip: {results[loops]['frames']} frames, peak RSS {results[loops]['peak_mib']:.0f} MiB")
    ratio = results[4]["peak_mib"] / results[1]["peak_mib"]
    print(f"peak memory 4x / 1x length: {ratio:.3f}")


if __name__ == "__main__":
    main()
