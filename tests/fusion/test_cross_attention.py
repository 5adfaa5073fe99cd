"""Cross-modal attention (Dyadformer-style): masks, missing key modalities, attention maps, timestamps."""

import pytest
import torch

from multimodal_har.fusion.cross_attention import CrossAttentionFusion, key_padding
from multimodal_har.encoders import EncoderOutput

from .common import DIMS, make_output

KW = dict(dims=DIMS, width=8, heads=2, self_layers=1, cross_layers=2, hidden=16)


def with_times(o: EncoderOutput, seconds) -> EncoderOutput:
    return o._replace(extras={"timestamps": torch.as_tensor(seconds, dtype=torch.float32)})


def test_key_padding_lets_one_dummy_key_through_only_where_none_is_valid():
    mask = torch.tensor([[True, False, False], [False, False, False], [False, True, True]])
    assert key_padding(mask).tolist() == [[False, True, True], [False, True, True], [True, False, False]]


def test_padded_tokens_and_timestamps_do_not_change_the_output():
    torch.manual_seed(0)
    f = CrossAttentionFusion(**KW).eval()
    outs = {m: make_output(1, t, d) for (m, d), t in zip(DIMS.items(), (5, 3, 7))}
    outs["b"] = with_times(outs["b"], [[0.0, 0.5, 1.0]])
    ref = f(outs).embedding
    b = outs["b"]
    padded = EncoderOutput(b.pooled, torch.cat([b.tokens, torch.full((1, 4, 4), 1e4)], 1),
                           torch.cat([b.mask, torch.zeros(1, 4, dtype=torch.bool)], 1),
                           {"timestamps": torch.tensor([[0.0, 0.5, 1.0, float("nan"), 7, 8, 9]])})
    torch.testing.assert_close(f({**outs, "b": padded}).embedding, ref, rtol=1e-5, atol=1e-6)


def test_a_sample_whose_only_key_modality_is_missing_has_no_nan():
    """Two modalities; sample 0 has only ``a``: its cross-attention a->b has no valid key."""
    torch.manual_seed(0)
    dims = {"a": 6, "b": 4}
    f = CrossAttentionFusion(**{**KW, "dims": dims}).train()
    a = make_output(2, 5, 6)
    b = make_output(2, 3, 4)
    a = a._replace(tokens=a.tokens.requires_grad_())
    present = torch.tensor([[True, False], [True, True]])
    out = f({"a": a, "b": b}, present, return_attention=True)
    assert torch.isfinite(out.embedding).all()
    out.embedding.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in f.parameters())
    assert torch.isfinite(a.tokens.grad).all()
    w = out.extras["attention"]["cross"]["a->b"][0]  # (B, T_a, T_b)
    assert (w[0] == 0).all() and torch.isfinite(w).all()
    f.eval()  # and the sample equals ``a`` alone
    alone = f({"a": EncoderOutput(a.pooled[:1], a.tokens[:1], a.mask[:1])}).embedding
    torch.testing.assert_close(f({"a": a, "b": b}, present).embedding[:1], alone, rtol=1e-5, atol=1e-6)


def test_attention_maps_are_retrievable_and_respect_the_masks():
    torch.manual_seed(0)
    f = CrossAttentionFusion(**KW).eval()
    outs = {"a": make_output(2, 5, 6, lengths=[5, 2]), "b": make_output(2, 3, 4, lengths=[3, 3]),
            "c": make_output(2, 7, 5)}
    present = torch.tensor([[True, True, True], [True, False, True]])
    out = f(outs, present, return_attention=True)
    att = out.extras["attention"]
    assert sorted(att["self"]) == ["a", "b", "c"] and len(att["self"]["a"]) == 1
    assert sorted(att["cross"]) == ["a->b", "a->c", "b->a", "b->c", "c->a", "c->b"]
    assert len(att["cross"]["a->c"]) == 2  # one per cross layer
    sa = att["self"]["a"][0]
    assert sa.shape == (2, 5, 5)
    torch.testing.assert_close(sa.sum(-1), torch.ones(2, 5))
    assert (sa[1, :, 2:] == 0).all()  # sample 1 has 2 valid tokens of a: padded keys get no weight
    ca = att["cross"]["c->a"][1]
    assert ca.shape == (2, 7, 5) and (ca[1, :, 2:] == 0).all()
    torch.testing.assert_close(ca.sum(-1), torch.ones(2, 7))
    ab = att["cross"]["a->b"][0]
    torch.testing.assert_close(ab[0].sum(-1), torch.ones(5))
    assert (ab[1] == 0).all() and (att["self"]["b"][0][1] == 0).all()  # b is missing in sample 1
    assert "attention" not in f(outs, present).extras
    torch.testing.assert_close(f(outs, present).embedding, out.embedding)


