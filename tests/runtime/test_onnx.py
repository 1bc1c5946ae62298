"""ONNX export and the onnxruntime backend: the original's forward through the exported
graphs, the manifest, the predictor on each backend, and bad inputs (another model's or
size's ONNX file, a missing extra, an unwritable folder, a failed check)."""
from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest
import torch

from conftest import DEVICES, REFERENCE, ROOT, assert_clean_error, onnxruntime_cuda_or_skip, relative_error, run_cli
from ssmvos import SSMVOSError, VideoPredictor, save_checkpoint
from ssmvos.data.tensors import IMAGENET_MEAN, IMAGENET_STD
from ssmvos.runtime import make_runner, resolve_backend

ort = pytest.importorskip("onnxruntime", reason="needs the [onnx] extra (pip install -e \".[onnx]\")")
pytest.importorskip("onnxscript", reason="needs the [onnx] extra (pip install -e \".[onnx]\")")
onnx = pytest.importorskip("onnx", reason="needs the [onnx] extra (pip install -e \".[onnx]\")")

from ssmvos.export.onnx import MANIFEST, export_onnx, model_fingerprint  # noqa: E402

INPUTS = ("ref_img", "ref_mask", "cur_img", "prev_mask")


@pytest.fixture(scope="module")
def golden():
    data = np.load(REFERENCE / "forward_conv32_blackswan.npz")
    return {k: torch.from_numpy(data[k]) for k in INPUTS + ("out",)}


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """The reference network exported at 256×256 (the golden fixture's size)."""
    out = tmp_path_factory.mktemp("onnx") / "export"
    export_onnx(model, out, (256, 256))
    return out


@pytest.mark.golden
@pytest.mark.parametrize("device", DEVICES)
def test_exported_graphs_reproduce_the_original_forward(model, exported, golden, device):
    if device == "cuda":
        onnxruntime_cuda_or_skip()
    runner = make_runner(model, "onnxruntime", device, input_size=(256, 256), onnx=exported)
    ref = runner.encode_reference_tensors(golden["ref_img"], golden["ref_mask"])
    got = runner.segment_tensors(ref, golden["cur_img"], golden["prev_mask"])
    assert relative_error(got, golden["out"]) <= 1e-4
    assert (got.argmax(1) == golden["out"].argmax(1)).float().mean().item() >= 0.999
    # the object dimension is dynamic: two objects in one call equal one at a time
    flipped = [golden[k].flip(-1) for k in INPUTS]
    refs = runner.encode_reference_tensors(torch.cat([golden["ref_img"], flipped[0]]),
                                           torch.cat([golden["ref_mask"], flipped[1]]))
    both = runner.segment_tensors(refs, torch.cat([golden["cur_img"], flipped[2]]),
                                  torch.cat([golden["prev_mask"], flipped[3]]))
    alone = runner.segment_tensors(runner.encode_reference_tensors(flipped[0], flipped[1]), flipped[2], flipped[3])
    assert relative_error(both[:1], got) <= 1e-5 and relative_error(both[1:], alone) <= 1e-5


def test_manifest_describes_the_graphs(model, exported):
    manifest = json.loads((exported / MANIFEST).read_text())
    assert manifest["input_size"] == [256, 256]
    assert manifest["model"]["fingerprint_sha256"] == model_fingerprint(model)
    assert manifest["model"]["keep_topk"] == 32 and manifest["model"]["matching"] == "conv"
    assert manifest["normalisation"]["mean"] == list(IMAGENET_MEAN)
    assert manifest["normalisation"]["std"] == list(IMAGENET_STD)
    assert manifest["crop_rule"]["margin"] == 0.5
    assert max(manifest["verification"]["relative_error"].values()) <= 1e-4
    for role, graph in manifest["graphs"].items():
        session = ort.InferenceSession(str(exported / graph["file"]), providers=["CPUExecutionProvider"])
        for described, actual in ((graph["inputs"], session.get_inputs()), (graph["outputs"], session.get_outputs())):
            assert [d["name"] for d in described] == [a.name for a in actual]
            for d, a in zip(described, actual):
                assert d["shape"][1:] == a.shape[1:] and isinstance(a.shape[0], str)  # objects: dynamic
        meta = session.get_modelmeta().custom_metadata_map
        assert meta["ssmvos.graph"] == role and meta["ssmvos.input_size"] == "256x256"


