"""ssmvos.fetch.download against a local HTTP server: streaming, resume, checks, errors."""
from __future__ import annotations

import os
import socket
import urllib.error

import pytest

from local_http import LocalServer, refused_url
from ssmvos import fetch as download_module
from ssmvos.fetch import download, human_size
from ssmvos.errors import SSMVOSError

DATA = os.urandom(300_000)


@pytest.fixture
def server():
    with LocalServer() as srv:
        srv.add("data.bin", DATA)
        yield srv


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_download_writes_the_file_and_nothing_else(server, tmp_path):
    dest = tmp_path / "sub" / "data.bin"
    assert download(server.url("data.bin"), dest, progress=False) == dest
    assert dest.read_bytes() == DATA
    assert leftovers(dest.parent) == ["data.bin"]


def test_download_without_content_length(server, tmp_path):
    server.fault("data.bin", "no-length")
    dest = download(server.url("data.bin"), tmp_path / "d.bin", progress=False)
    assert dest.read_bytes() == DATA


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    dest = tmp_path / "data.bin"
    half = len(DATA) // 2
    server.fault("data.bin", "truncate", keep=half)
    with pytest.raises(SSMVOSError) as info:
        download(server.url("data.bin"), dest, progress=False)
    msg = str(info.value)
    assert server.url("data.bin") in msg and "again to resume" in msg and "\n" not in msg
    assert not dest.exists()
    part = tmp_path / "data.bin.part"
    assert part.read_bytes() == DATA[:half]

    download(server.url("data.bin"), dest, progress=False)
    assert dest.read_bytes() == DATA
    assert not part.exists()
    second = server.requests_for("data.bin")[-1]
    assert second.get("Range") == f"bytes={half}-"


def test_resume_restarts_when_the_server_ignores_the_range(server, tmp_path):
    part = tmp_path / "data.bin.part"
    part.write_bytes(b"x" * 1000)  # wrong bytes: a resume would keep them
    server.fault("data.bin", "ignore-range")
    dest = download(server.url("data.bin"), tmp_path / "data.bin", progress=False)
    assert [h.get("Range") for h in server.requests_for("data.bin")] == ["bytes=1000-"]  # its 200 body is used
    assert dest.read_bytes() == DATA
    assert not part.exists()


