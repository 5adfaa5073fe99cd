"""Pose LSTM: shapes, packing parity with the unpadded sample, pooling, freezing, loading, real skeletons."""

from itertools import islice

import numpy as np
import pytest
import torch
from torch import nn

from multimodal_har.encoders import build_encoder
from multimodal_har.encoders.pose_lstm import PoseLSTM, prefix_lengths
from multimodal_har.skeleton.datasets import read_msr_action3d, read_utkinect
from tests.conftest import SHARED
from tests.multimodal_har.encoders.padding import pad_skeletons
from tests.multimodal_har.gradients import assert_every_parameter_has_a_finite_gradient

SMALL = dict(layout="kinect_v1_20", hidden=16, layers=3, dropout=0.5)


def test_shapes_out_dim_gradients_and_streams():
    torch.manual_seed(0)
    enc = build_encoder("pose_lstm", streams=("joint", "bone", "motion"), max_people=2, embed_dim=24, **SMALL)
    assert enc.out_dim == 16 and enc.lstm.num_layers == 3 and enc.lstm.dropout == 0.5
    assert enc.embed.in_features == 2 * 20 * 3 * 3  # people x joints x channels x streams, one vector per frame
    x = torch.randn(3, 10, 2, 20, 3)
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[1, 6:] = False
    out = enc(x, mask)
    assert out.pooled.shape == (3, 16) and out.tokens.shape == (3, 10, 16)
    assert torch.equal(out.mask, mask) and (out.tokens[1, 6:] == 0).all()
    assert torch.isfinite(out.tokens).all()
    (out.pooled.sum() + out.tokens.sum()).backward()
    assert_every_parameter_has_a_finite_gradient(enc)


def test_pooled_is_the_last_valid_hidden_state_or_the_mean():
    torch.manual_seed(0)
    enc = PoseLSTM(**SMALL).eval()
    x = torch.randn(2, 8, 1, 20, 3)
    mask = torch.tensor([[True] * 8, [True] * 5 + [False] * 3])
    out = enc(x, mask)
    torch.testing.assert_close(out.pooled[0], out.tokens[0, 7])
    torch.testing.assert_close(out.pooled[1], out.tokens[1, 4])
    enc.pool = "mean"
    torch.testing.assert_close(enc(x, mask).pooled[1], out.tokens[1, :5].mean(0))


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_padding_with_junk_and_empty_person_slots_change_nothing(pool):
    torch.manual_seed(0)
    enc = PoseLSTM(**SMALL, streams=("joint", "bone", "motion"), max_people=2, pool=pool).eval()
    x = torch.randn(1, 7, 1, 20, 3)
    ref = enc(x)
    padded = torch.cat([x, 100 * torch.randn(1, 5, 1, 20, 3)], dim=1)  # junk beyond the end
    mask = torch.arange(12)[None] < 7
    got = enc(padded, mask)
    torch.testing.assert_close(got.pooled, ref.pooled, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.tokens[:, :7], ref.tokens, rtol=1e-5, atol=1e-6)
    # batched with a longer sample = alone; an explicit empty second slot = the padded one
    batch = torch.cat([padded, torch.randn(1, 12, 1, 20, 3)])
    got = enc(torch.cat([batch, torch.zeros_like(batch)], dim=2), torch.cat([mask, torch.ones_like(mask)]))
    torch.testing.assert_close(got.pooled[:1], ref.pooled, rtol=1e-5, atol=1e-6)


def test_an_empty_sample_gives_zeros():
    enc = PoseLSTM(**SMALL).eval()
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out = enc(torch.randn(2, 3, 1, 20, 3), mask)
    assert (out.pooled[1] == 0).all() and (out.tokens[1] == 0).all() and (out.pooled[0] != 0).any()


