"""AudioCNN (PANNs CNN14 style): shapes, gradients, padding parity, real log-mel input."""

import math
from pathlib import Path

import pytest
import torch

from multimodal_har.encoders import build_encoder
from multimodal_har.encoders.audio import AudioCNN, masked_avg_pool
from multimodal_har.encoders.layers import MaskedBatchNorm
from tests.multimodal_har.encoders.padding import assert_each_sample_equals_itself_alone, lengths_mask
from tests.multimodal_har.gradients import assert_every_parameter_has_a_finite_gradient

SMALL = (8, 16, 16, 32)  # four blocks, as the default, narrow for the CPU
SPEECH = Path(__file__).resolve().parents[4] / "shared" / "data" / "audio" / "speech_16k.wav"


@pytest.mark.parametrize("pooling", ["mean", "meanmax"])
def test_shapes_out_dim_gradients_variable_lengths(pooling):
    torch.manual_seed(0)
    enc = build_encoder("audio", channels=SMALL, embed_dim=24, pooling=pooling)
    assert isinstance(enc, AudioCNN) and enc.out_dim == 24 and enc.time_downsampling == 16
    x = torch.randn(3, 50, 64)
    mask = lengths_mask([50, 33, 1], 50)
    out = enc(x, mask)
    assert out.pooled.shape == (3, 24) and out.tokens.shape == (3, 4, 24) and out.mask.shape == (3, 4)
    assert out.mask.tolist() == [[True] * 4, [True, True, True, False], [True, False, False, False]]
    assert torch.isfinite(out.pooled).all() and torch.isfinite(out.tokens).all()
    assert (out.tokens[~out.mask] == 0).all()
    (out.pooled.sum() + out.tokens.sum()).backward()
    assert_every_parameter_has_a_finite_gradient(enc)
    assert AudioCNN(channels=SMALL).out_dim == 32  # no fc1: the last block's width


@pytest.mark.parametrize("T", [1, 15, 16, 17, 40])
def test_token_count_is_ceil_of_t_over_downsampling(T):
    enc = AudioCNN(n_mels=20, channels=(4, 4, 4), time_pools=(2, 1, 3)).eval()
    assert enc.time_downsampling == 6
    out = enc(torch.randn(2, T, 20))
    assert out.tokens.shape == (2, math.ceil(T / 6), 4) and out.mask.all()
    assert torch.isfinite(out.pooled).all()


def test_masked_pool_counts_only_valid_frames():
    h = torch.arange(1.0, 16.0).view(1, 1, 5, 3)  # (B, C, T=5, F=3), frames 0..4
    valid = torch.tensor([[True, True, True, False, False]])
    h = h * valid[:, None, :, None]
    out, m = masked_avg_pool(h, valid, 2, 2)
    assert out.shape == (1, 1, 3, 2) and m.tolist() == [[True, True, False]]
    want = torch.tensor([[(1 + 2 + 4 + 5) / 4, (3 + 6) / 2],  # frames 0-1, bands 0-1 / band 2 alone
                         [(7 + 8) / 2, 9.0],  # frame 2 alone (frame 3 is padding)
                         [0.0, 0.0]])
    torch.testing.assert_close(out[0, 0], want)


@pytest.mark.parametrize("pooling", ["mean", "meanmax"])
def test_padding_with_junk_changes_nothing(pooling):
    """Each sample of a padded batch (junk: noise, huge values, NaN) equals the sample alone."""
    torch.manual_seed(0)
    enc = AudioCNN(channels=SMALL, embed_dim=16, pooling=pooling).eval()
    xs = [torch.randn(n, 64) for n in (45, 21, 17, 1)]
    assert_each_sample_equals_itself_alone(enc, xs, nan_row=2, rtol=1e-4, atol=1e-5)


