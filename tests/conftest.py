"""Shared test helpers: the vendored test data, where more DAVIS data is found, the
reference-weight rule, the ``golden`` and ``cuda`` markers and the device parameter."""
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
#: DAVIS 2016 blackswan, car-shadow and libby (every frame, 480p), vendored: the golden tests
#: and every other test that reads DAVIS frames run from these on any clone.
DAVIS16 = FIXTURES / "DAVIS2016"
#: The original code's outputs under the reference weights (see its README.md).
REFERENCE = FIXTURES / "reference"
#: The environment variable naming a full DAVIS 2016 root (or a folder holding ``DAVIS2016/``).
TEST_DATA_VARIABLE = "SSMVOS_TEST_DATA"


def davis2016_candidates() -> list[Path]:
    """Where a full DAVIS 2016 is looked for, in order: ``$SSMVOS_TEST_DATA``,
    ``datasets/DAVIS2016`` (what ``ssmvos download-data davis2016`` writes, from the repository
    root) and ``../shared/data/DAVIS2016`` (beside the repository)."""
    found = []
    if os.environ.get(TEST_DATA_VARIABLE):
        given = Path(os.environ[TEST_DATA_VARIABLE]).expanduser()
        found += [given, given / "DAVIS2016"]
    return found + [ROOT / "datasets" / "DAVIS2016", ROOT.parent / "shared" / "data" / "DAVIS2016"]


def find_davis2016() -> Path | None:
    """The first candidate holding a full DAVIS 2016 (``ImageSets/480p/val.txt`` and the
    480p frames), or None."""
    for root in davis2016_candidates():
        if (root / "ImageSets" / "480p" / "val.txt").is_file() and (root / "JPEGImages" / "480p").is_dir():
            return root
    return None


@pytest.fixture
def davis2016_full(request) -> Path:
    """The root of a full DAVIS 2016 (:func:`find_davis2016`); skips with the reason when there
    is none. A golden test may not use it: golden tests run from vendored data only."""
    if request.node.get_closest_marker("golden"):
        pytest.fail("a golden test must run from the vendored data in tests/fixtures, not a full DAVIS 2016")
    root = find_davis2016()
    if root is None:
        pytest.skip(f"needs the full DAVIS 2016: run `ssmvos download-data davis2016` first (or set "
                    f"{TEST_DATA_VARIABLE}); looked in " + ", ".join(map(str, davis2016_candidates())))
    return root


#: The marks of a CUDA case: marker ``cuda`` (``pytest -m cuda`` selects them), skipped with the
#: reason on a machine without a GPU.
CUDA_MARKS = (pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(),
                                                   reason="needs a CUDA GPU (torch.cuda.is_available() is False)"))


def on_cuda(*values, id: str | None = None, marks=()):
    """A parameter set that runs on CUDA only (see :data:`CUDA_MARKS`)."""
    return pytest.param(*values, id=id, marks=[*CUDA_MARKS, *marks])


#: The device parameter of the golden tests: the CPU always, CUDA where there is a GPU.
DEVICES = ["cpu", on_cuda("cuda", id="cuda")]


def onnxruntime_cuda_or_skip() -> None:
    """Skip (with the reason) unless onnxruntime has its CUDA execution provider."""
    ort = pytest.importorskip("onnxruntime", reason='needs the [onnx] extra (pip install -e ".[onnx]")')
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDAExecutionProvider (needs the onnxruntime-gpu package)")


def reference_tensor(name: str, shape, dtype=torch.float32) -> torch.Tensor:
    """The deterministic stand-in weight rule under which the original code produced
    ``tests/fixtures/reference`` (its README.md states the rule). One generator per state-dict
    entry, seeded with the CRC32 of its name: integer tensors zeros; ``running_mean``
    0.1·N(0,1); ``running_var`` 0.5 + U[0,1); 1-D ``bn3.weight`` 0.1·(1 + 0.1·N(0,1)); other
    1-D ``weight`` 1 + 0.1·N(0,1); other 1-D (biases) 0.1·N(0,1); ≥2-D N(0,1)·sqrt(2/fan_in)
    with fan_in = prod(shape[1:])."""
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


#: When set (by tests/test_fresh_clone.py), the path where collection writes its inventory.
INVENTORY_VARIABLE = "SSMVOS_TEST_INVENTORY"


def pytest_collection_finish(session) -> None:
    """Write every collected test's id, markers and fixtures as JSON to ``$SSMVOS_TEST_INVENTORY``
    (only when it is set): what the fresh-clone guard checks without running the tests."""
    target = os.environ.get(INVENTORY_VARIABLE)
    if not target:
        return
    import json

    inventory = {item.nodeid: {"markers": sorted({m.name for m in item.iter_markers()}),
                               "fixtures": sorted(getattr(item, "fixturenames", ()))} for item in session.items}
    Path(target).write_text(json.dumps(inventory, indent=1))
