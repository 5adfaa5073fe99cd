"""MultimodalClassifier on real MSR Action3D skeletons as three streams (joint, bone, motion)."""

import itertools

import pytest
import torch
from torch import nn

from multimodal_har.fusion import build_fusion
from multimodal_har.encoders import build_encoder
from multimodal_har.model import MultimodalClassifier, nonempty_subsets, subset_key
from multimodal_har.skeleton.datasets import read_msr_action3d
from tests.conftest import SHARED
from tests.multimodal_har.encoders.padding import pad_skeletons
from tests.multimodal_har.gradients import assert_every_parameter_has_a_finite_gradient

STREAMS = ("joint", "bone", "motion")
TINY = dict(layout="kinect_v1_20", channels=((8, 1), (16, 2)))


@pytest.fixture(scope="module")
def skeleton_batch():
    """4 real sequences (different lengths) padded into one batch, with their masks."""
    seqs = list(itertools.islice(read_msr_action3d(SHARED / "skeleton" / "msr_action3d"), 0, 40, 10))
    x, mask = pad_skeletons(seqs)
    return x, mask, [len(s.keypoint) for s in seqs]


def make_model(fusion="concat", num_classes=5, **fusion_kw):
    torch.manual_seed(0)
    encoders = {m: build_encoder("skeleton_gcn", streams=(m,), **TINY) for m in STREAMS}
    if fusion == "late":
        fusion_kw["num_classes"] = num_classes
    fuse = build_fusion(fusion, dims={m: e.out_dim for m, e in encoders.items()}, **fusion_kw)
    return MultimodalClassifier(encoders=encoders, fusion=fuse, num_classes=num_classes)


def inputs_of(x, mask):
    return {m: {"x": x, "mask": mask} for m in STREAMS}


@pytest.mark.parametrize("fusion", ["concat", "late", "cross_attention"])
def test_shapes_backward_and_no_nan(skeleton_batch, fusion):
    x, mask, _ = skeleton_batch
    model = make_model(fusion, **({"width": 16, "heads": 2} if fusion == "cross_attention" else {}))
    out = model(inputs_of(x, mask))
    assert out.logits.shape == (4, 5) and torch.isfinite(out.logits).all()
    assert set(out.encoders) == set(STREAMS) and out.encoders["joint"].pooled.shape == (4, 16)
    assert out.fusion.embedding.shape == (4, model.fusion.out_dim)
    out.logits.logsumexp(1).sum().backward()
    assert_every_parameter_has_a_finite_gradient(model)


def test_late_fusion_logits_are_used_and_head_is_none(skeleton_batch):
    x, mask, _ = skeleton_batch
    model = make_model("late")
    assert model.head is None
    out = model(inputs_of(x, mask))
    assert out.logits is out.fusion.logits
    with pytest.raises(ValueError, match="produces class scores itself"):
        MultimodalClassifier(encoders=dict(model.encoders), fusion=model.fusion, num_classes=5, head=nn.Linear(5, 5))


def test_construction_checks():
    enc = {m: build_encoder("skeleton_gcn", streams=(m,), **TINY) for m in ("joint", "bone")}
    fuse = build_fusion("concat", dims={"joint": 16, "motion": 16})
    with pytest.raises(ValueError, match=r"built for modalities \['joint', 'motion'\].*encoders are for \['joint', 'bone'\]"):
        MultimodalClassifier(encoders=enc, fusion=fuse, num_classes=3)
    with pytest.raises(ValueError, match="fusion dims differ.*joint: fusion 8 vs encoder 16"):
        MultimodalClassifier(encoders=enc, fusion=build_fusion("concat", dims={"joint": 8, "bone": 16}), num_classes=3)

    class NoDim(nn.Module):
        pass

    with pytest.raises(ValueError, match="'bone' .*NoDim.* must expose an int out_dim"):
        MultimodalClassifier(encoders={"joint": enc["joint"], "bone": NoDim()},
                             fusion=build_fusion("concat", dims={"joint": 16, "bone": 16}), num_classes=3)
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        MultimodalClassifier(encoders=enc, fusion=build_fusion("concat", dims={"joint": 16, "bone": 16}), num_classes=1)


def test_absent_encoders_are_not_run_and_present_hides_rows(skeleton_batch):
    x, mask, _ = skeleton_batch
    model = make_model("concat").eval()
    calls = {m: 0 for m in STREAMS}
    def counter(m):
        def hook(module, args, output):
            calls[m] += 1
        return hook

    for m in STREAMS:
        model.encoders[m].register_forward_hook(counter(m))
    present = torch.ones(4, 3, dtype=torch.bool)
    present[:, 2] = False  # motion hidden for every sample
    present[1, 1] = False  # bone hidden for sample 1
    out = model(inputs_of(x, mask), present)
    assert calls == {"joint": 1, "bone": 1, "motion": 0}
    assert "motion" not in out.encoders
    assert out.fusion.extras["present"].tolist() == present.tolist()
    # a hidden row is encoded as zeros, and the rest equals the encoder alone on those rows
    bone = out.encoders["bone"]
    assert (bone.pooled[1] == 0).all() and not bone.mask[1].any()
    rows = torch.tensor([0, 2, 3])
    alone = model.encoders["bone"](x=x[rows], mask=mask[rows])
    torch.testing.assert_close(bone.pooled[rows], alone.pooled)
    # a modality absent from the inputs dict is missing for everyone
    out2 = model({m: inputs_of(x, mask)[m] for m in ("joint", "bone")}, present)
    torch.testing.assert_close(out2.logits, out.logits)


