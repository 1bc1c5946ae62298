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


def require_shared(path: Path) -> Path:
    """Skip (with the reason) when a ../shared resource is absent."""
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared folder)")
    return path


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want.double()).norm() / want.double().norm())


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m ssmvos ARGS`` from this checkout's sources; returns the completed process."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "ssmvos", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_clean_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """A user error: non-zero exit, one line on stderr naming the problem, no traceback."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert lines, "no error message"
    last = lines[-1]
    for needle in needles:
        assert needle in last, f"{needle!r} not in {last!r}"
