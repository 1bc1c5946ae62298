"""The whole inference chain against the original's outputs under reference weights.

`ssmvos evaluate` + `ssmvos merge` at 256×256 on DAVIS 2016 blackswan and car-shadow and
on the two-object libby variant (vendored in tests/fixtures) must reproduce
tests/fixtures/reference (tolerances from its README: mean |soft mask difference| ≤ 1/255,
merged masks equal on ≥ 99.5 % of pixels), on every backend: torch, compile (torch.compile)
and onnxruntime (the exported ONNX graphs); on the CPU always, and on CUDA (marker ``cuda``)
where there is a GPU: there also with ``--cuda-graphs``, and with the crop geometry on the
host as well as on the device (the CUDA default).
"""
from __future__ import annotations

import copy
import json

import pytest

from conftest import (DAVIS16, REFERENCE, davis_entries, label_agreement, mean_soft_difference, on_cuda,
                      onnxruntime_cuda_or_skip, run_cli)

pytestmark = pytest.mark.golden


def _backend_flags(backend: str, device: str, tmp_path, checkpoint, export: bool) -> tuple[list, dict]:
    """evaluate flags (and environment) for ``backend`` on ``device``; onnxruntime either from
    an ``ssmvos export`` folder (``export``) or exported on the fly into a fresh cache;
    ``torch+graphs`` is the torch backend with ``--cuda-graphs``."""
    flags = ["--device", device]
    if backend == "torch+graphs":
        return flags + ["--backend", "torch", "--cuda-graphs"], {}
    if backend != "onnxruntime":
        return flags + ["--backend", backend], {}
    pytest.importorskip("onnxruntime", reason='needs the [onnx] extra (pip install -e ".[onnx]")')
    pytest.importorskip("onnxscript", reason='needs the [onnx] extra (pip install -e ".[onnx]")')
    if device == "cuda":
        onnxruntime_cuda_or_skip()
    if not export:
        return flags + ["--backend", backend], {"SSMVOS_HOME": str(tmp_path / "home")}
    proc = run_cli("export", "--format", "onnx", "--out", tmp_path / "onnx", "--weights", checkpoint,
                   "--input-size", 256, 256)
    assert proc.returncode == 0, proc.stderr
    assert "exported 256x256" in proc.stdout
    return flags + ["--backend", backend, "--onnx", tmp_path / "onnx"], {}


#: (device, backend): every backend on the CPU; on CUDA also the torch backend with CUDA graphs.
CASES = [("cpu", "torch"), ("cpu", "onnxruntime"), pytest.param("cpu", "compile", marks=pytest.mark.slow)] + [
    on_cuda("cuda", backend, id=f"cuda-{backend}") for backend in ("torch", "torch+graphs", "compile", "onnxruntime")]


def _split(tmp_path, entries):
    path = tmp_path / "split.json"
    path.write_text(json.dumps(entries))
    return path


@pytest.mark.parametrize("device,backend", CASES)
def test_evaluate_and_merge_reproduce_blackswan_and_car_shadow(tmp_path, reference_checkpoint, device, backend):
    flags, env = _backend_flags(backend, device, tmp_path, reference_checkpoint, export=True)
    ann = DAVIS16 / "Annotations" / "480p"
    split = _split(tmp_path, davis_entries("blackswan", ann, [255]) + davis_entries("car-shadow", ann, [255]))
    proc = run_cli("evaluate", "--split", split, "--resume", reference_checkpoint, "--save-dir", tmp_path / "per",
                   "--input-height", 256, "--input-width", 256, "--no-progress", *flags, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "90 frames" in proc.stdout and "frames/s" in proc.stdout
    proc = run_cli("merge", "-i", tmp_path / "per", "-o", tmp_path / "merged")
    assert proc.returncode == 0, proc.stderr

    ref = REFERENCE / "pipeline_blackswan_car-shadow"
    diff, count = mean_soft_difference(tmp_path / "per", ref / "per_object")
    assert count == 90
    assert diff <= 1.0
    assert label_agreement(tmp_path / "merged", ref / "merged") >= 0.995


@pytest.mark.parametrize("device,backend", CASES)
def test_two_objects_batched_with_in_memory_merge(tmp_path, reference_checkpoint, device, backend):
    ann = REFERENCE / "davis_two_object" / "Annotations" / "480p"
    flags, env = _backend_flags(backend, device, tmp_path, reference_checkpoint, export=False)
    split = _split(tmp_path, davis_entries("libby", ann, [1, 2]))
    proc = run_cli("evaluate", "--split", split, "--resume", reference_checkpoint, "--save-dir", tmp_path / "per",
                   "--input-height", 256, "--input-width", 256, "--no-progress",
                   "--merged-dir", tmp_path / "merged", "--score", "--score-json", tmp_path / "jf.json", *flags, env=env)
    assert proc.returncode == 0, proc.stderr
    # --score after merging: figures equal to scoring the merged folder separately
    jf = json.loads((tmp_path / "jf.json").read_text())
    assert set(jf["per_object"]) == {"libby_1", "libby_2"}
    proc = run_cli("score", "--annotations", ann, "--results", tmp_path / "merged", "--sequences", "libby",
                   "--json", tmp_path / "jf2.json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "jf2.json").read_text()) == jf
    ref = REFERENCE / "pipeline_two_object_libby"
    diff, count = mean_soft_difference(tmp_path / "per", ref / "per_object")
    assert count == 98 and diff <= 1.0
    assert label_agreement(tmp_path / "merged", ref / "merged") >= 0.995
    # the in-memory merge equals merging the written files afterwards
    assert run_cli("merge", "-i", tmp_path / "per", "-o", tmp_path / "merged2").returncode == 0
    assert label_agreement(tmp_path / "merged2", tmp_path / "merged") == 1.0


@pytest.mark.parametrize("graphs", [on_cuda(False, id="cuda-host-geometry"),
                                    on_cuda(True, id="cuda-host-geometry-graphs")])
def test_host_geometry_on_cuda_reproduces_the_original(tmp_path, model, graphs):
    """On CUDA the engine crops and pastes back on the device by default (the CLI cases above);
    the host's crop geometry (OpenCV) with the network on the GPU passes the same checks."""
    from ssmvos.inference.engine import Engine
    from ssmvos.inference.evaluate import evaluate_split
    from ssmvos.runtime import RuntimeSpec

    ann = DAVIS16 / "Annotations" / "480p"
    jobs = {"pipeline_blackswan_car-shadow": (davis_entries("blackswan", ann, [255])
                                              + davis_entries("car-shadow", ann, [255]), 90),
            "pipeline_two_object_libby": (davis_entries(
                "libby", REFERENCE / "davis_two_object" / "Annotations" / "480p", [1, 2]), 98)}
    engine = Engine.for_model(copy.deepcopy(model), (256, 256), RuntimeSpec("torch", "cuda", "fp32", graphs),
                              margin=0.5, device_geometry=False)
    for name, (entries, files) in jobs.items():
        out = tmp_path / name
        evaluate_split(entries, engine, out / "per", out / "merged", progress=False)
        diff, count = mean_soft_difference(out / "per", REFERENCE / name / "per_object")
        assert count == files and diff <= 1.0, name
        assert label_agreement(out / "merged", REFERENCE / name / "merged") >= 0.995, name
