"""Shared fusion blocks: time alignment of token sequences and sinusoidal encodings, by hand."""

import math

import pytest
import torch

from multimodal_har.fusion.layers import align_tokens, alignment_weights, sinusoidal_encoding

NAN = float("nan")


def seq(values, valid):
    """One sample of 1-d tokens ``(1, T, 1)`` and its mask ``(1, T)``."""
    return torch.tensor(values, dtype=torch.float32)[None, :, None], torch.tensor([valid])


@pytest.mark.parametrize("mode,values,valid,steps,expected", [
    ("pool", [0, 1, 2, 3, NAN, NAN], [1, 1, 1, 1, 0, 0], 2, [0.5, 2.5]),
    ("pool", [0, 1, 2, 3], [1, 1, 1, 1], 3, [0.5, 1.5, 2.5]),  # bins [0,2), [1,3), [2,4)
    ("pool", [5, 7, NAN], [1, 1, 0], 4, [5, 5, 7, 7]),  # upsampling repeats
    ("pool", [NAN, 1, NAN, 3], [0, 1, 0, 1], 2, [1, 3]),  # valid tokens need not be a prefix
    ("interpolate", [0, 4, NAN], [1, 1, 0], 4, [0, 1, 3, 4]),  # centres at 0, .25, .75, 1 of 2 tokens
    ("interpolate", [0, 1, 2, 3], [1, 1, 1, 1], 2, [0.5, 2.5]),
    ("interpolate", [2, NAN], [1, 0], 3, [2, 2, 2]),
    ("pool", [NAN, NAN], [0, 0], 3, [0, 0, 0]),  # nothing valid: zeros
    ("interpolate", [NAN, NAN], [0, 0], 3, [0, 0, 0]),
])
def test_alignment_by_hand(mode, values, valid, steps, expected):
    x, mask = seq(values, [bool(v) for v in valid])
    got = align_tokens(x, mask, steps, mode)
    torch.testing.assert_close(got[0, :, 0], torch.tensor(expected, dtype=torch.float32))


@pytest.mark.parametrize("mode", ["pool", "interpolate"])
def test_alignment_is_per_sample_and_rows_sum_to_one(mode):
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    W = alignment_weights(mask, 5, mode)
    assert W.shape == (3, 5, 7)
    torch.testing.assert_close(W.sum(-1), torch.tensor([[1.0] * 5, [1.0] * 5, [0.0] * 5]))
    assert (W[~mask[:, None, :].expand_as(W)] == 0).all()
    x = torch.randn(3, 7, 4)
    short = align_tokens(x[1:2, :2], mask[1:2, :2], 5, mode)
    torch.testing.assert_close(align_tokens(x, mask, 5, mode)[1:2], short)  # padding changes nothing


def test_alignment_errors():
    with pytest.raises(ValueError, match="unknown alignment 'nearest'; valid choices: pool, interpolate"):
        alignment_weights(torch.ones(1, 3, dtype=torch.bool), 2, "nearest")
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        alignment_weights(torch.ones(1, 3, dtype=torch.bool), 0)


def test_sinusoidal_encoding_by_hand():
    pe = sinusoidal_encoding(torch.tensor([[0.0, 2.5]]), 4)  # frequencies 1 and 10000^(-1/2)
    p = 2.5
    torch.testing.assert_close(pe[0], torch.tensor([[0, 0, 1, 1], [math.sin(p), math.sin(p / 100), math.cos(p),
                                                                  math.cos(p / 100)]]))
    assert sinusoidal_encoding(torch.zeros(2, 3), 5).shape == (2, 3, 5)
