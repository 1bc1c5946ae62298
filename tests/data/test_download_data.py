"""Dataset archives: download, check, unpack into place, from a local HTTP server."""
from __future__ import annotations

import io
import stat
import zipfile

import cv2
import numpy as np
import pytest

from conftest import assert_clean_error, run_cli
from local_http import LocalServer
from ssmvos.atomic import default_dir_mode
from ssmvos.data.datasets import default_roots
from ssmvos.data.download import dataset_url, download_dataset, manual_instructions, missing_folders
from ssmvos.errors import SSMVOSError

ZIP16 = "DAVIS-data.zip"


def davis_zip(top: str = "DAVIS", missing: tuple[str, ...] = (), seqs=("bear", "dog"), frames: int = 2,
              stored: bool = False) -> bytes:
    """A tiny archive in the DAVIS layout: <top>/{JPEGImages,Annotations}/480p/<seq>/*, ImageSets/480p/val.txt."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w", method) as zf:
        for seq in seqs:
            for i in range(frames):
                if "JPEGImages" not in missing:
                    img = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
                    zf.writestr(f"{top}/JPEGImages/480p/{seq}/{i:05d}.jpg", cv2.imencode(".jpg", img)[1].tobytes())
                if "Annotations" not in missing:
                    mask = np.zeros((24, 32), np.uint8)
                    mask[5:15, 8:20] = 255
                    zf.writestr(f"{top}/Annotations/480p/{seq}/{i:05d}.png", cv2.imencode(".png", mask)[1].tobytes())
        if "ImageSets" not in missing:
            zf.writestr(f"{top}/ImageSets/480p/val.txt",
                        "".join(f"/JPEGImages/480p/{s}/00000.jpg /Annotations/480p/{s}/00000.png\n" for s in seqs))
        zf.writestr(f"{top}/README.md", "DAVIS test archive\n")
    return buf.getvalue()


def unpacked_files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def no_redirect(monkeypatch):
    monkeypatch.delenv("SSMVOS_DATA_URL", raising=False)


def test_download_and_unpack(server, tmp_path):
    data = davis_zip()
    server.add(ZIP16, data)
    root = tmp_path / "datasets"
    target = download_dataset("davis2016", root, base_url=server.base_url, progress=False)
    assert target == root / "DAVIS2016"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = sorted(n[len("DAVIS/"):] for n in zf.namelist() if not n.endswith("/"))
        assert unpacked_files(target) == members
        assert (target / "JPEGImages/480p/dog/00001.jpg").read_bytes() == zf.read("DAVIS/JPEGImages/480p/dog/00001.jpg")
    assert listing(root) == ["DAVIS2016"]  # no archive, temporary folder or .downloads left
    assert stat.S_IMODE(target.stat().st_mode) == default_dir_mode()  # not the 0700 of a temporary folder


def test_interrupted_download_resumes(server, tmp_path):
    data = davis_zip(frames=6)
    server.add(ZIP16, data)
    server.fault(ZIP16, "truncate", keep=len(data) // 2)
    root = tmp_path / "datasets"
    with pytest.raises(SSMVOSError, match="again to resume"):
        download_dataset("davis2016", root, base_url=server.base_url, progress=False)
    assert listing(root) == [".downloads"]
    assert (root / ".downloads" / f"{ZIP16}.part").stat().st_size == len(data) // 2

    target = download_dataset("davis2016", root, base_url=server.base_url, progress=False)
    assert server.requests_for(ZIP16)[-1].get("Range") == f"bytes={len(data) // 2}-"
    assert not missing_folders(target) and len(unpacked_files(target / "JPEGImages")) == 12
    assert listing(root) == ["DAVIS2016"]


def corrupt(data: bytes) -> bytes:
    """Flip bytes inside the stored data of the first JPEG (the zip directory stays readable)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(".jpg"))
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 10
    broken = bytearray(data)
    broken[start:start + 8] = bytes(b ^ 0xFF for b in broken[start:start + 8])
    return bytes(broken)


@pytest.mark.parametrize("kind", ["crc", "not-zip"])
def test_damaged_archive_leaves_nothing(server, tmp_path, kind):
    data = corrupt(davis_zip(stored=True)) if kind == "crc" else b"<html>maintenance</html>" * 40
    server.add(ZIP16, data)
    root = tmp_path / "datasets"
    with pytest.raises(SSMVOSError) as info:
        download_dataset("davis2016", root, base_url=server.base_url, progress=False)
    msg = str(info.value)
    assert server.url(ZIP16) in msg and "damaged" in msg and "deleted" in msg
    assert ("00000.jpg inside it is corrupt" if kind == "crc" else "not a zip archive") in msg
    assert listing(root) == []


def test_http_error_leaves_nothing(server, tmp_path):
    root = tmp_path / "datasets"
    with pytest.raises(SSMVOSError) as info:
        download_dataset("davis2017", root, base_url=server.base_url, progress=False)
    msg = str(info.value)
    assert f"cannot download {server.url('DAVIS-2017-trainval-480p.zip')}: the server answered HTTP 404" in msg
    assert "https://data.vision.ee.ethz.ch/csergi/share/davis/DAVIS-2017-trainval-480p.zip by hand" in msg
    assert listing(root) == []


