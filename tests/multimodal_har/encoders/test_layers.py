"""The shared encoder blocks: masked mean, mask helpers, and MaskedBatchNorm (plain BN when
all is valid, BN of the valid part alone otherwise)."""

import pytest
import torch
from torch import nn

from multimodal_har.encoders.layers import MaskedBatchNorm, default_mask, downsample_mask, masked_mean


def test_masked_mean_by_hand():
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    torch.testing.assert_close(masked_mean(tokens, mask), torch.tensor([[2.0, 3.0], [0.0, 0.0]]))


def test_mask_helpers():
    assert default_mask(None, 2, 3, "cpu").all() and default_mask(None, 2, 3, "cpu").shape == (2, 3)
    with pytest.raises(ValueError, match=r"mask must be \(B, T\) = \(2, 3\), got \(2, 4\)"):
        default_mask(torch.ones(2, 4), 2, 3, "cpu")
    m = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0], [1] * 8], dtype=torch.bool)
    # 8 frames in 4 windows of 2: frames 0-4 valid -> windows 0, 1, 2 (frame 4)
    assert downsample_mask(m, 4).tolist() == [[True, True, True, False], [True] * 4]
    # 3 windows over 8 frames: [0, 3), [2, 6), [5, 8)
    assert downsample_mask(m, 3).tolist() == [[True, True, False], [True] * 3]
    assert downsample_mask(m, 8) is m


def _pair(c):
    torch.manual_seed(0)
    ref, bn = nn.BatchNorm2d(c), MaskedBatchNorm(c)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 2.0)
        ref.bias.uniform_(-1.0, 1.0)
    bn.load_state_dict(ref.state_dict())  # same names as nn.BatchNorm2d
    return ref, bn


def test_all_valid_equals_batchnorm_in_training_and_eval():
    ref, bn = _pair(4)
    x = torch.randn(3, 4, 7, 5) * 3 + 2
    full = torch.ones(3, 1, 7, 1, dtype=torch.bool)
    for _ in range(2):
        torch.testing.assert_close(bn(x, full), ref(x))
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)
    assert int(bn.num_batches_tracked) == int(ref.num_batches_tracked) == 2
    ref.eval(), bn.eval()
    torch.testing.assert_close(bn(x, full), ref(x))


def test_statistics_come_from_valid_positions_only():
    ref, bn = _pair(4)
    x = torch.randn(2, 4, 9, 3)
    mask = torch.zeros(2, 1, 9, 1, dtype=torch.bool)
    mask[0, :, :9] = True
    mask[1, :, :4] = True
    junk = x.clone()
    junk[1, :, 4:] = 1e4  # padding holding anything
    got = bn(junk, mask)
    # the valid frames, laid out side by side: (1, C, 9 + 4, F) through ordinary BN
    valid = torch.cat([x[0:1], x[1:2, :, :4]], dim=2)
    want = ref(valid)
    torch.testing.assert_close(torch.cat([got[0:1], got[1:2, :, :4]], dim=2), want)
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)


def test_wrong_channels_are_named():
    with pytest.raises(ValueError, match=r"expected x of shape \(B, 4, \.\.\.\), got \(2, 3, 5\)"):
        MaskedBatchNorm(4)(torch.randn(2, 3, 5))
