"""ssmvos.runtime: devices, precision scopes, the network runner (plain and compiled) against
the original's outputs, and the engine's GPU-shaped paths (lookahead, box-only paste-back,
non-finite outputs) run on the CPU."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import DEVICES, REFERENCE, assert_clean_error, davis_entries, on_cuda, relative_error, run_cli
from ssmvos import SSM, SSMVOSError
from ssmvos.data import geometry
from ssmvos.data.io import read_mask
from ssmvos.data.tensors import image_to_tensor, normalize_images
from ssmvos.inference.engine import Engine, VideoState
from ssmvos.io.frames import FrameFiles
from ssmvos.runtime import RuntimeSpec, TorchRunner, matmul_scope, precision_scope, resolve_device

INPUTS = ("ref_img", "ref_mask", "cur_img", "prev_mask")


@pytest.fixture(scope="module")
def golden():
    data = np.load(REFERENCE / "forward_conv32_blackswan.npz")
    return {k: torch.from_numpy(data[k]) for k in INPUTS + ("out",)}


def test_fp32_switches_tf32_off_whatever_the_process_default():
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True  # PyTorch's cuDNN default
        with matmul_scope("fp32"):
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32  # restored
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        with precision_scope(torch.device("cpu"), "tf32"):
            assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
            assert not torch.is_autocast_enabled("cpu")
        with precision_scope(torch.device("cpu"), "bf16"):
            assert not torch.backends.cudnn.allow_tf32
            assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        with pytest.raises(SSMVOSError, match="precision must be one of"):
            with matmul_scope("fp64"):
                pass
        # a caller's own autocast (SAM 2's examples wrap everything in bf16) is off for fp32/tf32
        a = torch.randn(8, 8)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert (a @ a).dtype == torch.bfloat16
            for precision in ("fp32", "tf32"):
                with precision_scope(torch.device("cpu"), precision):
                    assert not torch.is_autocast_enabled("cpu") and (a @ a).dtype == torch.float32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_device_choice():
    want_auto = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == want_auto
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(SSMVOSError, match="CUDA is not available"):
            resolve_device("cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(SSMVOSError, match="MPS"):
            resolve_device("mps")
    with pytest.raises(SSMVOSError, match="device must be one of"):
        resolve_device("tpu")


def test_images_normalised_on_the_device_equal_the_host_path():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    want = torch.stack([image_to_tensor(i) for i in images])
    batch = torch.from_numpy(images)
    assert torch.equal(normalize_images(batch), want)
    cl = normalize_images(batch, torch.channels_last)
    assert cl.is_contiguous(memory_format=torch.channels_last) and torch.equal(cl, want)


def test_box_region_equals_paste_back():
    probs = torch.softmax(torch.randn(1, 2, 24, 24), 1)
    for box in (geometry.CropBox(-5, 3, 30, 20), geometry.CropBox(10, -8, 70, 45), geometry.CropBox(0, 0, 64, 48)):
        full = geometry.paste_back(probs, box, 40, 64).numpy()
        region, (fy, fx) = geometry.box_region(probs, box, 40, 64)
        pasted = np.zeros_like(full)
        pasted[..., fy, fx] = region
        assert np.array_equal(pasted, full)


@pytest.mark.golden
@pytest.mark.parametrize("device,graphs", [("cpu", False), on_cuda("cuda", False, id="cuda"),
                                           on_cuda("cuda", True, id="cuda-graphs")])
def test_runner_reproduces_the_original_forward(model, golden, device, graphs):
    runner = TorchRunner(copy.deepcopy(model) if device != "cpu" else model, device, "fp32", cuda_graphs=graphs)
    ref = runner.encode_reference_tensors(golden["ref_img"].to(device), golden["ref_mask"].to(device))
    got = runner.segment_tensors(ref, golden["cur_img"].to(device), golden["prev_mask"].to(device)).cpu()
    assert relative_error(got, golden["out"]) <= 1e-4
    assert (got.argmax(1) == golden["out"].argmax(1)).float().mean().item() >= 0.999
    if device != "cpu":
        return
    # tf32 only touches NVIDIA matrix units: on a CPU it is fp32, bit for bit
    tf32 = TorchRunner(model, "cpu", "tf32")
    assert torch.equal(tf32.segment_tensors(tf32.encode_reference_tensors(golden["ref_img"], golden["ref_mask"]),
                                            golden["cur_img"], golden["prev_mask"]), got)


@pytest.mark.slow
@pytest.mark.golden
@pytest.mark.parametrize("device", DEVICES)
def test_compiled_runner_reproduces_the_original_forward(model, golden, device):
    """torch.compile (inductor) passes the same golden test (about half a minute of compiling)."""
    runner = TorchRunner(copy.deepcopy(model) if device != "cpu" else model, device, "fp32", compile=True)
    ref = runner.encode_reference_tensors(golden["ref_img"].to(device), golden["ref_mask"].to(device))
    got = runner.segment_tensors(ref, golden["cur_img"].to(device), golden["prev_mask"].to(device)).cpu()
    assert relative_error(got, golden["out"]) <= 1e-4
    agree = (got.argmax(1) == golden["out"].argmax(1)).float().mean().item()
    assert agree >= 0.999


def test_cuda_graphs_need_cuda(model):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SSMVOSError, match="CUDA graphs need a CUDA device"):
        TorchRunner(model, "cpu", cuda_graphs=True)


def _libby_video(engine, frames=5):
    ann = REFERENCE / "davis_two_object" / "Annotations" / "480p"
    entries = davis_entries("libby", ann, [1, 2], frames=frames)
    paths = sorted({e["image_path"] for e in entries})
    state = VideoState(FrameFiles(paths), 480, 854)
    engine.add_object(state, 0, 1, read_mask(entries[0]["mask_path"]) == 1)
    engine.add_object(state, 2, 2, read_mask(entries[2]["mask_path"]) == 2)  # starts late
    return state


def test_lookahead_gives_the_same_results(model):
    """The GPU order (frame t+1 handed to the network before frame t is yielded) changes nothing."""
    results = {}
    for lookahead in (False, True):
        engine = Engine.for_model(model, (224, 224), RuntimeSpec(device="cpu"), lookahead=lookahead)
        results[lookahead] = [(r.frame_index, r.object_ids, r.soft.copy())
                              for r in engine.propagate(_libby_video(engine))]
        assert set(engine.stage_seconds) == {"frames", "prepare", "network", "paste-back"}
    assert [r[:2] for r in results[True]] == [(0, [1]), (1, [1]), (2, [1, 2]), (3, [1, 2]), (4, [1, 2])]
    for a, b in zip(results[False], results[True]):
        assert a[:2] == b[:2] and np.array_equal(a[2], b[2])


def test_non_finite_network_output_is_an_error_not_a_mask(model):
    broken = SSM().eval()
    broken.load_state_dict(model.state_dict())
    with torch.no_grad():
        broken.classifier.bias.fill_(float("nan"))
    engine = Engine.for_model(broken, (224, 224), RuntimeSpec(device="cpu"))
    with pytest.raises(SSMVOSError, match="not finite"):
        list(engine.propagate(_libby_video(engine, frames=3)))


def test_cli_runtime_flags(tmp_path, reference_checkpoint):
    common = ["segment", "--demo", "--weights", reference_checkpoint, "--input-size", "224", "--no-progress"]
    if not torch.cuda.is_available():
        assert_clean_error(run_cli(*common, "--out", tmp_path / "a", "--device", "cpu", "--cuda-graphs"),
                           "CUDA graphs need a CUDA device")
    if not torch.backends.mps.is_available():
        assert_clean_error(run_cli(*common, "--out", tmp_path / "b", "--device", "mps"), "MPS")
    help_text = run_cli("evaluate", "--help").stdout
    for flag in ("--compile", "--cuda-graphs", "tf32", "mps"):
        assert flag in help_text