def test_predictor_backends_agree(model, exported):
    """VideoPredictor(backend=...) on the bundled clip: onnxruntime gives torch's masks (the
    golden tolerances: mean soft difference within a grey level, masks equal on >= 99.9 %)."""
    from ssmvos.data.io import read_mask
    from ssmvos.assets import demo_clip

    frames, mask = demo_clip()
    results = {}
    for backend, onnx_dir in (("torch", None), ("onnxruntime", exported)):
        predictor = VideoPredictor(model, 256, device="cpu", backend=backend, onnx=onnx_dir)
        assert predictor.backend == backend
        state = predictor.init_state(sorted(frames.glob("*.jpg"))[:4])
        predictor.add_new_mask(state, 0, 1, read_mask(mask) > 0)
        results[backend] = [(r.soft[0].astype(float), r.binary[0]) for r in predictor.propagate_in_video(state)]
    assert len(results["torch"]) == 4
    for (soft_t, bin_t), (soft_o, bin_o) in zip(results["torch"], results["onnxruntime"]):
        assert np.abs(soft_t - soft_o).mean() <= 1.0
        assert (bin_t == bin_o).mean() >= 0.999


def test_backend_names():
    assert resolve_backend("torch", compile=True) == "compile"  # --compile stays an alias
    with pytest.raises(SSMVOSError, match="backend must be one of"):
        resolve_backend("tensorrt")
    with pytest.raises(SSMVOSError, match="cannot be combined"):
        resolve_backend("onnxruntime", compile=True)


def test_exports_of_another_model_or_size_are_refused(model, exported, tmp_path):
    def runner(folder=exported, size=(256, 256), network=model, **kw):
        return make_runner(network, "onnxruntime", "cpu", input_size=size, onnx=folder, **kw)

    with pytest.raises(SSMVOSError, match="exported for input size 256x256, not 224x224"):
        runner(size=(224, 224))
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.classifier.bias += 1.0
    with pytest.raises(SSMVOSError, match="other weights"):
        runner(network=other)
    with pytest.raises(SSMVOSError, match="fp32 only"):
        runner(precision="bf16")
    with pytest.raises(SSMVOSError, match="for --backend onnxruntime only"):
        make_runner(model, "torch", "cpu", onnx=exported)
    with pytest.raises(SSMVOSError, match="not an ssmvos ONNX export"):
        runner(folder=tmp_path)
    # a changed or truncated graph file: its sha256 is not the manifest's
    damaged = tmp_path / "damaged"
    shutil.copytree(exported, damaged)
    data = (damaged / "segment.onnx").read_bytes()
    (damaged / "segment.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(SSMVOSError, match="segment.onnx is damaged or was changed after export.*export again"):
        runner(folder=damaged)
    # an export whose manifest records no digests (as before they were recorded): the graphs'
    # own metadata still identify them
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    manifest = json.loads((exported / MANIFEST).read_text())
    for graph in manifest["graphs"].values():
        del graph["sha256"]
    (swapped / MANIFEST).write_text(json.dumps(manifest))
    (swapped / "encode_reference.onnx").symlink_to(exported / "encode_reference.onnx")
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 256, 256])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 256, 256])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "other", [x], [y])
    onnx.save_model(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]),
                    str(swapped / "segment.onnx"))
    with pytest.raises(SSMVOSError, match="not the segment graph of an ssmvos export"):
        runner(folder=swapped)
    # the encoder's file in place of the segment graph (the same export, the wrong role)
    (swapped / "segment.onnx").unlink()
    (swapped / "segment.onnx").symlink_to(exported / "encode_reference.onnx")
    with pytest.raises(SSMVOSError, match="not the segment graph"):
        runner(folder=swapped)
    (swapped / "segment.onnx").unlink()
    (swapped / "segment.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(SSMVOSError, match="not a loadable ONNX model"):
        runner(folder=swapped)


def test_a_damaged_cache_entry_is_exported_again(model, tmp_path, monkeypatch, capsys):
    """``--backend onnxruntime`` without ``--onnx`` exports into $SSMVOS_HOME/onnx once; a
    cache entry whose graph was truncated afterwards is exported again, with a note."""
    monkeypatch.setenv("SSMVOS_HOME", str(tmp_path / "home"))
    first = make_runner(model, "onnxruntime", "cpu", input_size=(224, 224))
    assert "exporting the network to ONNX" in capsys.readouterr().err
    segment = first.export.folder / "segment.onnx"
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) // 3])
    again = make_runner(model, "onnxruntime", "cpu", input_size=(224, 224))
    err = capsys.readouterr().err
    assert "cannot be used" in err and "damaged" in err and "exporting it again" in err
    assert segment.read_bytes() == data  # the same export, whole again
    make_runner(model, "onnxruntime", "cpu", input_size=(224, 224))
    assert capsys.readouterr().err == ""  # a sound entry is used as it is
    assert again.export.folder == first.export.folder


