"""Reduced precision judged on what users see: J&F against the DAVIS 2016 annotations for
each backend × precision, next to fp32's, with the same weights — in one run.

    python benchmarks/bench_precision.py [--size 256] [--videos 20] [--weights CKPT]
        [--configs torch:fp32,torch:bf16,onnxruntime:fp32] [--davis2016 ../shared/data/DAVIS2016]

Each configuration runs ``ssmvos evaluate --score`` on the DAVIS 2016 val videos (the first
``--videos`` of them) and the merged masks are compared pixel by pixel with the first
configuration's. Without ``--weights`` the network has the project's deterministic
reference weights (random-like): then neither J&F is a quality figure, only a measure of how
far a precision moves the masks a user would get.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import fill_reference_weights  # noqa: E402
from ssmvos import SSM, save_checkpoint  # noqa: E402
from ssmvos.data.io import read_mask  # noqa: E402


def cli(*args) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-m", "ssmvos", *map(str, args)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"ssmvos {args[0]} failed:\n{proc.stderr}")
    return proc.stdout


def agreement(got: Path, want: Path) -> float:
    """Fraction of equal pixels over all same-named PNGs of two merged folders."""
    equal = total = 0
    for p in sorted(want.rglob("*.png")):
        a, b = read_mask(got / p.relative_to(want)), read_mask(p)
        equal += int((a == b).sum())
        total += b.size
    return equal / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256, help="network input size (square)")
    ap.add_argument("--videos", type=int, default=20, help="the first N videos of DAVIS 2016 val")
    ap.add_argument("--weights", help="checkpoint (default: the deterministic reference weights)")
    ap.add_argument("--configs", default="torch:fp32,torch:bf16,onnxruntime:fp32",
                    help="backend:precision pairs; the first is the baseline")
    ap.add_argument("--davis2016", default=str(ROOT.parent / "shared" / "data" / "DAVIS2016"))
    args = ap.parse_args()
    configs = [tuple(c.split(":")) for c in args.configs.split(",")]

    with tempfile.TemporaryDirectory(prefix="ssmvos-precision-") as tmp:
        tmp = Path(tmp)
        os.environ["SSMVOS_HOME"] = str(tmp / "home")  # the onnxruntime export goes here
        weights = args.weights
        if weights is None:
            model = SSM()
            fill_reference_weights(model)
            weights = save_checkpoint(tmp / "reference.pt", model.state_dict(), 0)
        cli("index", "--davis2016", args.davis2016, "--out-dir", tmp / "splits")
        entries = json.loads((tmp / "splits" / "davis2016_val.json").read_text())
        videos = list(dict.fromkeys(e["video_name"] for e in entries))[: args.videos]
        split = tmp / "split.json"
        split.write_text(json.dumps([e for e in entries if e["video_name"] in videos]))
        print(f"DAVIS 2016 val, {len(videos)} videos, input {args.size}x{args.size}, weights: "
              f"{args.weights or 'reference (random-like; not a quality figure)'}")
        rows = []
        for backend, precision in configs:
            name = f"{backend}-{precision}"
            t = time.perf_counter()
            cli("evaluate", "--split", split, "--resume", weights, "--save-dir", tmp / name / "per",
                "--merged-dir", tmp / name / "merged", "--score", "--score-json", tmp / name / "jf.json",
                "--input-height", args.size, "--input-width", args.size, "--device", "cpu", "--no-progress",
                "--backend", backend, "--precision", precision)
            seconds = time.perf_counter() - t
            scores = json.loads((tmp / name / "jf.json").read_text())
            first = tmp / f"{configs[0][0]}-{configs[0][1]}" / "merged"
            rows.append((backend, precision, scores, agreement(tmp / name / "merged", first), seconds))
        print(f"\n{'backend':<12} {'precision':<9} {'J&F':>7} {'J':>7} {'F':>7} {'masks = ' + '/'.join(configs[0]):>22} "
              f"{'worst video J&F diff':>21} {'seconds':>8}")
        base = rows[0][2]["per_object"]
        for backend, precision, scores, agree, seconds in rows:
            per = scores["per_object"]
            worst = max(abs((per[k]["J_mean"] + per[k]["F_mean"]) / 2 - (base[k]["J_mean"] + base[k]["F_mean"]) / 2)
                        for k in base)
            print(f"{backend:<12} {precision:<9} {100 * scores['JF_mean']:>7.2f} {100 * scores['J_mean']:>7.2f} "
                  f"{100 * scores['F_mean']:>7.2f} {100 * agree:>21.3f}% {100 * worst:>21.2f} {seconds:>8.0f}")
        print("(J&F, J, F in percent, official DAVIS 2016 protocol; 'masks =': merged masks equal to the baseline's, "
              "all frames)")


if __name__ == "__main__":
    main()