def test_freeze_keeps_eval_and_no_grad_through_the_parent(tmp_path):
    torch.manual_seed(0)
    enc = PoseLSTM(**SMALL)
    parent = nn.ModuleDict({"pose": enc, "head": nn.Linear(16, 4)})
    enc.freeze()
    parent.train()
    assert enc.frozen and not enc.training and not enc.lstm.training and parent["head"].training
    assert not any(p.requires_grad for p in enc.parameters())
    x = torch.randn(2, 6, 1, 20, 3)
    torch.testing.assert_close(enc(x).pooled, enc(x).pooled)  # no dropout when frozen
    enc.unfreeze()
    assert enc.training and all(p.requires_grad for p in enc.parameters())
    parent.eval()
    assert not enc.training


def test_load_pretrained_from_a_classifier_checkpoint(tmp_path):
    torch.manual_seed(0)
    clf = nn.ModuleDict({"encoder": PoseLSTM(**SMALL), "head": nn.Linear(16, 4)})
    torch.save(clf.state_dict(), tmp_path / "clf.pt")
    torch.save(clf["encoder"].state_dict(), tmp_path / "enc.pt")
    x = torch.randn(2, 6, 1, 20, 3)
    ref = clf["encoder"].eval()(x).pooled
    for path, prefix in [("enc.pt", ""), ("clf.pt", "encoder.")]:
        enc = PoseLSTM(**SMALL).eval()
        enc.load_pretrained(tmp_path / path, prefix=prefix)
        torch.testing.assert_close(enc(x).pooled, ref)
    with pytest.raises(ValueError, match="no key starts with prefix 'pose.'"):
        enc.load_pretrained(tmp_path / "clf.pt", prefix="pose.")
    with pytest.raises(RuntimeError, match="Unexpected key"):
        enc.load_pretrained(tmp_path / "clf.pt")


def test_real_skeletons_msr_and_utkinect_pretraining_step():
    """A batch of real Kinect sequences of different lengths, padded: finite features, the
    padded sample equals it alone, and one classifier step on the skeletons lowers the loss."""
    seqs = list(islice(read_msr_action3d(SHARED / "skeleton" / "msr_action3d"), 0, 40, 10))
    seqs += list(islice(read_utkinect(SHARED / "skeleton" / "utkinect"), 2))
    x, mask = pad_skeletons(seqs)
    assert len({int(n) for n in mask.sum(1)}) > 1  # really of different lengths
    torch.manual_seed(0)
    enc = PoseLSTM(layout="kinect_v1_20", hidden=32, streams=("joint", "motion"))
    head = nn.Linear(32, 20)
    y = torch.tensor([s.label_index for s in seqs])
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-2)
    losses = []
    for _ in range(5):
        loss = nn.functional.cross_entropy(head(enc(x, mask).pooled), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    enc.eval()
    batch = enc(x, mask)
    n = int(mask[-1].sum())
    alone = enc(x[-1:, :n])
    torch.testing.assert_close(batch.pooled[-1:], alone.pooled, rtol=1e-4, atol=1e-5)


def test_wrong_inputs_are_named():
    enc = PoseLSTM(**SMALL)
    with pytest.raises(ValueError, match=r"expected x of shape \(B, T, M <= 1, 20, 3\) for layout kinect_v1_20"):
        enc(torch.randn(2, 5, 1, 25, 3))
    with pytest.raises(ValueError, match=r"M <= 1"):
        enc(torch.randn(2, 5, 2, 20, 3))
    with pytest.raises(ValueError, match=r"mask must be \(B, T\)"):
        enc(torch.randn(2, 5, 1, 20, 3), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"prefix mask .* samples \[1\]"):
        enc(torch.randn(2, 5, 1, 20, 3), torch.tensor([[True] * 5, [True, False, True, True, True]]))
    with pytest.raises(ValueError, match="unknown input stream 'velocity'"):
        PoseLSTM(layout="kinect_v1_20", streams=("velocity",))
    with pytest.raises(ValueError, match="unknown pool 'max'; valid choices: last, mean"):
        PoseLSTM(layout="kinect_v1_20", pool="max")


def test_prefix_lengths():
    m = torch.tensor([[True, True, False], [False, False, False], [True, True, True]])
    assert prefix_lengths(m).tolist() == [2, 0, 3]
    with pytest.raises(ValueError, match="prefix mask"):
        prefix_lengths(torch.tensor([[False, True, True]]))