def test_resume_restarts_when_the_partial_file_is_too_long(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(b"y" * (len(DATA) + 10))  # server answers 416
    dest = download(server.url("data.bin"), tmp_path / "data.bin", progress=False)
    assert dest.read_bytes() == DATA
    assert [h.get("Range") for h in server.requests_for("data.bin")] == [f"bytes={len(DATA) + 10}-", None]


def test_no_resume_ignores_and_removes_an_old_partial_file(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(b"z" * 10)
    server.fault("data.bin", "truncate", keep=1000)
    with pytest.raises(SSMVOSError, match="closed early"):
        download(server.url("data.bin"), tmp_path / "data.bin", progress=False, resume=False)
    assert "Range" not in server.requests_for("data.bin")[0]
    assert leftovers(tmp_path) == ["data.bin.part"]  # the old one is not ours to delete
    download(server.url("data.bin"), tmp_path / "data.bin", progress=False, resume=False)
    assert (tmp_path / "data.bin").read_bytes() == DATA


def test_truncated_transfer_without_keep_partial_leaves_nothing(server, tmp_path):
    server.fault("data.bin", "truncate", keep=5000)
    with pytest.raises(SSMVOSError, match=r"closed early after 4\.9 KiB of 293\.0 KiB"):
        download(server.url("data.bin"), tmp_path / "data.bin", progress=False, keep_partial=False)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors_name_the_url_and_status(server, tmp_path, status):
    server.fault("data.bin", "status", status=status)
    with pytest.raises(SSMVOSError) as info:
        download(server.url("data.bin"), tmp_path / "data.bin", progress=False)
    msg = str(info.value)
    assert server.url("data.bin") in msg and f"HTTP {status}" in msg and "by hand" in msg
    assert leftovers(tmp_path) == []


def test_connection_refused(tmp_path):
    url = refused_url("data.bin")
    with pytest.raises(SSMVOSError) as info:
        download(url, tmp_path / "data.bin", progress=False, hint="do something else")
    assert str(info.value) == f"cannot download {url}: the connection was refused; do something else"
    assert leftovers(tmp_path) == []


def test_unknown_host_says_offline(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(download_module.urllib.request, "urlopen", offline)
    with pytest.raises(SSMVOSError, match="could not be resolved .* are you offline"):
        download("https://example.invalid/x.bin", tmp_path / "x.bin", progress=False)
    assert leftovers(tmp_path) == []


def test_stalled_server_times_out_and_keeps_the_partial_file(server, tmp_path):
    server.fault("data.bin", "stall", keep=1000, seconds=3)
    with pytest.raises(SSMVOSError, match="timed out"):
        download(server.url("data.bin"), tmp_path / "data.bin", progress=False, timeout=0.3)
    assert (tmp_path / "data.bin.part").stat().st_size == 1000


def test_failed_download_keeps_the_existing_file(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"old")
    server.fault("data.bin", "status", status=404)
    with pytest.raises(SSMVOSError):
        download(server.url("data.bin"), dest, progress=False)
    assert dest.read_bytes() == b"old"


def test_rejected_file_is_removed(server, tmp_path):
    seen = []

    def verify(path):
        seen.append(path.read_bytes() == DATA and path.name.endswith(".part"))
        raise SSMVOSError("not what we wanted")

    dest = tmp_path / "data.bin"
    dest.write_bytes(b"old")
    with pytest.raises(SSMVOSError, match="not what we wanted"):
        download(server.url("data.bin"), dest, progress=False, verify=verify)
    assert seen == [True]
    assert leftovers(tmp_path) == ["data.bin"] and dest.read_bytes() == b"old"


def test_accepted_file_replaces_the_old_one(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"old")
    download(server.url("data.bin"), dest, progress=False, verify=lambda p: None)
    assert dest.read_bytes() == DATA and leftovers(tmp_path) == ["data.bin"]


def test_progress_line_goes_to_stderr(server, tmp_path, capsys):
    download(server.url("data.bin"), tmp_path / "data.bin", progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert f"Downloading {server.url('data.bin')} (293.0 KiB)" in err


def test_human_size():
    assert [human_size(n) for n in (None, 5, 2048, 3 * 1024**3)] == ["unknown size", "5 B", "2.0 KiB", "3.0 GiB"]


def test_partial_file_survives_a_server_error(server, tmp_path):
    dest = tmp_path / "data.bin"
    server.fault("data.bin", "truncate", keep=100_000)
    with pytest.raises(SSMVOSError):
        download(server.url("data.bin"), dest, progress=False)
    server.fault("data.bin", "status", status=500)
    with pytest.raises(SSMVOSError, match="HTTP 500"):
        download(server.url("data.bin"), dest, progress=False)
    assert (tmp_path / "data.bin.part").stat().st_size == 100_000
    download(server.url("data.bin"), dest, progress=False)
    assert dest.read_bytes() == DATA
    assert server.requests_for("data.bin")[-1].get("Range") == "bytes=100000-"


@pytest.mark.skipif(download_module.fcntl is None, reason="needs POSIX file locks")
def test_second_download_of_the_same_file_is_refused(server, tmp_path):
    part = tmp_path / "data.bin.part"
    with open(part, "ab") as other:
        download_module.fcntl.flock(other.fileno(), download_module.fcntl.LOCK_EX)
        other.write(b"abc")
        other.flush()
        with pytest.raises(SSMVOSError, match="being written by another download"):
            download(server.url("data.bin"), tmp_path / "data.bin", progress=False)
    assert part.read_bytes() == b"abc" and server.requests == []
