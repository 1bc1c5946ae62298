"""Merging per-object soft masks: the original's rules, by hand."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_clean_error, run_cli
from ssmvos.data.io import read_mask, write_gray_png
from ssmvos.errors import SSMVOSError
from ssmvos.inference.merge import merge_folder, merge_frame, merge_frame_tensor, quantize, quantize_tensor


def test_soft_and_hard_rules_by_hand():
    a = np.array([[200, 100, 0]], np.uint8)
    b = np.array([[100, 120, 0]], np.uint8)
    # pixel 0: p=(.784,.392) bg soft=(1-.784)(1-.392)=.131 -> object 3; pixel 1: p=(.392,.471)
    # bg soft = .608*.529 = .322 < .471 -> object 7; hard bg = min(.608,.529)=.529 > .471 -> background
    assert merge_frame([3, 7], [a, b], "soft").tolist() == [[3, 7, 0]]
    assert merge_frame([3, 7], [a, b], "hard").tolist() == [[3, 0, 0]]


def test_ties_background_first_then_higher_id():
    half = np.full((1, 1), 128, np.uint8)  # p = .502, soft bg = .498*.498 -> objects tie
    assert merge_frame([1, 2], [half, half]).item() == 2
    assert merge_frame([2, 1], [half, half]).item() == 2
    one = np.full((1, 1), 255, np.uint8)
    zero = np.zeros((1, 1), np.uint8)
    assert merge_frame([5], [zero]).item() == 0  # bg 1 vs p 0
    assert merge_frame([4, 9], [one, one]).item() == 9


def test_merge_folder_skips_missing_object_frames(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    write_gray_png(inp / "v" / "1" / "00000.png", np.full((2, 2), 255, np.uint8))
    write_gray_png(inp / "v" / "2" / "00000.png", np.zeros((2, 2), np.uint8))
    write_gray_png(inp / "v" / "2" / "00001.png", np.full((2, 2), 255, np.uint8))
    assert merge_folder(inp, out, progress=False) == 2
    assert read_mask(out / "v" / "00000.png").tolist() == [[1, 1], [1, 1]]
    assert read_mask(out / "v" / "00001.png").tolist() == [[2, 2], [2, 2]]
    # one frame of another size (a mask from another run or video): refused, naming both
    write_gray_png(inp / "v" / "2" / "00002.png", np.zeros((3, 2), np.uint8))
    with pytest.raises(SSMVOSError, match=r"soft mask .*v/2/00002.png is 2x3, but the first of v \(1/00000.png\)"
                                          r" is 2x2"):
        merge_folder(inp, tmp_path / "out2", progress=False)


def test_merge_cli_and_its_errors(tmp_path):
    inp = tmp_path / "in"
    write_gray_png(inp / "v" / "255" / "00000.png", np.full((3, 3), 200, np.uint8))
    proc = run_cli("merge", "-i", inp, "-o", tmp_path / "out", "--mode", "hard")
    assert proc.returncode == 0, proc.stderr
    assert read_mask(tmp_path / "out" / "v" / "00000.png").max() == 255
    assert_clean_error(run_cli("merge", "-i", tmp_path / "missing", "-o", tmp_path / "o2"), "not found")
    write_gray_png(inp / "v" / "abc" / "00000.png", np.zeros((3, 3), np.uint8))
    assert_clean_error(run_cli("merge", "-i", inp, "-o", tmp_path / "o3"), "abc")
    write_gray_png(tmp_path / "in2" / "v" / "1" / "00000.png", np.zeros((3, 3), np.uint8))
    write_gray_png(tmp_path / "in2" / "v" / "2" / "00000.png", np.zeros((4, 3), np.uint8))
    assert_clean_error(run_cli("merge", "-i", tmp_path / "in2", "-o", tmp_path / "o4"), "00000.png")


def test_output_into_a_closed_pipe_ends_without_a_traceback():
    import os
    import subprocess
    import sys

    from conftest import ROOT, SUBPROCESS_TIMEOUT

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(f"{sys.executable} -m ssmvos download-data youtube | head -1", shell=True, env=env,
                          capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.stdout.strip().startswith("YouTube-VOS")
    assert "Traceback" not in proc.stderr, proc.stderr


def _merge_by_formula(object_ids, soft_masks, mode):
    """The rule as written: scores [background, p_1, ...] stacked, argmax (first maximum wins)."""
    order = sorted(range(len(object_ids)), key=lambda i: -object_ids[i])
    ps = [soft_masks[i].astype(np.float32) / 255 for i in order]
    background = np.ones(soft_masks[0].shape, np.float32)
    for p in ps:
        background = background * (1 - p) if mode == "soft" else np.minimum(background, 1 - p)
    lut = np.array([0, *[object_ids[i] for i in order]], np.uint8)
    return lut[np.argmax(np.stack([background, *ps]), axis=0)]


def test_merge_equals_the_formula_on_random_masks_with_ties():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 5):
        ids = [int(i) for i in rng.choice(np.arange(1, 255), n, replace=False)]
        # few distinct levels, so that ties between objects and with the background are common
        masks = [rng.choice(np.array([0, 1, 127, 128, 200, 254, 255], np.uint8), (40, 60)) for _ in ids]
        for mode in ("soft", "hard"):
            want = _merge_by_formula(ids, masks, mode)
            assert np.array_equal(merge_frame(ids, masks, mode), want)
            # float masks (not uint8) take the formula path and agree too
            assert np.array_equal(merge_frame(ids, [m.astype(np.float64) for m in masks], mode), want)


def test_torch_merge_and_quantisation_equal_numpy_bit_for_bit():
    """The device path (torch, here on the CPU) gives numpy's bits: levels of float32
    probabilities including those whose p·255 lands on or next to a whole number, and label
    maps with ties against the background and between objects, both rules."""
    import torch

    rng = np.random.default_rng(1)
    levels = np.arange(256, dtype=np.float32)
    near = np.concatenate([levels / np.float32(255), np.nextafter(levels / np.float32(255), np.float32(0)),
                           np.nextafter(levels / np.float32(255), np.float32(1)), np.float32([0.5, 1.0, 0.0])])
    probs = np.concatenate([near, rng.random(20000, dtype=np.float32)]).reshape(1, -1)
    want = quantize(probs)
    assert np.array_equal(quantize_tensor(torch.from_numpy(probs)).numpy(), want)
    assert np.array_equal(want, (probs * 255).astype(np.uint8))  # the original's rounding
    for n in (1, 2, 3, 5):
        ids = [int(i) for i in rng.choice(np.arange(1, 256), n, replace=False)]
        masks = [rng.choice(np.array([0, 1, 127, 128, 200, 254, 255], np.uint8), (40, 60)) for _ in ids]
        for mode in ("soft", "hard"):
            got = merge_frame_tensor(ids, torch.from_numpy(np.stack(masks)), mode)
            assert got.dtype == torch.uint8
            assert np.array_equal(got.numpy(), merge_frame(ids, masks, mode)), (n, mode)
    half = torch.full((2, 1, 1), 128, dtype=torch.uint8)  # objects tie: the higher id wins
    assert merge_frame_tensor([1, 2], half).item() == 2 and merge_frame_tensor([2, 1], half).item() == 2
    assert merge_frame_tensor([5], torch.zeros((1, 1, 1), dtype=torch.uint8)).item() == 0  # background's tie
