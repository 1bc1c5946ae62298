"""The write helper: atomic files, one-line errors naming path and reason, leftovers of killed
writers recognised and cleaned; and the same on a real full or read-only file system."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SUBPROCESS_TIMEOUT
from ssmvos.atomic import (atomic_path, check_output_file, check_output_folder, is_temporary, remove_temporaries,
                           write_text_atomic)
from ssmvos.errors import SSMVOSError
from ssmvos.training.outputs import check_run_folder, existing_checkpoints
from builders import assert_complete


def test_failed_write_is_one_line_and_leaves_the_old_file(tmp_path):
    target = write_text_atomic(tmp_path / "a.json", "old")
    with pytest.raises(SSMVOSError) as info:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert str(info.value) == f"cannot write {target}: no space left on the device"
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.json"]
    (tmp_path / "folder").mkdir()
    with pytest.raises(SSMVOSError, match="folder: it is a directory"):
        write_text_atomic(tmp_path / "folder", "x")
    assert sorted(os.listdir(tmp_path)) == ["a.json", "folder"]  # no temporary left


def test_outputs_are_checked_without_creating_anything(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SSMVOSError, match="is a directory, not a file"):
        check_output_file(tmp_path, "--json")
    with pytest.raises(SSMVOSError, match="exists and is not a folder"):
        check_output_folder(tmp_path / "file", "--out")
    with pytest.raises(SSMVOSError, match="file is a file, not a folder"):
        check_output_file(tmp_path / "file" / "deeper" / "x.json", "--json")
    with pytest.raises(SSMVOSError, match="does not exist"):
        check_output_file(tmp_path / "missing" / "x.json", "--json", folder_must_exist=True)
    check_output_folder(tmp_path / "new" / "deeper", "--out")
    check_output_file(tmp_path / "new2" / "x.json", "--json")
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_leftovers_of_killed_writers_are_recognised_and_cleaned(tmp_path):
    leftovers = [".00000.png.k3j_x9a2.png", ".12.pt.abcdefgh.tmp", ".overlay.mp4.0a1b2c3d.mp4"]
    kept = ["00000.png", ".hidden", ".00000.png", "a.b.c.png", ".x.toolongname.png"]
    for name in leftovers + kept:
        (tmp_path / name).write_bytes(b"")
    assert [n for n in leftovers + kept if is_temporary(n)] == leftovers
    assert remove_temporaries(tmp_path) == 3
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
    # a run folder whose only checkpoint file is a killed save's temporary holds no checkpoint
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / ".4.pt.abcdefgh.tmp").write_bytes(b"")
    assert existing_checkpoints(tmp_path / "run") == {}
    check_run_folder(tmp_path / "run", None)
    (tmp_path / "run" / "checkpoints" / "4.pt").write_bytes(b"")
    check_run_folder(tmp_path / "run", 4)  # continuing from the last checkpoint
    with pytest.raises(SSMVOSError, match="holds checkpoints after step 2 \\(4.pt\\)"):
        check_run_folder(tmp_path / "run", 2)


# --------------------------------------------------------------------------- a real file system
def _namespace_mounts() -> bool:
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"],
                           capture_output=True, timeout=SUBPROCESS_TIMEOUT)
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(not _namespace_mounts(), reason="needs unshare with mount namespaces (tiny tmpfs)")


def _in_tmpfs(mount: Path, size: str, command: list, read_only: bool = False) -> subprocess.CompletedProcess:
    """Run ``python -m ssmvos COMMAND`` with a tmpfs of ``size`` mounted at ``mount`` (in a private
    mount namespace); what the tmpfs holds afterwards is copied to ``<mount>.after``."""
    mount.mkdir(exist_ok=True)
    after = mount.with_name(mount.name + ".after")
    after.mkdir()
    remount = f" && mount -o remount,ro {mount}" if read_only else ""
    script = (f"mount -t tmpfs -o size={size} tmpfs {mount}{remount} && " + " ".join(
        [sys.executable, "-m", "ssmvos", *map(str, command)]) + f"; status=$?; cp -a {mount}/. {after}; exit $status")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(["unshare", "-Urm", "sh", "-c", script], env=env, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)


@needs_mounts
def test_merge_onto_a_full_disk(tmp_path):
    from ssmvos.data.io import write_gray_png

    rng = np.random.default_rng(0)
    for k in range(4):
        for obj in (1, 2):  # noise: the merged label maps compress badly (~24 KB each)
            write_gray_png(tmp_path / "in" / "v" / str(obj) / f"{k:05d}.png", rng.integers(0, 256, (300, 400),
                                                                                          dtype=np.uint8))
    proc = _in_tmpfs(tmp_path / "disk", "40k", ["merge", "-i", tmp_path / "in", "-o", tmp_path / "disk" / "out"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]  # (merge also draws a progress bar)
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"ssmvos merge: error: cannot write {tmp_path / 'disk' / 'out' / 'v'}/0000")
    assert lines[0].endswith(".png: no space left on the device"), lines[0]
    written = sorted((tmp_path / "disk.after" / "out" / "v").iterdir())
    assert 1 <= len(written) < 4  # the frames merged before the disk filled up ...
    assert_complete(tmp_path / "disk.after")  # ... are complete, and no temporary file is left


@needs_mounts
def test_score_json_onto_a_read_only_file_system(tmp_path):
    from ssmvos.data.io import write_palette_png

    for k in range(3):
        labels = np.zeros((8, 8), np.uint8)
        labels[2:6, 2:6] = 1
        write_palette_png(tmp_path / "ann" / "v" / f"{k:05d}.png", labels)
    proc = _in_tmpfs(tmp_path / "ro", "64k", ["score", "--annotations", tmp_path / "ann", "--results", tmp_path / "ann",
                                             "--json", tmp_path / "ro" / "s.json"], read_only=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [f"ssmvos score: error: cannot write {tmp_path / 'ro' / 's.json'}: "
                                                "read-only file system"]
    assert "J&F" not in proc.stdout  # refused before scoring
