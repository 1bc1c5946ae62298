"""What a new user trips over (issue 17): one input-size flag everywhere, argument errors with
the subcommand's usage, outputs readable by others (0644 under umask 022), a help line with its
default for every flag, H.264 overlays (or a notice), merged output of a trimmed split, and the
test suite's own hygiene (one subprocess time limit, temporary folders removed)."""
from __future__ import annotations

import argparse
import ast
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import DAVIS16, ROOT, SUBPROCESS_TIMEOUT, davis_entries, run_cli
from ssmvos.cli import build_parser
from ssmvos.data.io import read_mask

NETWORK_COMMANDS = {
    "segment": ["segment", "--demo", "--out", "o"],
    "batch": ["batch", "--manifest", "m.csv", "--out", "o"],
    "evaluate": ["evaluate", "--split", "s.json", "--resume", "w.pt", "--save-dir", "o"],
    "train": ["train", "--model-dir", "m", "--split", "s.json"],
}


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# --------------------------------------------------------------------------- --input-size
@pytest.mark.parametrize("command", list(NETWORK_COMMANDS))
def test_input_size_is_accepted_by_every_network_command(command):
    parser, base = build_parser(), NETWORK_COMMANDS[command]
    for flags, want in ((["--input-size", "320"], (320, 320)), (["--input-size", "256", "384"], (256, 384)),
                        (["--input-height", "224", "--input-width", "96"], (224, 96)), ([], (512, 512))):
        args = parser.parse_args(base + flags)
        assert (args.input_height, args.input_width) == want, flags
        assert not hasattr(args, "input_size")  # one setting, whichever flag gave it


@pytest.mark.parametrize("command", list(NETWORK_COMMANDS))
def test_argument_errors_show_the_subcommands_usage(command):
    for bad in (["--input-size", "1", "2", "3"], ["--input-size", "x"], ["--no-such-flag"]):
        proc = run_cli(*NETWORK_COMMANDS[command], *bad)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(f"usage: ssmvos {command} "), proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(f"ssmvos {command}: error: "), proc.stderr


def test_input_size_reaches_the_network(tmp_path, reference_checkpoint):
    """evaluate --input-size H W runs the network at H×W: a height below 193 is refused naming it,
    and a valid H W gives masks."""
    split = tmp_path / "split.json"
    split.write_text(json.dumps(davis_entries("blackswan", DAVIS16 / "Annotations" / "480p", [255], frames=2)))
    common = ["evaluate", "--split", split, "--resume", reference_checkpoint, "--device", "cpu", "--no-progress"]
    proc = run_cli(*common, "--save-dir", tmp_path / "low", "--input-size", 192, 256)
    assert proc.returncode == 1 and "input size 192x256" in proc.stderr, proc.stderr
    proc = run_cli(*common, "--save-dir", tmp_path / "ok", "--input-size", 224, 160)
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "ok" / "blackswan" / "255").glob("*.png"))) == 2


# --------------------------------------------------------------------------- permissions
WRITE_EVERYTHING = """
import json, os, sys
import numpy as np, torch
from pathlib import Path
from ssmvos.atomic import write_json_atomic
from ssmvos.checkpoint import save_checkpoint
from ssmvos.data.io import write_gray_png, write_palette_png
from ssmvos.fetch import download
from ssmvos.inference.overlay import OverlayWriter

out = Path(sys.argv[1])
write_palette_png(out / "labels.png", np.zeros((4, 4), np.uint8))
write_gray_png(out / "soft.png", np.zeros((4, 4), np.uint8))
write_json_atomic(out / "split.json", [])
save_checkpoint(out / "model.pt", {"w": torch.zeros(2)}, 0)
video = OverlayWriter(out / "overlay.mp4", 16, 16, 10.0)
video.write(np.zeros((16, 16, 3), np.uint8))
video.close()
(out / "source.bin").write_bytes(b"x" * 100)
download((out / "source.bin").as_uri(), out / "fetched.bin", progress=False, resume=False)
"""


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640)])
def test_outputs_get_the_permissions_of_a_plain_open(tmp_path, umask, mode):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", WRITE_EVERYTHING, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=SUBPROCESS_TIMEOUT, preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stderr
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert set(modes) == {"labels.png", "soft.png", "split.json", "model.pt", "overlay.mp4", "source.bin",
                          "fetched.bin"}
    assert modes == dict.fromkeys(modes, mode)


def test_cli_outputs_are_readable_by_others(tmp_path):
    """merge and index under umask 022 write 0644 files."""
    from ssmvos.data.io import write_gray_png

    write_gray_png(tmp_path / "in" / "v" / "1" / "00000.png", np.full((4, 4), 200, np.uint8))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-m", "ssmvos", "merge", "-i", str(tmp_path / "in"), "-o",
                           str(tmp_path / "out")], env=env, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT, preexec_fn=lambda: os.umask(0o022))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((tmp_path / "out" / "v" / "00000.png").stat().st_mode) == 0o644


# --------------------------------------------------------------------------- help
def test_every_flag_has_a_help_line_with_its_default():
    for name, parser in subparsers().items():
        for action in parser._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            flag = action.option_strings[-1]
            assert action.help and action.help.strip(), f"ssmvos {name} {flag} has no help"
            if action.default not in (None, argparse.SUPPRESS) and not isinstance(action.default, bool):
                entry = parser._get_formatter()._format_action(action)  # the lines --help shows for it
                assert "default" in entry, f"ssmvos {name} {flag}: no default in {entry!r}"


