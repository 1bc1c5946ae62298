"""Commands that never run the network do not import torch (it costs seconds at start-up)."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from conftest import ROOT, SUBPROCESS_TIMEOUT
from ssmvos.data.io import write_gray_png, write_palette_png

PROBE = """
import sys
from ssmvos.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exc:  # --help
    status = exc.code
print("TORCH" if "torch" in sys.modules else "NO-TORCH", status)
"""


def loaded(*args: str) -> tuple[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)
    return proc.stdout.strip().splitlines()[-1], proc.stderr


def test_help_merge_score_index_do_not_import_torch(tmp_path):
    for args in (["--help"], ["score", "--help"], ["train", "--help"], ["segment", "--help"]):
        assert loaded(*args)[0] == "NO-TORCH 0", args
    # real work: merge two per-object masks, score them, index a DAVIS-layout folder
    per, merged = tmp_path / "per", tmp_path / "merged"
    for obj, value in ((1, 200), (2, 10)):
        write_gray_png(per / "v" / str(obj) / "00000.png", np.full((4, 6), value, np.uint8))
        write_gray_png(per / "v" / str(obj) / "00001.png", np.full((4, 6), value, np.uint8))
    assert loaded("merge", "-i", per, "-o", merged)[0] == "NO-TORCH 0"
    gt = tmp_path / "gt" / "v"
    for k in range(3):
        write_palette_png(gt / f"{k:05d}.png", np.pad(np.ones((2, 2), np.uint8), 1))
        write_palette_png(merged / "v" / f"{k:05d}.png", np.pad(np.ones((2, 2), np.uint8), 1))
    line, err = loaded("score", "--annotations", tmp_path / "gt", "--results", merged, "--format", "davis2017")
    assert line == "NO-TORCH 0", err
    davis = tmp_path / "DAVIS"
    (davis / "ImageSets" / "480p").mkdir(parents=True)
    (davis / "JPEGImages" / "480p" / "v").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (6, 4)).save(davis / "JPEGImages" / "480p" / "v" / "00000.jpg")
    write_palette_png(davis / "Annotations" / "480p" / "v" / "00000.png", np.pad(np.ones((2, 2), np.uint8), 1))
    (davis / "ImageSets" / "480p" / "val.txt").write_text("/JPEGImages/480p/v/00000.jpg /Annotations/480p/v/00000.png\n")
    line, err = loaded("index", "--davis2016", davis, "--out-dir", tmp_path / "splits")
    assert line == "NO-TORCH 0", err
    assert (tmp_path / "splits" / "davis2016_val.json").is_file()