@pytest.mark.parametrize("fusion", ["concat", "late"])
def test_forward_subset_equals_hiding_and_subset_logits(skeleton_batch, fusion):
    x, mask, _ = skeleton_batch
    model = make_model(fusion).eval()
    inputs = inputs_of(x, mask)
    with torch.no_grad():
        sub = model.forward_subset(inputs, modalities=("joint", "motion"))
        present = torch.tensor([[True, False, True]] * 4)
        torch.testing.assert_close(sub.logits, model(inputs, present).logits)
        # the subset's output for a sample equals the model built from those encoders alone
        # (concat: the missing slot is zeros) -- here: equal to feeding only those inputs
        only = model({m: inputs[m] for m in ("joint", "motion")})
        torch.testing.assert_close(sub.logits, only.logits)
        every = model.subset_logits(inputs)
    assert list(every) == ["joint", "bone", "motion", "joint+bone", "joint+motion", "bone+motion",
                           "joint+bone+motion"]
    torch.testing.assert_close(every["joint+motion"], sub.logits)
    torch.testing.assert_close(every["joint+bone+motion"], model(inputs).logits)
    with pytest.raises(ValueError, match="non-empty subset of joint, bone, motion"):
        model.forward_subset(inputs, modalities=("rgb",))


def test_padding_parity_in_eval(skeleton_batch):
    """Each sample of the padded batch gives the logits it gives alone, unpadded."""
    x, mask, lengths = skeleton_batch
    model = make_model("late").eval()
    with torch.no_grad():
        batch = model(inputs_of(x, mask)).logits
        for b, n in enumerate(lengths):
            alone = model(inputs_of(x[b:b + 1, :n], mask[b:b + 1, :n])).logits
            torch.testing.assert_close(batch[b:b + 1], alone, atol=1e-5, rtol=1e-4)


def test_input_errors(skeleton_batch):
    x, mask, _ = skeleton_batch
    model = make_model()
    with pytest.raises(ValueError, match=r"unknown modalities \['rgb'\]"):
        model({"rgb": {"x": x}})
    with pytest.raises(ValueError, match=r"present must be \(B, M\) = \(4, 3\)"):
        model(inputs_of(x, mask), torch.ones(4, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="every input must hold B = 4"):
        model({"joint": {"x": x, "mask": mask}, "bone": {"x": x[:2], "mask": mask[:2]}})


def test_subset_helpers():
    assert nonempty_subsets(["a", "b"]) == [("a",), ("b",), ("a", "b")]
    assert len(nonempty_subsets("abcd")) == 15
    assert subset_key(("rgb", "audio")) == "rgb+audio"


def test_token_times_pool_the_valid_steps_each_token_covers():
    from multimodal_har.model import token_times

    times = torch.arange(8.0)[None].repeat(2, 1)  # (2, 8) seconds
    mask = torch.tensor([[True] * 8, [True] * 5 + [False] * 3])
    tokens = torch.tensor([[True] * 4, [True, True, False, False]])
    t = token_times(times, mask, tokens)
    # 8 steps -> 4 tokens of 2 steps; 5 valid steps -> 2 valid tokens: steps 0-2 and 2-4
    torch.testing.assert_close(t, torch.tensor([[0.5, 2.5, 4.5, 6.5], [1.0, 3.0, 0.0, 0.0]]))


def test_step_times_become_token_timestamps_and_are_not_encoder_arguments(skeleton_batch):
    x, mask, _ = skeleton_batch
    model = make_model("cross_attention", width=16, heads=2).eval()
    times = torch.arange(x.shape[1], dtype=torch.float32)[None].repeat(len(x), 1) / 15.0  # (B, T) seconds
    inputs = {m: {"x": x, "mask": mask, "times": times, "times_mask": mask} for m in STREAMS}
    with torch.no_grad():
        out = model(inputs)
        plain = model(inputs_of(x, mask))  # without times: positions are token indices
    for enc in out.encoders.values():
        ts = enc.extras["timestamps"]
        assert ts.shape == enc.mask.shape and (ts[enc.mask] >= 0).all() and (ts[~enc.mask] == 0).all()
        assert (ts[enc.mask] <= times.max()).all()
    assert not torch.allclose(out.logits, plain.logits)  # the positions reached the fusion
