"""The SSM network: state-dict layout, golden numerics against the original, stages, gradients."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import DEVICES, REFERENCE, fill_reference_weights, relative_error
from ssmvos import SSM
from ssmvos.model import ReferenceEncoding
from ssmvos.runtime import matmul_scope

INPUTS = ("ref_img", "ref_mask", "cur_img", "prev_mask")


@pytest.fixture(scope="module")
def golden():
    data = np.load(REFERENCE / "forward_conv32_blackswan.npz")
    out = {k: torch.from_numpy(data[k]) for k in INPUTS + ("out", "struct_mask")}
    out["matching"], out["keep_topk"] = str(data["matching"]), int(data["keep_topk"])
    return out


@pytest.fixture(scope="module")
def ref_model():
    model = SSM().eval()
    fill_reference_weights(model)
    return model


@pytest.mark.golden
def test_state_dict_keys_and_shapes_equal_the_original():
    want = json.loads((REFERENCE / "ssm_state_dict_shapes.json").read_text())
    got = {k: list(v.shape) for k, v in SSM().state_dict().items()}
    assert list(got) == list(want)
    assert got == want


@pytest.mark.golden
@pytest.mark.parametrize("device", DEVICES)
def test_forward_reproduces_the_original(golden, ref_model, device):
    assert golden["matching"] == "conv" and golden["keep_topk"] == 32
    model = ref_model if device == "cpu" else copy.deepcopy(ref_model).to(device)
    with torch.no_grad(), matmul_scope("fp32"):  # fp32 is IEEE float32: TF32 off on CUDA
        out, struct = (t.cpu() for t in model(*(golden[k].to(device) for k in INPUTS)))
    for got, want in ((out, golden["out"]), (struct, golden["struct_mask"])):
        assert got.shape == want.shape
        assert relative_error(got, want) <= 1e-4
        agree = (got.argmax(1) == want.argmax(1)).float().mean().item()
        assert agree >= 0.999


def test_cached_reference_equals_one_call_forward(golden, ref_model):
    with torch.no_grad():
        out, struct = ref_model(*(golden[k] for k in INPUTS))
        ref = ref_model.encode_reference(golden["ref_img"], golden["ref_mask"])
        out2, struct2 = ref_model.segment(ref, golden["cur_img"], golden["prev_mask"])
    assert torch.equal(out, out2) and torch.equal(struct, struct2)


def test_batched_objects_equal_one_at_a_time(golden, ref_model):
    ref_img, ref_mask, cur_img, prev_mask = (golden[k] for k in INPUTS)
    flipped = [t.flip(-1) for t in (ref_img, ref_mask, cur_img, prev_mask)]
    with torch.no_grad():
        singles = [ref_model(ref_img, ref_mask, cur_img, prev_mask), ref_model(*flipped)]
        refs = ReferenceEncoding.cat([ref_model.encode_reference(ref_img, ref_mask),
                                      ref_model.encode_reference(flipped[0], flipped[1])])
        batched = ref_model.segment(refs, torch.cat([cur_img, flipped[2]]), torch.cat([prev_mask, flipped[3]]))
    for i, (out, struct) in enumerate(singles):
        assert relative_error(batched[0][i : i + 1], out) <= 1e-5
        assert relative_error(batched[1][i : i + 1], struct) <= 1e-5


# --- An independent, literal re-expression of the original pixel-similarity stage ------------
# (correlation as a grouped conv2d, mask multiplication, and the repeat/view channel trick),
# so that cosine matching and other keep_topk values are checked without a fixture for each.

def _literal_pixel_similarity(module, ref_x4, cur_x4, ref_mask, cosine, k):
    b, c, h, w = ref_x4.shape
    a, q = (F.normalize(ref_x4, dim=1), F.normalize(cur_x4, dim=1)) if cosine else (ref_x4, cur_x4)
    kernels = q.permute(0, 2, 3, 1).reshape(b * h * w, c, 1, 1)
    corr = F.conv2d(a.reshape(1, b * c, h, w), kernels, groups=b).view(b, h * w, h * w)
    m = (F.interpolate(ref_mask, (h, w), mode="bilinear", align_corners=False) > 0.5).float().view(b, 1, h * w)
    fg = torch.topk(corr * m, k, dim=-1).values.view(b, h, w, k).permute(0, 3, 1, 2)
    bg = torch.topk(corr * (1 - m), k, dim=-1).values.view(b, h, w, k).permute(0, 3, 1, 2)
    # structure: positions from the summed foreground correlation, features from the
    # (un-normalised) reference map
    idx = torch.topk((corr * m).sum(-1), k, dim=1).indices
    flat = ref_x4.reshape(b, c, h * w)
    picked = flat[[[i] for i in range(b)], :, idx]
    maps = torch.bmm(picked, flat).view(b, k, h, w)
    raw = module.self_structure
    rep = maps.repeat(1, 1, c // k, 1).view(b, c, h, w) * raw.group_conv(ref_x4)
    individual = rep.view(b, k, c // k, h, w).sum(1)
    shared = maps.mean(1, keepdim=True) * raw.global_conv(ref_x4)
    struct = torch.cat([individual, shared], 1)
    return torch.cat([bg, fg, struct], 1), module.conv1x1(struct)


@pytest.mark.parametrize("matching,k", [("conv", 32), ("cosine", 32), ("conv", 16), ("cosine", 8), ("conv", 64)])
def test_pixel_similarity_matches_literal_original(matching, k):
    torch.manual_seed(0)
    model = SSM(matching=matching, keep_topk=k).eval()
    fill_reference_weights(model)
    ref_x4, cur_x4 = torch.randn(2, 1024, 12, 12), torch.randn(2, 1024, 12, 12)
    ref_mask = torch.zeros(2, 1, 192, 192)
    ref_mask[0, :, 40:150, 60:120] = 1
    ref_mask[1, :, 10:60, 100:180] = 1
    with torch.no_grad():
        from ssmvos.model.matching import reference_foreground

        fg = reference_foreground(ref_mask, (12, 12))
        parts = model.pixel_corr.self_structure.reference_parts(ref_x4)
        got_map, got_logits = model.pixel_corr(cur_x4, ref_x4, fg, *parts)
        want_map, want_logits = _literal_pixel_similarity(model.pixel_corr, ref_x4, cur_x4, ref_mask,
                                                          matching == "cosine", k)
    assert got_map.shape == (2, 2 * k + 2 * (1024 // k), 12, 12)
    assert relative_error(got_map, want_map) <= 1e-5
    assert relative_error(got_logits, want_logits) <= 1e-5


@pytest.mark.parametrize("matching,k", [("cosine", 32), ("conv", 16)])
def test_whole_network_runs_for_other_configs(matching, k):
    model = SSM(matching=matching, keep_topk=k).eval()
    x = torch.randn(1, 3, 224, 96)
    m = torch.zeros(1, 1, 224, 96)
    m[..., 30:190, 20:70] = 1
    with torch.no_grad():
        out, struct = model(x, m, x.flip(-1), m)
    assert out.shape == struct.shape == (1, 2, 224, 96)
    assert torch.isfinite(out).all()


def test_too_small_inputs_are_clear_errors():
    model = SSM(keep_topk=32).eval()
    x, m = torch.randn(1, 3, 224, 32), torch.ones(1, 1, 224, 32)  # 14×2 = 28 < 32 positions
    with pytest.raises(ValueError, match="fewer than keep_topk 32"):
        model(x, m, x, m)
    x, m = torch.randn(1, 3, 192, 256), torch.ones(1, 1, 192, 256)  # layer4 only 6 rows
    with pytest.raises(ValueError, match="at least 193"):
        model(x, m, x, m)


def test_gradients_reach_every_parameter_in_training_mode():
    torch.manual_seed(0)
    model = SSM(keep_topk=8).train()
    x = torch.randn(2, 3, 224, 64)
    m = torch.zeros(2, 1, 224, 64)
    m[:, :, 50:170, 10:50] = 1
    target = m[:, 0].long()
    out, struct = model(x, m, x + 0.1 * torch.randn_like(x), m)
    loss = F.cross_entropy(out, target) + 0.1 * F.cross_entropy(struct, target)
    loss.backward()
    without = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert without == []
    # Dropout2d is active: two training forwards differ.
    with torch.no_grad():
        a, _ = model(x, m, x, m)
        b, _ = model(x, m, x, m)
    assert not torch.equal(a, b)
