"""Shared test helpers: paths to ../shared and the reference-weight rule."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
#: The one time limit of every subprocess a test starts: generous, so that a busy CI machine
#: (2 cores shared with other jobs) never fails a test that is merely slow. A hung process
#: still ends the test.
SUBPROCESS_TIMEOUT = 1200
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = ROOT.parent / "shared"
DAVIS16 = SHARED / "data" / "DAVIS2016"
REFERENCE = SHARED / "reference"


def reference_tensor(name: str, shape, dtype=torch.float32) -> torch.Tensor:
    """The deterministic stand-in weight rule of ../shared/reference/reference_weights.py."""
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    shape = tuple(shape)
    if not dtype.is_floating_point:
        return torch.zeros(shape, dtype=dtype)
    if name.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=gen)
    if name.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=gen)
    if len(shape) == 1 and name.endswith("weight"):
        scale = 0.1 if name.endswith("bn3.weight") else 1.0
        return scale * (1.0 + 0.1 * torch.randn(shape, generator=gen))
    if len(shape) == 1:
        return 0.1 * torch.randn(shape, generator=gen)
    fan_in = math.prod(shape[1:])
    return torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)


def fill_reference_weights(model: torch.nn.Module) -> dict:
    """Load reference weights into ``model`` in place; returns the state dict."""
    state = {k: reference_tensor(k, v.shape, v.dtype) for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    return state


@pytest.fixture(scope="session")
def reference_checkpoint(tmp_path_factory) -> Path:
    """One checkpoint file of the default network with the reference weights (about 210 MB),
    written once per test session and shared by every test that needs a checkpoint to load."""
    from ssmvos import SSM, save_checkpoint

    m = SSM()
    fill_reference_weights(m)
    return save_checkpoint(tmp_path_factory.mktemp("weights") / "reference.pt", m.state_dict(), 7)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """The default network (resnet50, conv, top-32) with the reference weights, in eval mode."""
    from ssmvos import SSM

    m = SSM().eval()
    fill_reference_weights(m)
    return m


def require_shared(path: Path) -> Path:
    """Skip (with the reason) when a ../shared resource is absent."""
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared folder)")
    return path


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want.double()).norm() / want.double().norm())


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m ssmvos ARGS`` from this checkout's sources; returns the completed process."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "ssmvos", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)


def assert_clean_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """A user error: non-zero exit, one line on stderr naming the problem, no traceback."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert lines, "no error message"
    last = lines[-1]
    for needle in needles:
        assert needle in last, f"{needle!r} not in {last!r}"


def davis_entries(video: str, annotations: Path, object_ids: list[int], frames: int | None = None,
                  images: Path | None = None) -> list[dict]:
    """Split entries (the original's format) for one DAVIS-layout video, built by hand."""
    images = images or DAVIS16 / "JPEGImages" / "480p"
    imgs = sorted((images / video).glob("*.jpg"))[:frames]
    anns = sorted((annotations / video).glob("*.png"))[: len(imgs)]
    return [dict(image_path=str(i), mask_path=str(a), video_name=video, num_frames=len(imgs), frame_index=t,
                 object_index=o) for o in object_ids for t, (i, a) in enumerate(zip(imgs, anns))]


def mean_soft_difference(got_dir: Path, want_dir: Path) -> tuple[float, int]:
    """Mean |difference| (in 0..255 levels, over all pixels) of same-named PNGs; and their count."""
    import numpy as np

    from ssmvos.data.io import read_mask

    wanted = sorted(want_dir.rglob("*.png"))
    diffs = [np.abs(read_mask(got_dir / p.relative_to(want_dir)).astype(np.float64) - read_mask(p)).mean()
             for p in wanted]
    return float(np.mean(diffs)), len(wanted)


def label_agreement(got_dir: Path, want_dir: Path) -> float:
    """Fraction of pixels equal over all same-named label PNGs."""
    from ssmvos.data.io import read_mask

    wanted = sorted(want_dir.rglob("*.png"))
    equal = sum(int((read_mask(got_dir / p.relative_to(want_dir)) == read_mask(p)).sum()) for p in wanted)
    total = sum(read_mask(p).size for p in wanted)
    return equal / total
