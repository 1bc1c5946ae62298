"""Checkpoint files: every accepted format loads; every mismatch is one clear error; saving
is atomic."""
from __future__ import annotations

import pytest
import torch

from conftest import assert_clean_error, run_cli
from ssmvos import SSM, SSMVOSError, load_checkpoint, read_checkpoint, save_checkpoint
from ssmvos.checkpoint import check_state_dict, infer_config


@pytest.fixture(scope="module")
def small_state():
    torch.manual_seed(0)
    return SSM(keep_topk=64).state_dict()


def test_published_format_saved_by_legacy_torch_loads(tmp_path, small_state):
    path = tmp_path / "legacy.pt"
    torch.save({"model_dict": small_state, "global_step": 80999}, path, _use_new_zipfile_serialization=False)
    ckpt = read_checkpoint(path)
    assert ckpt.global_step == 80999
    model = load_checkpoint(path)
    assert model.config["keep_topk"] == 64 and not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, small_state[k])


def test_bare_and_module_prefixed_state_dicts_load(tmp_path, small_state):
    torch.save(small_state, tmp_path / "bare.pt")
    torch.save({"model_dict": {f"module.{k}": v for k, v in small_state.items()}, "global_step": 1},
               tmp_path / "ddp.pt")
    for name in ("bare.pt", "ddp.pt"):
        model = load_checkpoint(tmp_path / name)
        assert torch.equal(model.state_dict()["classifier.weight"], small_state["classifier.weight"])


def test_infer_config_from_shapes(small_state):
    assert infer_config(small_state) == {"keep_topk": 64, "encoder": "resnet50"}


@pytest.mark.parametrize("change,needle", [
    (lambda s: s.pop("classifier.bias"), "missing keys: classifier.bias"),
    (lambda s: s.__setitem__("extra.weight", torch.zeros(1)), "unexpected keys: extra.weight"),
    (lambda s: s.__setitem__("classifier.weight", torch.zeros(3, 256, 3, 3)), "shape mismatches: classifier.weight"),
])
def test_mismatches_are_named_in_one_error(tmp_path, small_state, change, needle):
    state = dict(small_state)
    change(state)
    save_checkpoint(tmp_path / "c.pt", state, 3)
    with pytest.raises(SSMVOSError, match=needle.replace(".", r"\.")) as info:
        load_checkpoint(tmp_path / "c.pt", SSM(keep_topk=64))
    assert "c.pt" in str(info.value) and "\n" not in str(info.value)


def test_all_problems_listed_together(small_state):
    state = dict(small_state)
    state.pop("classifier.bias")
    state["x"] = torch.zeros(1)
    state["classifier.weight"] = torch.zeros(1)
    with pytest.raises(SSMVOSError) as info:
        check_state_dict(SSM(keep_topk=64), state, "ckpt")
    msg = str(info.value)
    assert "missing keys" in msg and "unexpected keys" in msg and "shape mismatches" in msg


@pytest.mark.parametrize("content", [b"hello", b"", b"PK\x03\x04broken zip", None])
def test_files_that_are_not_checkpoints(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content is None:
        torch.save([1, 2, 3], path)  # a valid torch file that holds no state dict
    else:
        path.write_bytes(content)
    with pytest.raises(SSMVOSError, match="bad.pt"):
        read_checkpoint(path)
    with pytest.raises(SSMVOSError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(SSMVOSError, match="directory"):
        read_checkpoint(tmp_path)


def test_files_that_are_no_checkpoint_say_what_they_are(tmp_path):
    """A mask, a frame or a text file given as --weights by mistake: named for what it is,
    not as 'Python objects besides tensors'."""
    for name, data, words in (("mask.png", b"\x89PNG\r\n\x1a\n" + bytes(40), "it is a PNG image"),
                              ("frame.jpg", b"\xff\xd8\xff\xe0" + bytes(40), "it is a JPEG image"),
                              ("notes.txt", b"weights live elsewhere\n", "it is a text file"),
                              ("empty.pt", b"", "it is empty")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SSMVOSError, match=f"{name} is not a PyTorch checkpoint file: {words}"):
            read_checkpoint(tmp_path / name)


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model_dict": {"a": torch.zeros(1)}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(SSMVOSError, match="evil.pt"):
        read_checkpoint(tmp_path / "evil.pt")


def test_save_is_atomic(tmp_path, small_state, monkeypatch):
    path = save_checkpoint(tmp_path / "ck.pt", small_state, 5)
    before = path.read_bytes()

    def dies(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, small_state, 6)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_cli_reports_a_bad_checkpoint_on_one_line(tmp_path):
    (tmp_path / "w.pt").write_text("nope")
    proc = run_cli("segment", "--demo", "--out", tmp_path / "o", "--weights", tmp_path / "w.pt", "--device", "cpu")
    assert_clean_error(proc, "w.pt")