def test_help_texts_are_wrapped_to_the_terminal():
    env = {"COLUMNS": "80"}
    for name in subparsers():
        proc = run_cli(name, "--help", env=env)
        assert proc.returncode == 0, proc.stderr
        long_lines = [line for line in proc.stdout.splitlines() if len(line) > 80 and " " in line.strip()]
        assert not long_lines, f"ssmvos {name} --help: {long_lines}"
    train_help = run_cli("train", "--help", env=env).stdout
    assert "(default 0.9)" in train_help and "(default 123)" in train_help and "--input-size N | H W" in train_help


# --------------------------------------------------------------------------- overlay codec
def _fourcc(path: Path) -> str:
    cap = cv2.VideoCapture(str(path))
    try:
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
        return code.to_bytes(4, "little").decode("ascii", "replace").lower()
    finally:
        cap.release()


def test_overlay_is_h264_or_says_why_not(tmp_path, capfd):
    from ssmvos.inference.overlay import MP4V_NOTICE, OverlayWriter

    writer = OverlayWriter(tmp_path / "o.mp4", 33, 17, 25.0)  # odd sizes: H.264 needs even ones
    for level in (0, 120, 240):
        writer.write(np.full((17, 33, 3), level, np.uint8))
    writer.close()
    err = capfd.readouterr().err
    if writer.codec == "h264":
        assert _fourcc(tmp_path / "o.mp4") in ("h264", "avc1") and MP4V_NOTICE not in err
    else:
        assert err.strip() == MP4V_NOTICE
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == 3


def test_overlay_without_an_h264_encoder_falls_back_with_one_notice(tmp_path, capfd, monkeypatch):
    from ssmvos.inference import overlay

    monkeypatch.setattr(overlay, "_pyav_h264", lambda *args: None)
    real = overlay._opencv
    monkeypatch.setattr(overlay, "_opencv", lambda path, w, h, fps, fourcc, quiet: None if fourcc == "avc1"
                        else real(path, w, h, fps, fourcc, quiet))
    writer = overlay.OverlayWriter(tmp_path / "o.mp4", 32, 16, 25.0)
    writer.write(np.zeros((16, 32, 3), np.uint8))
    writer.close()
    assert writer.codec == "mp4v" and _fourcc(tmp_path / "o.mp4") in ("mp4v", "fmp4")
    assert capfd.readouterr().err.strip().splitlines() == [overlay.MP4V_NOTICE]


# --------------------------------------------------------------------------- merged output of a split
def test_trimmed_split_merges_and_scores_only_its_frames(tmp_path, reference_checkpoint):
    split = tmp_path / "split.json"
    split.write_text(json.dumps(davis_entries("blackswan", DAVIS16 / "Annotations" / "480p", [255], frames=4)))
    proc = run_cli("evaluate", "--split", split, "--resume", reference_checkpoint, "--save-dir", tmp_path / "soft",
                   "--merged-dir", tmp_path / "merged", "--score", "--input-size", 224, "--device", "cpu",
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.stem for p in (tmp_path / "merged" / "blackswan").iterdir()) == [f"{k:05d}" for k in range(4)]
    assert "blackswan_1" in proc.stdout  # scored (frames 1 and 2), not failed on the 46 frames left out


def test_late_objects_get_background_frames_before_them_only(tmp_path, model):
    """YouTube-VOS style: the only object starts at the third frame of a five-frame folder and the
    split ends at the fourth; merged output: background for frames 0-1, masks for 2-3, no frame 4."""
    from ssmvos.inference.engine import Engine
    from ssmvos.runtime import RuntimeSpec
    from ssmvos.inference.evaluate import evaluate_split

    frames = tmp_path / "JPEGImages" / "v"
    frames.mkdir(parents=True)
    sources = sorted((DAVIS16 / "JPEGImages" / "480p" / "blackswan").glob("*.jpg"))[:5]
    for k, src in enumerate(sources):
        (frames / f"{5 * k:05d}.jpg").symlink_to(src)
    anns = sorted((DAVIS16 / "Annotations" / "480p" / "blackswan").glob("*.png"))
    entries = [dict(image_path=str(frames / f"{5 * k:05d}.jpg"), mask_path=str(anns[2]), video_name="v", num_frames=2,
                    frame_index=k - 2, object_index=255) for k in (2, 3)]
    engine = Engine.for_model(model, (224, 224), RuntimeSpec(device="cpu"))
    evaluate_split(entries, engine, tmp_path / "soft", tmp_path / "merged", progress=False)
    merged = tmp_path / "merged" / "v"
    assert sorted(p.name for p in merged.iterdir()) == ["00000.png", "00005.png", "00010.png", "00015.png"]
    assert read_mask(merged / "00000.png").max() == 0 and read_mask(merged / "00005.png").max() == 0
    assert read_mask(merged / "00010.png").max() == 255  # the given mask of the late object


# --------------------------------------------------------------------------- test hygiene
SUBPROCESS_CALLS = {"run", "Popen", "check_output", "check_call", "call", "communicate", "wait", "run_cli", "torchrun"}


def test_no_subprocess_timeout_below_the_suites_constant():
    """Subprocesses of the tests wait SUBPROCESS_TIMEOUT (conftest), never a number of their own."""
    found = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            for kw in node.keywords:
                if name in SUBPROCESS_CALLS and kw.arg == "timeout" and isinstance(kw.value, ast.Constant):
                    found.append(f"{path.name}:{node.lineno} timeout={kw.value.value}")
    assert not found, found
    assert SUBPROCESS_TIMEOUT >= 600


def test_temporary_folders_of_passing_tests_are_removed(pytestconfig):
    """Checkpoints are ~210 MB (with training state ~640 MB): passing tests must not leave them."""
    assert pytestconfig.getini("tmp_path_retention_policy") == "failed"
