"""Start-up time of the command line: `ssmvos --help` and `ssmvos merge` (on a tiny folder)
against `python -c pass` and `python -c "import torch"`, medians of several runs in one go.

    python benchmarks/bench_startup.py [--runs 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ssmvos.data.io import write_gray_png  # noqa: E402


def seconds(cmd: list[str], runs: int, src: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--src", type=Path, default=ROOT / "src",
                    help="the ssmvos sources to time (another checkout's src/ to compare)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        per = Path(tmp) / "per"
        for obj in (1, 2):
            write_gray_png(per / "v" / str(obj) / "00000.png", np.full((48, 64), 100 * obj, np.uint8))
        py = [sys.executable]
        cases = {
            "python -c pass": py + ["-c", "pass"],
            "python -c 'import torch'": py + ["-c", "import torch"],
            "ssmvos --help": py + ["-m", "ssmvos", "--help"],
            "ssmvos merge (1 frame, 2 objects)": py + ["-m", "ssmvos", "merge", "-i", str(per), "-o", str(Path(tmp) / "m")],
        }
        # interleaved rounds, so that a load change hits every case alike
        results: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.runs):
            for name, cmd in cases.items():
                results[name].append(seconds(cmd, 1, args.src))
    base = statistics.median(results["python -c pass"])
    print(f"{args.src}; load average {os.getloadavg()[0]:.2f}; medians of {args.runs} runs")
    for name, times in results.items():
        med = statistics.median(times)
        print(f"{name:<36} {med * 1000:7.0f} ms  (+{(med - base) * 1000:.0f} ms over python -c pass)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