def test_training_statistics_ignore_padding():
    """With dropout off, even training mode (batch statistics) is padding-blind."""
    torch.manual_seed(0)
    a = AudioCNN(channels=SMALL, dropout=0.0).train()
    b = AudioCNN(channels=SMALL, dropout=0.0).train()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 29, 64)
    padded = torch.cat([x, torch.randn(1, 19, 64) + 5.0], dim=1)
    ref, got = a(x), b(padded, lengths_mask([29], 48))
    torch.testing.assert_close(got.pooled, ref.pooled, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(b.bn0.running_mean, a.bn0.running_mean)
    torch.testing.assert_close(b.blocks[-1].bn2.running_var, a.blocks[-1].bn2.running_var, rtol=1e-4, atol=1e-5)


def test_an_empty_sample_gets_zeros():
    enc = AudioCNN(channels=(4, 8), pooling="meanmax").eval()
    mask = torch.tensor([[True] * 6, [False] * 6])
    out = enc(torch.randn(2, 6, 64), mask)
    assert (out.pooled[1] == 0).all() and not out.mask[1].any() and out.pooled[0].abs().sum() > 0


@pytest.fixture(scope="module")
def speech_logmel():
    """Log-mel of a real 16 kHz speech clip, by the extractor's own code (``(T, 64)``)."""
    from multimodal_har.extractors.audio import AudioConfig, logmel_of_chunks
    from multimodal_har.data.video import iter_audio

    if not SPEECH.exists():
        pytest.skip(f"{SPEECH} not found (the shared sample data sits beside the checkout)")
    cfg = AudioConfig()
    return torch.from_numpy(logmel_of_chunks(cfg, (c.samples for c in iter_audio(SPEECH, sample_rate=cfg.sample_rate))))


def test_real_speech_at_two_lengths(speech_logmel):
    spec = speech_logmel
    T = spec.shape[0]
    assert spec.shape[1] == 64 and T > 600  # 6.5 s at a 10 ms hop
    torch.manual_seed(0)
    enc = AudioCNN(channels=SMALL, embed_dim=32, pooling="meanmax")
    for m in enc.modules():  # running statistics := this clip's (as a long training would settle them)
        if isinstance(m, MaskedBatchNorm):
            m.momentum = 1.0
    with torch.no_grad():
        enc.train()(spec[None])
    enc.eval()
    torch.testing.assert_close(enc.bn0.running_mean, spec.mean(dim=0))  # per-band mean of the real clip
    short = 250  # the first 2.5 s
    batch = torch.stack([spec, torch.cat([spec[:short], torch.full((T - short, 64), float("nan"))])])
    out = enc(batch, lengths_mask([T, short], T))
    assert out.tokens.shape == (2, math.ceil(T / 16), 32)
    assert out.mask.sum(dim=1).tolist() == [math.ceil(T / 16), math.ceil(short / 16)]
    assert torch.isfinite(out.pooled).all()
    for i, x in enumerate([spec, spec[:short]]):
        torch.testing.assert_close(out.pooled[i], enc(x[None]).pooled[0], rtol=1e-4, atol=1e-5)
    assert (out.pooled[0] - out.pooled[1]).abs().max() > 1e-2  # 6.5 s and its first 2.5 s differ
    # tokens are local in time: replace the clip after the cut with other real audio (the
    # clip reversed); token j sees frames 16j - 30 .. 16j + 45 (four blocks of two 3-tap convs)
    other = torch.cat([spec[:short], spec.flip(0)[: T - short]])[None]
    changed = (enc(other).tokens[0] - out.tokens[0]).abs().amax(dim=1)  # (T',)
    last_blind = (short - 46) // 16
    assert changed[: last_blind + 1].max() < 1e-5 and changed[math.ceil(short / 16):].min() > 1e-4


def test_wrong_inputs_are_named():
    enc = AudioCNN(channels=(4,))
    with pytest.raises(ValueError, match=r"expected log-mel frames x of shape \(B, T, 64\) .*got \(2, 10, 80\)"):
        enc(torch.randn(2, 10, 80))
    with pytest.raises(ValueError, match=r"expected log-mel frames x of shape \(B, T, 64\) .*got \(10, 64\)"):
        enc(torch.randn(10, 64))
    with pytest.raises(ValueError, match=r"T >= 1.*got \(2, 0, 64\)"):
        enc(torch.randn(2, 0, 64))
    with pytest.raises(ValueError, match=r"mask must be \(B, T\) = \(2, 10\), got \(2, 9\)"):
        enc(torch.randn(2, 10, 64), torch.ones(2, 9, dtype=torch.bool))
    with pytest.raises(ValueError, match="unknown pooling 'max'; valid choices: mean, meanmax"):
        AudioCNN(pooling="max")
    with pytest.raises(ValueError, match=r"time_pools must give one factor >= 1 per block \(2\)"):
        AudioCNN(channels=(4, 8), time_pools=(2,))
    with pytest.raises(ValueError, match="channels must be a non-empty sequence"):
        AudioCNN(channels=())
