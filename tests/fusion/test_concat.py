"""Concatenation: the embedding checked against hand-written tensors."""

import pytest
import torch

from multimodal_har.fusion.concat import ConcatFusion
from multimodal_har.encoders import EncoderOutput


def pooled(rows):
    x = torch.tensor(rows, dtype=torch.float32)
    return EncoderOutput(pooled=x, tokens=x[:, None], mask=torch.ones(len(rows), 1, dtype=torch.bool))


def test_concatenation_by_hand():
    f = ConcatFusion(dims={"rgb": 2, "pose": 1, "audio": 3}, indicator=True)
    assert f.out_dim == 2 + 1 + 3 + 3
    outs = {"rgb": pooled([[1, 2], [3, 4]]), "pose": pooled([[5], [float("nan")]]),
            "audio": pooled([[6, 7, 8], [9, 10, 11]])}
    present = torch.tensor([[True, True, False], [True, False, True]])
    out = f(outs, present)
    expected = torch.tensor([[1, 2, 5, 0, 0, 0, 1, 1, 0],
                             [3, 4, 0, 9, 10, 11, 1, 0, 1]], dtype=torch.float32)
    torch.testing.assert_close(out.embedding, expected, rtol=0, atol=0)
    assert out.logits is None and (out.extras["present"] == present).all()


def test_absent_modality_gives_zeros_in_its_slot_and_no_indicator_by_default():
    f = ConcatFusion(dims={"rgb": 2, "pose": 1})
    assert f.out_dim == 3
    out = f({"pose": pooled([[5], [6]])})
    torch.testing.assert_close(out.embedding, torch.tensor([[0.0, 0, 5], [0, 0, 6]]), rtol=0, atol=0)


def test_a_sample_whose_tokens_are_all_padding_counts_as_missing():
    f = ConcatFusion(dims={"rgb": 2}, indicator=True)
    o = pooled([[1, 2], [3, 4]])
    out = f({"rgb": o._replace(mask=torch.tensor([[True], [False]]))})
    torch.testing.assert_close(out.embedding, torch.tensor([[1.0, 2, 1], [0, 0, 0]]), rtol=0, atol=0)


def test_gradient_flows_to_present_inputs_only():
    x = torch.randn(2, 3, requires_grad=True)
    f = ConcatFusion(dims={"a": 3})
    f({"a": EncoderOutput(x, x[:, None], None)}, torch.tensor([[True], [False]])).embedding.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([[1.0, 1, 1], [0, 0, 0]]))


def test_wrong_pooled_shape_is_named():
    with pytest.raises(ValueError, match=r"rgb: expected pooled of shape \(B, D\) = \(2, 2\), got \(2, 3\)"):
        ConcatFusion(dims={"pose": 1, "rgb": 2})({"pose": pooled([[1], [2]]), "rgb": pooled([[1, 2, 3], [4, 5, 6]])})