def test_failed_check_writes_nothing(model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("a file that was there before")
    with pytest.raises(SSMVOSError, match="export check failed.*nothing was written"):
        export_onnx(model, out, (224, 224), tolerance=0.0)  # ORT never equals PyTorch bit for bit
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(SSMVOSError, match="export check failed"):
        export_onnx(model, tmp_path / "new", (224, 224), tolerance=0.0)
    assert not (tmp_path / "new").exists()
    # weights with a NaN: the check once passed them ("largest relative error 0": max() drops a NaN)
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.encoder.conv1.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(SSMVOSError, match="not finite numbers.*nothing was written"):
        export_onnx(broken, out, (224, 224))
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_cli_bad_inputs(model, tmp_path):
    ckpt = save_checkpoint(tmp_path / "ref.pt", model.state_dict(), 0)
    blocker = tmp_path / "no_onnx"
    for name in ("onnx", "onnxruntime", "onnxscript"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text("raise ImportError('not installed (blocked for a test)')\n")
    env = {"PYTHONPATH": f"{blocker}:{ROOT / 'src'}"}
    proc = run_cli("segment", "--demo", "--weights", ckpt, "--out", tmp_path / "a", "--input-size", "224",
                   "--device", "cpu", "--backend", "onnxruntime", "--no-progress", env=env)
    assert_clean_error(proc, 'pip install -e ".[onnx]"', "onnxruntime")
    assert not (tmp_path / "a").exists()
    proc = run_cli("export", "--out", tmp_path / "b", "--weights", ckpt, "--input-size", "224", env=env)
    assert_clean_error(proc, 'pip install -e ".[onnx]"')
    assert not (tmp_path / "b").exists()
    # an unwritable destination: a path through a regular file (root ignores permission bits)
    (tmp_path / "file").write_text("x")
    proc = run_cli("export", "--out", tmp_path / "file" / "sub", "--weights", ckpt, "--input-size", "224")
    assert_clean_error(proc, "cannot write to")
    proc = run_cli("export", "--out", tmp_path / "file", "--weights", ckpt, "--input-size", "224")
    assert_clean_error(proc, "not a folder")
    proc = run_cli("export", "--out", tmp_path / "c", "--weights", ckpt, "--input-size", "150", "256")
    assert_clean_error(proc, "too small")
    proc = run_cli("segment", "--demo", "--weights", ckpt, "--out", tmp_path / "d", "--input-size", "224",
                   "--device", "cpu", "--backend", "onnxruntime", "--compile", "--no-progress")
    assert_clean_error(proc, "cannot be combined")
    help_text = run_cli("export", "--help").stdout
    for needle in ("--input-size", "encode_reference", "segment.onnx", "--weights"):
        assert needle in help_text
    assert "onnxruntime" in run_cli("segment", "--help").stdout
