"""ssmvos train: the original recipe on DDP (CPU/gloo), its outputs, exact resumption, bad input.

Runs at 224×64 with keep_topk 8 (the smallest sizes the network accepts comfortably) on a
few frames of two DAVIS 2016 sequences, indexed by ``ssmvos index``.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import DAVIS16, ROOT, SUBPROCESS_TIMEOUT, assert_clean_error, run_cli
from ssmvos import SSM, SSMVOSError
from ssmvos.training import TrainConfig, intersection_union, iou_from, segmentation_loss, train
from ssmvos.training.state import ResumableSampler
from ssmvos.training.trainer import parameter_groups

VIDEOS = ("blackswan", "car-shadow")
FRAMES = 3  # per video: 6 samples, 3 steps per epoch at global batch 2 on 2 processes
SMALL = ("--input-height", "224", "--input-width", "64", "--keep-topk", "8", "--batch-size", "2",
         "--no-pretrained", "--device", "cpu")


def small_davis(root: Path) -> Path:
    """A DAVIS 2016 layout holding the first FRAMES frames of VIDEOS (symlinks) and a val list."""
    src = DAVIS16
    lines = []
    for video in VIDEOS:
        for sub, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
            folder = root / sub / "480p" / video
            folder.mkdir(parents=True)
            for k in range(FRAMES):
                (folder / f"{k:05d}.{ext}").symlink_to(src / sub / "480p" / video / f"{k:05d}.{ext}")
        lines += [f"/JPEGImages/480p/{video}/{k:05d}.jpg /Annotations/480p/{video}/{k:05d}.png" for k in range(FRAMES)]
    (root / "ImageSets" / "480p").mkdir(parents=True)
    (root / "ImageSets" / "480p" / "val.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def split_file(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("davis")
    proc = run_cli("index", "--davis2016", small_davis(base / "DAVIS2016"), "--out-dir", base / "splits")
    assert proc.returncode == 0, proc.stderr
    split = base / "splits" / "davis2016_val.json"
    assert len(json.loads(split.read_text())) == len(VIDEOS) * FRAMES
    return split


def torchrun(nproc: int, *args) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --standalone --nproc_per_node=N -m ssmvos train ARGS``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "ssmvos", "train", *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)


def ddp_args(model_dir: Path, split: Path, *extra) -> list:
    return ["--model-dir", model_dir, "--split", split, *SMALL, "--num-workers", "1", "--max-steps", "6",
            "--save-step", "2", "--log-step", "1", *extra]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def ddp_run(split_file, tmp_path_factory) -> Path:
    """An uninterrupted 2-process run: 6 steps over two epochs, checkpoints at steps 1, 3, 5
    (about 2 GB with their training states: removed when the module is done)."""
    model_dir = tmp_path_factory.mktemp("ddp") / "run"
    proc = torchrun(2, *ddp_args(model_dir, split_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield model_dir
    shutil.rmtree(model_dir, ignore_errors=True)


# --------------------------------------------------------------------------- DDP end to end
def test_ddp_run_writes_the_original_outputs(ddp_run, split_file):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ckpts = sorted(p.name for p in (ddp_run / "checkpoints").iterdir())
    assert ckpts == ["1.pt", "3.pt", "5.pt"]
    want_keys = set(SSM(keep_topk=8).state_dict())
    # (global_step, epoch, samples of that epoch done): 3 steps of 2 samples per epoch
    for step, epoch, done in ((1, 0, 4), (3, 1, 2), (5, 2, 0)):
        ckpt = load(ddp_run / "checkpoints" / f"{step}.pt")
        assert ckpt["global_step"] == step
        assert set(ckpt["model_dict"]) == want_keys
        state = ckpt["train_state"]
        assert {"optimizer", "scheduler", "rng"} <= set(state)
        assert (state["epoch"], state["epoch_samples"], state["world_size"]) == (epoch, done, 2)
        assert len(state["rng"]) == 2
        assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])  # per-rank streams
        assert state["scheduler"]["last_epoch"] == step + 1  # stepped every iteration

    args = json.loads((ddp_run / "args.json").read_text())
    assert args["batch_size"] == 2 and args["split"] == str(split_file) and args["save_step"] == 2

    log = (ddp_run / "logs" / "train.log").read_text()
    for step, epoch, batch in ((0, 0, 0), (2, 0, 2), (3, 1, 0), (5, 1, 2)):
        assert f"step {step} ({epoch}, {batch}): loss: " in log
    assert log.count("saving checkpoint to") == 3 and "group 1: learning_rate: 1e-05" in log
    assert log.count("step 0 (0, 0): loss:") == 1  # rank 0 alone logs

    events = list((ddp_run / "board").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(6))
    assert [e.step for e in acc.Scalars("train/iou")] == list(range(6))
    assert all(e.value > 0 for e in acc.Scalars("train/loss"))
    assert {"lr/group_0", "lr/group_1"} <= set(acc.Tags()["scalars"])


def test_resume_step_repeats_the_uninterrupted_run_exactly(ddp_run, split_file, tmp_path):
    # Restart from the step-1 checkpoint (mid epoch 0) and run to the same end (step 5, epoch 1).
    # On the CPU every kernel is deterministic and two ranks' gradients sum exactly, so the
    # weights must be bitwise equal; any missed state (RNG, data position, optimizer) breaks it.
    resumed = tmp_path / "resumed"
    proc = torchrun(2, *ddp_args(resumed, split_file), "--resume", ddp_run / "checkpoints" / "1.pt",
                    "--resume-step")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in (resumed / "checkpoints").iterdir()) == ["3.pt", "5.pt"]
    for step in (3, 5):
        a, b = load(ddp_run / "checkpoints" / f"{step}.pt"), load(resumed / "checkpoints" / f"{step}.pt")
        assert b["global_step"] == step
        mismatched = [k for k in a["model_dict"] if not torch.equal(a["model_dict"][k], b["model_dict"][k])]
        assert not mismatched, mismatched[:5]
        sa, sb = a["train_state"]["optimizer"]["state"], b["train_state"]["optimizer"]["state"]
        assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    log = (resumed / "logs" / "train.log").read_text()
    assert "step 1 (" not in log and "step 2 (0, 2): loss: " in log
    first_log = (ddp_run / "logs" / "train.log").read_text()
    for step in (2, 3, 4, 5):  # the same losses, printed to 4 decimals
        line = next(s for s in first_log.splitlines() if f"step {step} (" in s and "loss" in s)
        assert line.split("] ", 1)[1] in log


# --------------------------------------------------------------------------- learning
def test_loss_falls_on_davis_frames(split_file, tmp_path):
    config = TrainConfig(model_dir=str(tmp_path / "learn"), split=str(split_file), input_height=224, input_width=64,
                         keep_topk=8, batch_size=2, num_workers=0, pretrained=False, device="cpu", base_lr=1e-4,
                         rotation=0.0, flip_rate=0.0, max_steps=30, save_step=1000, log_step=1000)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # steadier on a shared 2-core machine (busy OpenMP threads stall)
    try:
        summary = train(config)
    finally:
        torch.set_num_threads(threads)
    assert summary.global_step == 30 and len(summary.losses) == 30
    first, last = sum(summary.losses[:5]) / 5, sum(summary.losses[-5:]) / 5
    assert last < 0.7 * first, summary.losses
    assert list((tmp_path / "learn" / "checkpoints").iterdir()) == []  # no save step reached


# --------------------------------------------------------------------------- pieces
def test_loss_is_the_originals_flattened_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    logits, struct = torch.randn(2, 2, 5, 7, generator=gen), torch.randn(2, 2, 5, 7, generator=gen)
    mask = (torch.rand(2, 1, 5, 7, generator=gen) > 0.5).float()
    flat = mask.view(-1).long()
    want = (F.cross_entropy(logits.permute(0, 2, 3, 1).reshape(-1, 2), flat)
            + 0.1 * F.cross_entropy(struct.permute(0, 2, 3, 1).reshape(-1, 2), flat))
    assert torch.allclose(segmentation_loss(logits, struct, mask), want, rtol=1e-6)


def test_iou_over_the_batch_and_of_empty_masks():
    logits = torch.zeros(2, 2, 1, 4)
    logits[0, 1, 0, :2] = 1.0  # predicts foreground at two pixels of image 0
    mask = torch.zeros(2, 1, 1, 4)
    mask[0, 0, 0, 1:3] = 1.0
    inter, union = intersection_union(logits, mask).tolist()
    assert (inter, union) == (1.0, 3.0)
    assert iou_from(0.0, 0.0) == 1.0  # both empty, as the original
    tie = torch.zeros(1, 2, 1, 3)  # equal logits -> background
    assert intersection_union(tie, torch.zeros(1, 1, 1, 3)).tolist() == [0.0, 0.0]


def test_parameter_groups_split_encoder_and_rest():
    model = SSM(keep_topk=8)
    groups = parameter_groups(model, 1e-4, 0.5)
    assert groups[0]["lr"] == pytest.approx(5e-5) and groups[1]["lr"] == 1e-4
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.encoder.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_sampler_resumes_mid_epoch_for_any_world_size():
    data = list(range(10))
    batch = 4  # global

    def global_batches(world: int, skip: int) -> list[list[int]]:
        per = []
        for rank in range(world):
            sampler = ResumableSampler(data, world, rank, seed=5)
            sampler.set_epoch(3)
            sampler.set_start(skip)
            assert len(sampler) == -(-len(data) // world) - skip
            per.append(list(sampler))
        per_rank = batch // world
        n = len(per[0]) // per_rank
        return [sorted(i for r in range(world) for i in per[r][j * per_rank:(j + 1) * per_rank]) for j in range(n)]

    full = global_batches(1, 0)
    assert global_batches(2, 0)[:2] == full[:2] and global_batches(4, 0)[:2] == full[:2]
    assert global_batches(2, 2) == global_batches(2, 0)[1:]  # 2 per rank skipped = one global batch
    assert global_batches(1, 4)[:1] == full[1:2]


# --------------------------------------------------------------------------- bad input
def _tiny_split(tmp_path: Path, split_file: Path, broken: bool) -> Path:
    entries = json.loads(split_file.read_text())[:FRAMES]
    if broken:
        entries[1]["image_path"] = str(tmp_path / "nowhere" / "00001.jpg")
    path = tmp_path / "split.json"
    path.write_text(json.dumps(entries))
    return path


@pytest.mark.parametrize("case", ["empty split", "missing file", "other architecture", "model dir is a file",
                                  "too low", "too few positions", "batch vs world", "resume-step alone"])
def test_bad_input_fails_cleanly_before_any_work(case, split_file, tmp_path):
    model_dir = tmp_path / "run"
    split = split_file
    args: list = list(SMALL)
    env = None
    needles: tuple = ()
    if case == "empty split":
        split = tmp_path / "empty.json"
        split.write_text("[]")
        needles = ("empty.json", "no entries")
    elif case == "missing file":
        split = _tiny_split(tmp_path, split_file, broken=True)
        needles = ("not found", "00001.jpg")
    elif case == "other architecture":
        ckpt = tmp_path / "other.pt"
        torch.save({"model_dict": {"backbone.conv.weight": torch.zeros(1)}, "global_step": 3}, ckpt)
        args += ["--resume", ckpt]
        needles = ("other.pt", "does not fit the network", "missing keys")
    elif case == "model dir is a file":
        model_dir.write_text("not a folder")
        needles = ("is a file",)
    elif case == "too low":
        args += ["--input-height", "160"]
        needles = ("160x64", "too small", "193")
    elif case == "too few positions":
        args += ["--input-width", "16", "--keep-topk", "32"]
        needles = ("stride-16 positions", "keep_topk 32", "--keep-topk")
    elif case == "batch vs world":
        args += ["--batch-size", "3"]
        env = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
        needles = ("--batch-size 3", "divisible", "(2)")
    elif case == "resume-step alone":
        args += ["--resume-step"]
        needles = ("--resume-step needs --resume",)
    proc = run_cli("train", "--model-dir", model_dir, "--split", split, *args, env=env)
    assert_clean_error(proc, "ssmvos train: error:", *needles)
    if case != "model dir is a file":
        assert not model_dir.exists()  # nothing was started


def test_imagenet_init_is_the_default_and_its_failure_writes_nothing(split_file, tmp_path, monkeypatch):
    import ssmvos.weights

    calls = []

    def offline(model, generator=None):
        calls.append(model.config["encoder"])
        raise SSMVOSError("ImageNet weights could not be fetched (offline)")

    monkeypatch.setattr(ssmvos.weights, "init_encoder_from_imagenet", offline)
    config = TrainConfig(model_dir=str(tmp_path / "run"), split=str(split_file), input_height=224, input_width=64,
                         keep_topk=8, batch_size=2, num_workers=0, device="cpu", max_steps=1)
    with pytest.raises(SSMVOSError, match="offline"):
        train(config)
    assert calls == ["resnet50"]
    assert not (tmp_path / "run").exists()


def test_bf16_autocast_step_keeps_fp32_weights(split_file, tmp_path):
    config = TrainConfig(model_dir=str(tmp_path / "run"), split=str(split_file), input_height=224, input_width=64,
                         keep_topk=8, batch_size=2, num_workers=0, pretrained=False, device="cpu",
                         precision="bf16", max_steps=1, save_step=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = train(config)
    finally:
        torch.set_num_threads(threads)
    assert summary.global_step == 1 and all(map(math.isfinite, summary.losses))
    ckpt = load(tmp_path / "run" / "checkpoints" / "0.pt")
    assert {v.dtype for v in ckpt["model_dict"].values()} <= {torch.float32, torch.int64}
    assert ckpt["train_state"]["grad_scaler"] is None  # the scaler is for fp16 only


def test_resume_weights_only_and_original_format_checkpoints(ddp_run, split_file, tmp_path):
    base = dict(split=str(split_file), input_height=224, input_width=64, keep_topk=8, batch_size=2, num_workers=0,
                pretrained=False, device="cpu", save_step=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # --resume alone: the weights only (the original's fine-tuning use), counting from step 0.
        summary = train(TrainConfig(model_dir=str(tmp_path / "finetune"), resume=str(ddp_run / "checkpoints" / "5.pt"),
                                    max_steps=1, **base))
        assert summary.global_step == 1 and [p.name for p in summary.checkpoints] == ["0.pt"]
        # --resume-step on a checkpoint in the original format ({model_dict, global_step} only):
        # the step goes on from global_step + 1, optimizer and schedule start afresh, as the original.
        original = load(ddp_run / "checkpoints" / "5.pt")
        plain = tmp_path / "plain.pt"
        torch.save({"model_dict": original["model_dict"], "global_step": original["global_step"]}, plain)
        summary = train(TrainConfig(model_dir=str(tmp_path / "cont"), resume=str(plain), resume_step=True,
                                    max_steps=7, **base))
    finally:
        torch.set_num_threads(threads)
    assert [p.name for p in summary.checkpoints] == ["6.pt"]
    state = load(summary.checkpoints[0])["train_state"]
    assert {float(s["step"]) for s in state["optimizer"]["state"].values()} == {1.0}  # a fresh Adam
    assert "no training state" in (tmp_path / "cont" / "logs" / "train.log").read_text()


def test_checkpoint_loads_as_the_configuration_it_was_trained_with(split_file, tmp_path):
    """A model trained with --matching cosine evaluates as cosine with no flag; a contradicting
    flag is one clear error; the original's checkpoints (no record) load as before."""
    from ssmvos import load_checkpoint, read_checkpoint, save_checkpoint

    model_dir = tmp_path / "cosine"
    proc = run_cli("train", "--model-dir", model_dir, "--split", split_file, *SMALL, "--matching", "cosine",
                   "--num-workers", "0", "--max-steps", "1", "--save-step", "1")
    assert proc.returncode == 0, proc.stderr
    ckpt = model_dir / "checkpoints" / "0.pt"
    assert read_checkpoint(ckpt).extra["model_config"] == {"encoder": "resnet50", "matching": "cosine", "keep_topk": 8}
    assert load_checkpoint(ckpt).config == {"encoder": "resnet50", "matching": "cosine", "keep_topk": 8}

    outputs = {}
    for name, flags in (("none", ()), ("same", ("--matching", "cosine"))):
        proc = run_cli("evaluate", "--split", split_file, "--resume", ckpt, "--save-dir", tmp_path / name,
                       "--input-height", "224", "--input-width", "64", "--device", "cpu", "--no-progress", *flags)
        assert proc.returncode == 0, proc.stderr
        outputs[name] = {p.relative_to(tmp_path / name): p.read_bytes() for p in (tmp_path / name).rglob("*.png")}
    assert outputs["none"] and outputs["none"] == outputs["same"]
    # the same weights run as 'conv' give other masks: the recorded setting matters
    conv = SSM(matching="conv", keep_topk=8)
    conv.load_state_dict(read_checkpoint(ckpt).model_state)
    cos = load_checkpoint(ckpt)
    x = torch.randn(1, 3, 224, 64)
    m = (torch.rand(1, 1, 224, 64) > 0.5).float()
    with torch.no_grad():
        assert not torch.allclose(conv.eval()(x, m, x, m)[0], cos(x, m, x, m)[0])

    proc = run_cli("evaluate", "--split", split_file, "--resume", ckpt, "--save-dir", tmp_path / "bad",
                   "--input-height", "224", "--input-width", "64", "--device", "cpu", "--matching", "conv")
    assert_clean_error(proc, "trained with --matching cosine", "--matching conv contradicts it")
    # the original's format records nothing: shapes decide, matching defaults to conv
    original = save_checkpoint(tmp_path / "original.pt", read_checkpoint(ckpt).model_state, 0)
    assert load_checkpoint(original).config == {"encoder": "resnet50", "matching": "conv", "keep_topk": 8}
    assert load_checkpoint(original, matching="cosine").config["matching"] == "cosine"
