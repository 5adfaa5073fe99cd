"""Corruptions: each changes exactly the fraction of valid steps it says, in the way it says,
and leaves padding, other channels and the input itself alone."""

import math

import pytest
import torch

from multimodal_har.extractors.audio import AudioConfig
from multimodal_har.corruptions import (SILENCE_LOGMEL, audio_silence, corrupt_batch, frozen_frames,
                                        pose_noise)

LENGTHS = torch.tensor([10, 6])


def masked(x):
    T = x.shape[1]
    return {"x": x, "mask": torch.arange(T)[None] < LENGTHS[:, None]}


def changed_steps(a, b):
    return (a != b).flatten(2).any(dim=2)  # (B, T)


def test_pose_noise():
    torch.manual_seed(0)
    x = torch.randn(2, 10, 2, 5, 3)
    x[:, :, 1] = 0  # second person slot empty
    inp = masked(x)
    before = x.clone()
    g = torch.Generator().manual_seed(0)
    assert torch.equal(pose_noise(inp, 0.0, generator=g)["x"], x)
    out = pose_noise(inp, 0.5, sigma=0.1, generator=torch.Generator().manual_seed(1))["x"]
    assert torch.equal(x, before)  # input untouched
    ch = changed_steps(out, x)
    assert ch.sum(dim=1).tolist() == [5, 3]  # round(0.5 * L)
    assert not ch[1, 6:].any()  # padding untouched
    assert torch.equal(out[:, :, 1], x[:, :, 1])  # empty person stays empty
    again = pose_noise(inp, 0.5, sigma=0.1, generator=torch.Generator().manual_seed(1))["x"]
    assert torch.equal(out, again)
    big = torch.ones(4, 50, 1, 25, 3)
    d = pose_noise({"x": big}, 1.0, sigma=0.05, coords=2, generator=g)["x"] - big
    assert (d[..., 2] == 0).all()  # only the first `coords` channels
    assert d[..., :2].std().item() == pytest.approx(0.05, rel=0.05)  # metres
    with pytest.raises(ValueError, match="strength must be in \\[0, 1\\]"):
        pose_noise(inp, 1.2)
    with pytest.raises(ValueError, match="mask must be bool \\(B, T\\) = \\(2, 10\\)"):
        pose_noise({"x": x, "mask": torch.ones(2, 9, dtype=torch.bool)}, 0.5)


def test_audio_silence():
    x = torch.randn(2, 10, 8)
    inp = masked(x)
    out = audio_silence(inp, 0.3, generator=torch.Generator().manual_seed(0))["x"]
    ch = changed_steps(out, x)
    assert ch.sum(dim=1).tolist() == [3, 2]  # round(0.3 * 10), round(0.3 * 6) = round(1.8)
    for b in range(2):
        idx = ch[b].nonzero().flatten()
        assert (idx.diff() == 1).all()  # one contiguous gap
        assert (out[b, idx] == SILENCE_LOGMEL).all()
    assert not ch[1, 6:].any()
    assert SILENCE_LOGMEL == pytest.approx(math.log(AudioConfig().log_eps))
    full = audio_silence(inp, 1.0, floor="min")["x"]
    for b, L in enumerate(LENGTHS.tolist()):
        assert (full[b, :L] == x[b, :L].min()).all() and torch.equal(full[b, L:], x[b, L:])
    assert (audio_silence(inp, 1.0, floor=-5.0)["x"][0] == -5.0).all()
    with pytest.raises(ValueError, match="floor must be"):
        audio_silence(inp, 0.5, floor="max")


def test_frozen_frames():
    x = torch.randn(2, 10, 3, 4, 4)  # (B, T, C, H, W)
    inp = masked(x)
    out = frozen_frames(inp, 1.0)["x"]
    assert (out[0] == x[0, 0]).all() and (out[1, :6] == x[1, 0]).all()
    assert torch.equal(out[1, 6:], x[1, 6:])
    half = frozen_frames(inp, 0.5)["x"]  # round(0.5 * 9) = 5 and round(0.5 * 5) = 3 frames after the first
    assert (half[0, :6] == x[0, 0]).all() and torch.equal(half[0, 6:], x[0, 6:])
    assert (half[1, :4] == x[1, 0]).all() and torch.equal(half[1, 4:], x[1, 4:])
    assert torch.equal(frozen_frames(inp, 0.0)["x"], x)
    # the first VALID frame, wherever the valid run starts
    late = frozen_frames({"x": x[:1], "mask": torch.arange(10)[None] >= 3}, 1.0)["x"]
    assert (late[0, 3:] == x[0, 3]).all() and torch.equal(late[0, :3], x[0, :3])


def test_corrupt_batch_touches_one_input():
    batch = {"ids": ["a", "b"], "inputs": {"audio": masked(torch.randn(2, 10, 8)),
                                           "rgb": masked(torch.randn(2, 10, 3, 4, 4))}}
    out = corrupt_batch(batch, "rgb", "frozen_frames", 1.0)
    assert out["inputs"]["audio"] is batch["inputs"]["audio"]
    assert (out["inputs"]["rgb"]["x"][0] == batch["inputs"]["rgb"]["x"][0, 0]).all()
    assert out["inputs"]["rgb"]["mask"] is batch["inputs"]["rgb"]["mask"]
    with pytest.raises(ValueError, match="unknown corruption 'blur'"):
        corrupt_batch(batch, "rgb", "blur", 0.5)
    with pytest.raises(ValueError, match="no input 'pose'"):
        corrupt_batch(batch, "pose", "pose_noise", 0.5)
