"""TemporalConvNet (Bai et al. 2018): shapes, gradients, causality and receptive field,
right-padding parity, token stride, an accelerometer-like signal."""

import math

import pytest
import torch

from multimodal_har.encoders import build_encoder
from multimodal_har.encoders.signal import TemporalConvNet
from tests.multimodal_har.encoders.padding import assert_each_sample_equals_itself_alone, lengths_mask
from tests.multimodal_har.gradients import assert_every_parameter_has_a_finite_gradient

SMALL = (8, 8, 16)


def accelerometer(seconds: float, *, rate: float = 50.0, cadence: float = 1.8, seed: int = 0) -> torch.Tensor:
    """Synthetic 3-axis accelerometer of walking, ``(T, 3)`` in m/s^2 (no real IMU recording
    is available here): gravity on z, the step frequency and its harmonics on every axis with
    axis-specific amplitudes and phases (vertical bounce strongest), sensor noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate), dtype=torch.float64)[:, None] / rate  # (T, 1)
    amp = torch.tensor([[1.2, 0.6, 2.5], [0.4, 0.3, 0.9], [0.15, 0.1, 0.3]], dtype=torch.float64)  # harmonic x axis
    phase = torch.rand(3, 3, generator=g, dtype=torch.float64) * 2 * math.pi
    x = sum(amp[k] * torch.sin(2 * math.pi * (k + 1) * cadence * t + phase[k]) for k in range(3))
    noise = 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    x = x + torch.tensor([0.0, 0.0, 9.81], dtype=torch.float64) + noise
    return x.float()


@pytest.mark.parametrize("token_stride", [1, 4])
def test_shapes_out_dim_gradients_variable_lengths(token_stride):
    torch.manual_seed(0)
    enc = build_encoder("signal", in_channels=6, channels=SMALL, token_stride=token_stride)
    assert isinstance(enc, TemporalConvNet) and enc.out_dim == 16
    lengths = [30, 13, 1]
    out = enc(torch.randn(3, 30, 6), lengths_mask(lengths, 30))
    Tp = math.ceil(30 / token_stride)
    assert out.pooled.shape == (3, 16) and out.tokens.shape == (3, Tp, 16) and out.mask.shape == (3, Tp)
    assert out.mask.sum(dim=1).tolist() == [math.ceil(n / token_stride) for n in lengths]
    assert torch.isfinite(out.pooled).all() and torch.isfinite(out.tokens).all()
    assert (out.tokens[~out.mask] == 0).all()
    (out.pooled.sum() + out.tokens.sum()).backward()
    assert_every_parameter_has_a_finite_gradient(enc)


@pytest.mark.parametrize("T", [1, 3, 4, 5])
def test_sequences_shorter_than_the_stride_or_the_receptive_field(T):
    enc = TemporalConvNet(in_channels=3, channels=SMALL, token_stride=4).eval()
    out = enc(torch.randn(2, T, 3))
    assert out.tokens.shape == (2, math.ceil(T / 4), 16) and out.mask.all()
    assert torch.isfinite(out.pooled).all()


@pytest.mark.parametrize("kernel_size,channels,expected", [(3, (64, 64, 128, 128), 61), (2, (8, 8), 7), (5, SMALL, 57)])
def test_receptive_field_formula(kernel_size, channels, expected):
    enc = TemporalConvNet(in_channels=2, channels=channels, kernel_size=kernel_size)
    assert enc.receptive_field == expected  # 1 + 2 (k - 1) (2^L - 1)


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_an_impulse_reaches_exactly_the_receptive_field(kernel_size):
    """Causal: an impulse at step t changes outputs t .. t + R - 1 and no other."""
    torch.manual_seed(0)
    enc = TemporalConvNet(in_channels=3, channels=SMALL, kernel_size=kernel_size).eval()
    R, t, T = enc.receptive_field, 10, 10 + enc.receptive_field + 15
    x = torch.randn(1, T, 3)
    kicked = x.clone()
    kicked[0, t] += 3.0
    with torch.no_grad():
        diff = (enc(kicked).tokens - enc(x).tokens).abs().amax(dim=2)[0]  # (T,)
    assert diff[:t].max() == 0  # nothing before the impulse
    assert diff[t] > 1e-4 and diff[t + R - 1] > 1e-6  # the impulse itself, and the edge of the field
    assert diff[t + R:].max() == 0  # the first output that ignores it is t + R


def test_each_output_depends_on_its_receptive_field_only():
    """The same, as a Jacobian: d out[u] / d x[s] != 0 exactly for u - R < s <= u."""
    torch.manual_seed(0)
    enc = TemporalConvNet(in_channels=2, channels=(16, 16), kernel_size=3).eval()
    R, T = enc.receptive_field, 30  # R = 13
    for u in (0, 5, 20, 29):
        x = torch.randn(3, T, 2, requires_grad=True)  # three draws, so no path is dead (ReLU) in all
        enc(x).tokens[:, u].sum().backward()
        support = (x.grad.abs().sum(dim=(0, 2)) > 0).nonzero().flatten().tolist()
        assert support == list(range(max(0, u - R + 1), u + 1)), u


@pytest.mark.parametrize("token_stride", [1, 3])
def test_right_padding_with_junk_changes_nothing(token_stride):
    torch.manual_seed(0)
    enc = TemporalConvNet(in_channels=3, channels=SMALL, token_stride=token_stride).eval()
    xs = [torch.randn(n, 3) for n in (40, 17, 11, 1)]
    assert_each_sample_equals_itself_alone(enc, xs, nan_row=1, rtol=1e-5, atol=1e-6)


def test_training_mode_is_padding_blind_too():
    """Weight norm has no batch statistics and the input norm counts valid steps only."""
    torch.manual_seed(0)
    a = TemporalConvNet(in_channels=3, channels=SMALL, dropout=0.0)
    b = TemporalConvNet(in_channels=3, channels=SMALL, dropout=0.0)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 23, 3) * 4 + 2
    padded = torch.cat([x, torch.zeros(1, 9, 3)], dim=1)  # zero padding would bias plain BN's mean
    torch.testing.assert_close(b(padded, lengths_mask([23], 32)).pooled, a(x).pooled)
    torch.testing.assert_close(b.input_norm.running_mean, a.input_norm.running_mean)


def test_token_stride_averages_steps_and_leaves_pooled_alone():
    torch.manual_seed(0)
    step = TemporalConvNet(in_channels=3, channels=SMALL).eval()
    strided = TemporalConvNet(in_channels=3, channels=SMALL, token_stride=4).eval()
    strided.load_state_dict(step.state_dict())  # the stride adds no parameters
    x, mask = torch.randn(1, 14, 3), lengths_mask([10], 14)
    a, b = step(x, mask), strided(x, mask)
    want = torch.stack([a.tokens[0, 0:4].mean(0), a.tokens[0, 4:8].mean(0), a.tokens[0, 8:10].mean(0)])
    torch.testing.assert_close(b.tokens[0, :3], want)  # the last window: its two valid steps
    assert b.mask[0].tolist() == [True, True, True, False]
    torch.testing.assert_close(b.pooled, a.pooled)


def test_accelerometer_like_walking_at_two_lengths():
    """Synthetic walking (see :func:`accelerometer`): 50 Hz, 10 s and 6.3 s in one batch."""
    torch.manual_seed(0)
    enc = TemporalConvNet(in_channels=3, channels=(16, 16, 32, 32), token_stride=5)
    long, short = accelerometer(10.0), accelerometer(6.3, seed=1)
    T = len(long)
    batch = torch.zeros(2, T, 3)
    batch[0], batch[1, : len(short)] = long, short
    mask = lengths_mask([T, len(short)], T)
    with torch.no_grad():
        enc.train()(batch, mask)  # one training step's statistics
    # the input norm saw the valid steps only: gravity (9.81 on z) not diluted by zero padding
    valid = torch.cat([long, short])
    torch.testing.assert_close(enc.input_norm.running_mean, 0.1 * valid.mean(dim=0), rtol=1e-4, atol=1e-5)
    enc.eval()
    out = enc(batch, mask)
    assert out.tokens.shape == (2, T // 5, 32) and out.mask.sum(dim=1).tolist() == [100, math.ceil(len(short) / 5)]
    assert torch.isfinite(out.pooled).all()
    for i, x in enumerate([long, short]):
        torch.testing.assert_close(out.pooled[i], enc(x[None]).pooled[0], rtol=1e-5, atol=1e-6)
    # tokens follow the gait: at a cadence of 2 steps/s a period is 25 samples = 5 tokens, so
    # past the receptive field's warm-up (61 samples) the tokens repeat with lag 5, not lag 2
    tok = enc(accelerometer(10.0, cadence=2.0)[None]).tokens[0, 20:]
    lag5, lag2 = (tok[5:] - tok[:-5]).abs().mean(), (tok[2:] - tok[:-2]).abs().mean()
    assert lag2 > 0.05 * tok.abs().mean() and lag5 < 0.1 * lag2


def test_wrong_inputs_are_named():
    enc = TemporalConvNet(in_channels=3, channels=(4,))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, T, 3\) .*got \(2, 10, 6\)"):
        enc(torch.randn(2, 10, 6))
    with pytest.raises(ValueError, match=r"expected x of shape \(B, T, 3\) .*got \(2, 3, 10, 1\)"):
        enc(torch.randn(2, 3, 10, 1))
    with pytest.raises(ValueError, match=r"T >= 1, got \(2, 0, 3\)"):
        enc(torch.randn(2, 0, 3))
    with pytest.raises(ValueError, match=r"mask must be \(B, T\) = \(2, 10\), got \(10,\)"):
        enc(torch.randn(2, 10, 3), torch.ones(10, dtype=torch.bool))
    with pytest.raises(ValueError, match="kernel_size must be >= 2"):
        TemporalConvNet(in_channels=3, kernel_size=1)
    with pytest.raises(ValueError, match="token_stride must be >= 1, got 0"):
        TemporalConvNet(in_channels=3, token_stride=0)
    with pytest.raises(TypeError):
        TemporalConvNet(3)  # keyword-only