def test_archive_missing_annotations_leaves_nothing(server, tmp_path):
    server.add(ZIP16, davis_zip(missing=("Annotations",)))
    root = tmp_path / "datasets"
    with pytest.raises(SSMVOSError, match="has no Annotations folder.*nothing was unpacked"):
        download_dataset("davis2016", root, base_url=server.base_url, progress=False)
    assert listing(root) == []


def test_dataset_folder_nested_one_level_deeper(server, tmp_path):
    server.add("DAVIS-2017-test-dev-480p.zip", davis_zip(top="DAVIS-2017-test-dev/DAVIS"))
    target = download_dataset("davis2017-test", tmp_path, base_url=server.base_url, progress=False)
    assert target == tmp_path / "DAVIS2017_test"
    assert (target / "ImageSets/480p/val.txt").is_file() and not missing_folders(target)
    assert listing(tmp_path) == ["DAVIS2017_test"]


def test_existing_dataset_is_kept_unless_forced(server, tmp_path, capsys):
    server.add(ZIP16, davis_zip())
    target = tmp_path / "DAVIS2016"
    for name in ("JPEGImages", "Annotations", "ImageSets"):
        (target / name).mkdir(parents=True)
    (target / "mine.txt").write_text("keep me")
    assert download_dataset("davis2016", tmp_path, base_url=server.base_url) == target
    assert "already holds davis2016" in capsys.readouterr().err
    assert server.requests == [] and (target / "mine.txt").exists()

    download_dataset("davis2016", tmp_path, base_url=server.base_url, progress=False, force=True)
    assert not (target / "mine.txt").exists() and (target / "JPEGImages/480p/bear/00000.jpg").is_file()
    assert listing(tmp_path) == ["DAVIS2016"]


def test_incomplete_existing_folder_needs_force(server, tmp_path):
    (tmp_path / "DAVIS2017" / "JPEGImages").mkdir(parents=True)
    with pytest.raises(SSMVOSError, match=r"DAVIS2017 exists but lacks Annotations, ImageSets; .*--force"):
        download_dataset("davis2017", tmp_path, base_url=server.base_url, progress=False)
    assert server.requests == [] and listing(tmp_path / "DAVIS2017") == ["JPEGImages"]


def test_kept_archive_is_reused(server, tmp_path):
    server.add(ZIP16, davis_zip())
    download_dataset("davis2016", tmp_path, base_url=server.base_url, progress=False, keep_archive=True)
    assert listing(tmp_path / ".downloads") == [ZIP16]
    (tmp_path / "DAVIS2016").rename(tmp_path / "moved")
    download_dataset("davis2016", tmp_path, base_url=server.base_url, progress=False)
    assert len(server.requests_for(ZIP16)) == 1
    assert listing(tmp_path) == ["DAVIS2016", "moved"]


def test_names_urls_and_default_roots(monkeypatch, tmp_path):
    assert dataset_url("davis2016") == "https://graphics.ethz.ch/Downloads/Data/Davis/DAVIS-data.zip"
    monkeypatch.setenv("SSMVOS_DATA_URL", "http://mirror.example/davis/")
    assert dataset_url("davis2017_test") == "http://mirror.example/davis/DAVIS-2017-test-dev-480p.zip"
    for folder in ("DAVIS2016", "DAVIS2017", "DAVIS2017_test", "YouTubeVOS"):
        (tmp_path / folder).mkdir()
    assert default_roots(tmp_path) == {
        "davis2016": tmp_path / "DAVIS2016",
        "davis2017": tmp_path / "DAVIS2017",
        "davis2017_test": tmp_path / "DAVIS2017_test",
        "youtube": tmp_path / "YouTubeVOS",
    }
    for folder in ("DAVIS2016", "DAVIS2017", "DAVIS2017_test", "YouTubeVOS"):
        (tmp_path / folder).rmdir()
    with pytest.raises(SSMVOSError, match="unknown dataset 'davis2019'; choose one of davis2016, davis2017, "
                                          "davis2017_test, youtube"):
        download_dataset("davis2019", tmp_path)
    with pytest.raises(SSMVOSError, match="YouTube-VOS 2018 .* cannot be downloaded automatically"):
        download_dataset("youtube", tmp_path)
    assert listing(tmp_path) == []


def test_cli_download_data(server, tmp_path):
    server.add("DAVIS-2017-trainval-480p.zip", davis_zip())
    env = {"SSMVOS_DATA_URL": server.base_url}
    proc = run_cli("download-data", "davis2017", "--root", tmp_path / "ds", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "ds" / "DAVIS2017")
    assert not missing_folders(tmp_path / "ds" / "DAVIS2017")

    proc = run_cli("download-data", "davis2016", "--root", tmp_path / "ds", env=env)
    assert_clean_error(proc, "ssmvos download-data: error:", "HTTP 404", ZIP16)
    assert listing(tmp_path / "ds") == ["DAVIS2017"]


def test_cli_youtube_prints_instructions(tmp_path):
    proc = run_cli("download-data", "youtube", "--root", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == manual_instructions("youtube", tmp_path).strip()
    assert "https://youtube-vos.org/dataset/vos/" in proc.stdout and "CodaLab" in proc.stdout
    assert f"{tmp_path / 'YouTubeVOS'}/valid/meta.json" in proc.stdout
    assert listing(tmp_path) == []
