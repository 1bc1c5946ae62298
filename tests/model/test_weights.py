"""Published checkpoints and ImageNet weights, fetched from a local HTTP server."""
from __future__ import annotations

import filecmp
import hashlib
import io
import stat

import pytest
import torch
from torch import nn

from conftest import assert_clean_error, run_cli
from local_http import LocalServer, refused_url
from ssmvos import SSM, weights
from ssmvos.atomic import default_file_mode
from ssmvos.checkpoint import read_checkpoint, save_checkpoint
from ssmvos.errors import SSMVOSError
from ssmvos.model import resnet50
from ssmvos.weights import (
    cache_dir,
    fetch_published,
    imagenet_state_dict,
    init_encoder_from_imagenet,
    published_path,
    published_url,
    resolve_weights,
)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Every test gets its own empty cache; no URL redirections leak in."""
    home = tmp_path / "home"
    monkeypatch.setenv("SSMVOS_HOME", str(home))
    monkeypatch.delenv("SSMVOS_WEIGHTS_URL", raising=False)
    monkeypatch.delenv("SSMVOS_IMAGENET_URL", raising=False)
    return home


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def real_checkpoint(tmp_path_factory):
    """A checkpoint of the default SSM network (resnet50, conv, 32) in the published format (~210 MB)."""
    path = tmp_path_factory.mktemp("published") / "ssm_default.pt"
    torch.manual_seed(0)
    save_checkpoint(path, SSM().state_dict(), 1234)
    return path


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 2, 3)
        self.bn = nn.BatchNorm2d(2)


def checkpoint_bytes(module: nn.Module, step: int = 7) -> bytes:
    buf = io.BytesIO()
    torch.save({"model_dict": module.state_dict(), "global_step": step}, buf)
    return buf.getvalue()


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ---------------------------------------------------------------------------------------
# published checkpoints


def test_published_addresses_and_cache_location(home, monkeypatch):
    assert cache_dir() == home
    assert published_path("davis17") == home / "checkpoints" / "ssm_davis17.pt"
    assert published_url("youtube") == "https://www.dropbox.com/s/jm24vm2puprcldz/ssm_youtube.pt?dl=1"
    monkeypatch.setenv("SSMVOS_WEIGHTS_URL", "http://mirror.example/ssm/")
    assert published_url("davis16") == "http://mirror.example/ssm/ssm_davis16.pt"
    monkeypatch.setenv("SSMVOS_HOME", str(home / "elsewhere"))  # read at call time
    assert published_path("davis16") == home / "elsewhere" / "checkpoints" / "ssm_davis16.pt"
    monkeypatch.delenv("SSMVOS_HOME")
    assert cache_dir().parts[-2:] == (".cache", "ssmvos")


def test_fetch_published_real_checkpoint_end_to_end(server, real_checkpoint, home):
    server.add("ssm_davis16.pt", real_checkpoint)
    path = fetch_published("davis16", base_url=server.base_url, progress=False)
    assert path == home / "checkpoints" / "ssm_davis16.pt"
    assert filecmp.cmp(path, real_checkpoint, shallow=False)
    assert files_under(home) == ["checkpoints/ssm_davis16.pt"]
    assert stat.S_IMODE(path.stat().st_mode) == default_file_mode()  # as open() makes it, not mkstemp's 0600
    assert read_checkpoint(path).global_step == 1234
    # cached: no second request, even with the network gone
    assert fetch_published("davis16", base_url=refused_url().rsplit("/", 1)[0], progress=False) == path
    assert len(server.requests_for("ssm_davis16.pt")) == 1


def test_checkpoint_of_another_network_is_rejected(server, home):
    server.add("ssm_davis17.pt", checkpoint_bytes(Tiny()))
    with pytest.raises(SSMVOSError) as info:
        fetch_published("davis17", base_url=server.base_url, progress=False)
    msg = str(info.value)
    assert "does not fit the network" in msg and "encoder.conv1.weight" in msg
    assert "https://www.dropbox.com/s/ew2d2gy3rldxob9/ssm_davis17.pt?dl=1" in msg and "--weights" in msg
    assert files_under(home) == []


def test_file_that_is_no_checkpoint_is_rejected(server, home):
    server.add("ssm_davis16.pt", b"<html><body>Dropbox: sign in to continue</body></html>" * 50)
    with pytest.raises(SSMVOSError, match="is not a PyTorch checkpoint: it starts with .<html><body>Dropbox") as info:
        fetch_published("davis16", base_url=server.base_url, progress=False)
    assert "\n" not in str(info.value) and "--resume" in str(info.value)
    assert files_under(home) == []


def test_truncated_checkpoint_leaves_nothing(server, home):
    data = checkpoint_bytes(Tiny())
    server.add("ssm_youtube.pt", data)
    server.fault("ssm_youtube.pt", "truncate", keep=len(data) // 3)
    with pytest.raises(SSMVOSError, match="closed early.*by hand from https://www.dropbox.com"):
        fetch_published("youtube", base_url=server.base_url, progress=False)
    assert files_under(home) == []


def test_short_file_without_content_length_fails_the_checkpoint_check(server, home):
    data = checkpoint_bytes(Tiny())
    server.add("ssm_davis16.pt", data)
    server.fault("ssm_davis16.pt", "truncate", keep=len(data) // 2, send_length=False)  # undetectable by size
    with pytest.raises(SSMVOSError, match="not a valid SSM checkpoint: it is damaged or not a PyTorch checkpoint file"):
        fetch_published("davis16", base_url=server.base_url, progress=False)
    assert files_under(home) == []


@pytest.mark.parametrize("status", [404, 500])
def test_http_error_leaves_nothing(server, home, status):
    server.fault("ssm_davis16.pt", "status", status=status)
    with pytest.raises(SSMVOSError, match=f"HTTP {status}"):
        fetch_published("davis16", base_url=server.base_url, progress=False)
    assert files_under(home) == []


def test_server_down_leaves_nothing(home):
    with pytest.raises(SSMVOSError, match="connection was refused.*download it by hand"):
        fetch_published("davis16", base_url=refused_url().rsplit("/", 1)[0], progress=False)
    assert files_under(home) == []


def test_force_replaces_only_after_a_good_download(server, home, monkeypatch):
    monkeypatch.setattr(weights, "_expected_network", Tiny)  # small stand-in for the default network
    cached = published_path("davis16")
    cached.parent.mkdir(parents=True)
    old = checkpoint_bytes(Tiny(), step=1)
    cached.write_bytes(old)
    server.fault("ssm_davis16.pt", "status", status=404)
    with pytest.raises(SSMVOSError):
        fetch_published("davis16", force=True, base_url=server.base_url, progress=False)
    assert cached.read_bytes() == old and files_under(home) == ["checkpoints/ssm_davis16.pt"]
    server.add("ssm_davis16.pt", checkpoint_bytes(Tiny(), step=99))
    assert fetch_published("davis16", base_url=server.base_url, progress=False).read_bytes() == old
    fetch_published("davis16", force=True, base_url=server.base_url, progress=False)
    assert read_checkpoint(cached).global_step == 99


def test_resolve_weights(server, home, tmp_path, monkeypatch):
    own = tmp_path / "mine.pt"
    own.write_bytes(b"anything")
    assert resolve_weights(own) == own
    assert resolve_weights(str(own)) == own
    monkeypatch.setattr(weights, "_expected_network", Tiny)
    server.add("ssm_davis17.pt", checkpoint_bytes(Tiny()))
    monkeypatch.setenv("SSMVOS_WEIGHTS_URL", server.base_url)  # read at call time
    path = resolve_weights("davis17", progress=False)
    assert path == home / "checkpoints" / "ssm_davis17.pt" and path.is_file()
    assert resolve_weights("davis17") == path and len(server.requests_for("ssm_davis17.pt")) == 1
    with pytest.raises(SSMVOSError) as info:
        resolve_weights(tmp_path / "missing.pt")
    msg = str(info.value)
    assert "missing.pt: no such checkpoint file" in msg and "davis16, davis17, youtube" in msg


def test_cli_download_real_checkpoint(server, real_checkpoint, home):
    server.add("ssm_davis17.pt", real_checkpoint)
    env = {"SSMVOS_HOME": str(home), "SSMVOS_WEIGHTS_URL": server.base_url}
    proc = run_cli("download", "davis17", env=env)
    assert proc.returncode == 0, proc.stderr
    want = home / "checkpoints" / "ssm_davis17.pt"
    assert proc.stdout.strip() == str(want)
    assert filecmp.cmp(want, real_checkpoint, shallow=False)
    # again: cached, says so, no request
    proc = run_cli("download", "davis17", env={**env, "SSMVOS_WEIGHTS_URL": refused_url().rsplit("/", 1)[0]})
    assert proc.returncode == 0 and proc.stdout.strip() == str(want)
    assert "already downloaded" in proc.stderr
    assert len(server.requests_for("ssm_davis17.pt")) == 1


def test_a_damaged_cached_copy_is_fetched_again(server, real_checkpoint, home):
    """A cached checkpoint cut short after it was cached (a full disk, a copy by hand) is not
    'already downloaded': download and the commands that resolve 'davis17' fetch it again."""
    server.add("ssm_davis17.pt", real_checkpoint)
    env = {"SSMVOS_HOME": str(home), "SSMVOS_WEIGHTS_URL": server.base_url}
    cached = home / "checkpoints" / "ssm_davis17.pt"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(real_checkpoint.read_bytes()[:4096])
    proc = run_cli("download", "davis17", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "cached davis17 is unreadable" in proc.stderr and "already downloaded" not in proc.stderr
    assert filecmp.cmp(cached, real_checkpoint, shallow=False)


def test_cli_download_errors_cleanly(server, home):
    env = {"SSMVOS_HOME": str(home), "SSMVOS_WEIGHTS_URL": server.base_url}
    proc = run_cli("download", "youtube", env=env)
    assert_clean_error(proc, "ssmvos download: error:", "ssm_youtube.pt", "HTTP 404", "--weights")
    assert files_under(home) == []
    help_text = run_cli("download", "--help").stdout
    assert "SSMVOS_WEIGHTS_URL" in help_text and "SSMVOS_HOME" in help_text


# ---------------------------------------------------------------------------------------
# ImageNet weights


@pytest.fixture(scope="session")
def fake_imagenet():
    """A torchvision-format ResNet-50 state dict (3-channel conv1, fc) and its hub file name."""
    gen = torch.Generator().manual_seed(1)
    encoder = resnet50(in_chans=3)
    state = {k: (torch.randn(v.shape, generator=gen) if v.is_floating_point() else v)
             for k, v in encoder.state_dict().items()}
    state["fc.weight"] = torch.randn(1000, 2048, generator=gen)
    state["fc.bias"] = torch.randn(1000, generator=gen)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    return f"resnet50-{hashlib.sha256(data).hexdigest()[:8]}.pth", data, state


def test_init_encoder_from_imagenet(server, fake_imagenet, home):
    name, data, state = fake_imagenet
    server.add(name, data)
    torch.manual_seed(0)
    model = SSM()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    init_encoder_from_imagenet(model, torch.Generator().manual_seed(3), url=server.url(name), progress=False)
    after = model.state_dict()
    conv1 = after["encoder.conv1.weight"]
    assert conv1.shape == (64, 4, 7, 7)
    assert torch.equal(conv1[:, :3], state["conv1.weight"])
    assert 0.8e-4 < conv1[:, 3].std().item() < 1.2e-4 and abs(conv1[:, 3].mean().item()) < 2e-5
    for key, value in state.items():
        if key != "conv1.weight" and not key.startswith("fc."):
            assert torch.equal(after[f"encoder.{key}"], value), key
    for key, value in before.items():
        if not key.startswith("encoder."):
            assert torch.equal(after[key], value), key
    assert files_under(home) == [f"hub/{name}"]
    # cached: a second call needs no network
    again = imagenet_state_dict("resnet50", url=refused_url(name), progress=False)
    assert torch.equal(again["layer4.2.conv3.weight"], state["layer4.2.conv3.weight"])


def test_imagenet_mirror_env_var(server, fake_imagenet, monkeypatch, capsys):
    name, data, _ = fake_imagenet
    server.add(name, data)
    monkeypatch.setitem(weights.IMAGENET_URLS, "resnet50", f"https://download.pytorch.org/models/{name}")
    monkeypatch.setenv("SSMVOS_IMAGENET_URL", server.base_url)
    state = imagenet_state_dict("resnet50", progress=False)
    assert "fc.weight" in state and len(server.requests_for(name)) == 1
    assert capsys.readouterr().out == ""  # torch.hub's notice goes to stderr, not stdout


def test_imagenet_checksum_mismatch_leaves_nothing(server, fake_imagenet, home):
    _, data, _ = fake_imagenet
    server.add("resnet50-deadbeef.pth", data)
    with pytest.raises(SSMVOSError, match="does not match its published checksum.*--no-pretrained"):
        imagenet_state_dict("resnet50", url=server.url("resnet50-deadbeef.pth"), progress=False)
    assert files_under(home) == []


@pytest.mark.parametrize("status", [None, 404])
def test_imagenet_unreachable(server, home, status):
    url = refused_url("resnet50-0676ba61.pth") if status is None else server.url("resnet50-0676ba61.pth")
    with pytest.raises(SSMVOSError) as info:
        init_encoder_from_imagenet(SSM(), url=url, progress=False)
    msg = str(info.value)
    assert msg.startswith(f"ImageNet weights could not be fetched from {url} (")
    assert ("connection was refused" if status is None else "HTTP 404") in msg
    assert "--no-pretrained" in msg and "\n" not in msg
    assert files_under(home) == []


def test_imagenet_corrupt_cached_file(home):
    cached = home / "hub" / "resnet50-0676ba61.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not a torch file")
    with pytest.raises(SSMVOSError, match="resnet50-0676ba61.pth is not a readable ImageNet weight file.*delete it"):
        imagenet_state_dict("resnet50", progress=False)


def test_imagenet_weights_of_another_network(server, home):
    buf = io.BytesIO()
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 64)}, buf)
    name = f"resnet50-{hashlib.sha256(buf.getvalue()).hexdigest()[:8]}.pth"
    server.add(name, buf.getvalue())
    with pytest.raises(SSMVOSError, match="does not fit the network: missing keys: bn1.weight"):
        init_encoder_from_imagenet(SSM(), url=server.url(name), progress=False)


def test_no_imagenet_weights_for_unknown_arch():
    with pytest.raises(SSMVOSError, match="no ImageNet weights for encoder 'resnet18'"):
        imagenet_state_dict("resnet18")
