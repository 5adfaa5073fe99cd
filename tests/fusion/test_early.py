"""Early fusion: time alignment, padding parity, both temporal models, errors."""

import pytest
import torch

from multimodal_har.fusion.early import EarlyFusion
from multimodal_har.encoders import EncoderOutput

from .common import DIMS, make_output

KW = dict(dims=DIMS, width=8, heads=2, steps=4, layers=1)


def pad(o: EncoderOutput, extra: int) -> EncoderOutput:
    """The same sample with ``extra`` junk tokens appended, masked out."""
    B, T, D = o.tokens.shape
    junk = torch.full((B, extra, D), 1e4)
    return EncoderOutput(o.pooled, torch.cat([o.tokens, junk], 1),
                         torch.cat([o.mask, torch.zeros(B, extra, dtype=torch.bool)], 1))


@pytest.mark.parametrize("temporal", ["transformer", "gru"])
@pytest.mark.parametrize("align", ["pool", "interpolate"])
def test_padded_tokens_do_not_change_the_output(temporal, align):
    torch.manual_seed(0)
    f = EarlyFusion(**KW, temporal=temporal, align=align).eval()
    outs = {"a": make_output(1, 5, 6), "b": make_output(1, 3, 4), "c": make_output(1, 7, 5)}
    ref = f(outs)
    got = f({"a": pad(outs["a"], 4), "b": outs["b"], "c": pad(outs["c"], 1)})
    torch.testing.assert_close(got.embedding, ref.embedding, rtol=1e-5, atol=1e-6)
    assert ref.extras["tokens"].shape == (1, 4, 8)


def test_modalities_at_different_token_rates_are_aligned_in_time():
    """With ``align="pool"`` and 4 steps, a modality with 2 tokens and the same signal at twice
    the rate (each token repeated) line up identically."""
    torch.manual_seed(0)
    f = EarlyFusion(**KW).eval()
    a, b = make_output(2, 2, 6), make_output(2, 3, 4)
    twice = EncoderOutput(a.pooled, a.tokens.repeat_interleave(2, dim=1), a.mask.repeat_interleave(2, dim=1))
    torch.testing.assert_close(f({"a": twice, "b": b}).embedding, f({"a": a, "b": b}).embedding)


def test_the_temporal_model_sees_the_order_of_time():
    torch.manual_seed(0)
    f = EarlyFusion(**KW).eval()
    a = make_output(1, 4, 6)
    flipped = EncoderOutput(a.pooled, a.tokens.flip(1), a.mask)
    assert not torch.allclose(f({"a": a}).embedding, f({"a": flipped}).embedding)


def test_gru_shapes_and_gradients():
    torch.manual_seed(0)
    f = EarlyFusion(**KW, temporal="gru")
    out = f({m: make_output(2, 3, d) for m, d in DIMS.items()})
    assert out.embedding.shape == (2, f.out_dim) == (2, 8)
    out.embedding.sum().backward()
    assert all(p.grad is not None for p in f.parameters())


def test_wrong_settings_are_named():
    with pytest.raises(ValueError, match="unknown temporal model 'lstm'; valid choices: transformer, gru"):
        EarlyFusion(dims=DIMS, temporal="lstm")
    with pytest.raises(ValueError, match="unknown alignment 'nearest'; valid choices: pool, interpolate"):
        EarlyFusion(dims=DIMS, align="nearest")
    with pytest.raises(ValueError, match=r"width \(10\) must be divisible by heads \(4\)"):
        EarlyFusion(dims=DIMS, width=10)
    with pytest.raises(ValueError, match="width must be even for the bidirectional GRU, got 9"):
        EarlyFusion(dims=DIMS, width=9, temporal="gru")
    f = EarlyFusion(**KW)
    with pytest.raises(ValueError, match=r"a: expected tokens of shape \(B, T', D\) = \(2, T', 6\), got \(2, 3, 5\)"):
        f({"a": EncoderOutput(torch.zeros(2, 6), torch.zeros(2, 3, 5), None)})