def test_timestamps_place_tokens_on_a_time_axis():
    torch.manual_seed(0)
    f = CrossAttentionFusion(**KW, time_scale=4.0).eval()
    outs = {m: make_output(2, t, d) for (m, d), t in zip(DIMS.items(), (5, 3, 7))}
    ref = f(outs).embedding
    index = {**outs, "a": with_times(outs["a"], torch.arange(5.0).expand(2, 5) / 4.0)}
    torch.testing.assert_close(f(index).embedding, ref)  # seconds * time_scale == token index
    later = {**outs, "a": with_times(outs["a"], torch.arange(5.0).expand(2, 5) / 4.0 + 3.0)}
    assert not torch.allclose(f(later).embedding, ref)
    with pytest.raises(ValueError, match=r"a: extras\['timestamps'\] must be \(B, T'\) = \(2, 5\) seconds, "
                                         r"got \(2, 4\)"):
        f({**outs, "a": with_times(outs["a"], torch.zeros(2, 4))})


def test_a_cross_layer_updates_queries_from_the_other_modalities_present():
    torch.manual_seed(0)
    f = CrossAttentionFusion(**KW).eval()
    layer = f.cross[0]
    xs = {"a": torch.randn(2, 5, 8), "b": torch.randn(2, 3, 8), "c": torch.randn(2, 4, 8)}
    masks = {"a": torch.ones(2, 5, dtype=torch.bool), "b": torch.tensor([[True] * 3, [False] * 3]),
             "c": torch.ones(2, 4, dtype=torch.bool)}
    out, _ = layer(xs, masks)
    changed, _ = layer({**xs, "b": torch.randn(2, 3, 8)}, masks)
    assert not torch.allclose(changed["a"][0], out["a"][0])  # sample 0: a attends to b
    torch.testing.assert_close(changed["a"][1], out["a"][1])  # sample 1 has no b
    # and sample 1 is updated as if b were not there at all: the mean over the others present
    without_b, _ = layer({"a": xs["a"], "c": xs["c"]}, {"a": masks["a"], "c": masks["c"]})
    torch.testing.assert_close(without_b["a"][1], out["a"][1])
    torch.testing.assert_close(without_b["c"][1], out["c"][1])


def test_wrong_settings_are_named():
    with pytest.raises(ValueError, match=r"width \(10\) must be divisible by heads \(4\)"):
        CrossAttentionFusion(dims=DIMS, width=10, heads=4)
    with pytest.raises(ValueError, match="layer counts must be >= 0"):
        CrossAttentionFusion(dims=DIMS, width=8, heads=2, cross_layers=-1)


def test_inference_mode_fast_path_gives_the_same_output():
    """Under ``inference_mode`` PyTorch may take its fused attention path; masks must hold there too."""
    torch.manual_seed(0)
    f = CrossAttentionFusion(**KW).eval()
    outs = {"a": make_output(2, 5, 6, lengths=[5, 2]), "b": make_output(2, 3, 4), "c": make_output(2, 7, 5)}
    present = torch.tensor([[True, False, True], [False, True, False]])
    ref = f(outs, present).embedding
    with torch.inference_mode():
        got = f(outs, present).embedding
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
