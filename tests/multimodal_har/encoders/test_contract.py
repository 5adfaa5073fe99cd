"""Registry-driven contract of every encoder (timm's test_models style): output shapes and
``out_dim``, every parameter gets a gradient, no NaN, and padding beyond a sample's length
does not change its pooled output. A newly registered encoder fails here until it has a case."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from multimodal_har.encoders import ENCODERS, EncoderOutput, build_encoder
from tests.multimodal_har.gradients import assert_every_parameter_has_a_finite_gradient

TINY_GCN = ((8, 1), (16, 2))
TINY_CTR = ((8, 1), (16, 2), (16, 1))


class TinyVideo(nn.Module):
    """The smallest module with the ``feature_map`` / ``feature_dim`` protocol."""

    feature_dim = 8

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, 8, (1, 4, 4), stride=(1, 4, 4))

    def feature_map(self, x):  # (B, C, T, H, W) -> (B, 8, T, H/4, W/4)
        return self.conv(x)


# name -> (constructor kwargs, inputs maker (B, T) -> (args, kwargs), index of the padded arg or None)
CASES = {
    "skeleton_gcn": (dict(layout="kinect_v1_20", channels=TINY_GCN, streams=("joint", "motion")),
                     lambda B, T: ((torch.randn(B, T, 2, 20, 3),), {}), 0),
    "ctr_gcn": (dict(layout="kinect_v1_20", channels=TINY_CTR, streams=("bone", "bone_motion")),
                lambda B, T: ((torch.randn(B, T, 2, 20, 3),), {}), 0),
    "pose_lstm": (dict(layout="kinect_v1_20", hidden=16, layers=2, max_people=2, streams=("joint", "bone")),
                  lambda B, T: ((torch.randn(B, T, 2, 20, 3),), {}), 0),
    "video_cnn": (dict(modality="flow", backbone="resnet18", flow_length=2),
                  lambda B, T: ((torch.randn(B, T, 4, 32, 32),), {}), 0),
    "two_stream": (dict(rgb=dict(backbone="resnet18"), flow=dict(backbone="resnet18", flow_length=2)),
                   lambda B, T: ((torch.randn(B, T, 3, 32, 32), torch.randn(B, T, 4, 32, 32)), {}), None),
    "pose_attention": (dict(video=TinyVideo(), pose=dict(layout="kinect_v1_20", hidden=16, layers=1),
                            feature_size=(6, 2, 2), freeze_pose=False),
                       lambda B, T: ((torch.randn(B, 3, 6, 8, 8), torch.randn(B, T, 1, 20, 3)), {}), None),
    "audio": (dict(n_mels=16, channels=(8, 16)), lambda B, T: ((torch.randn(B, T, 16),), {}), 0),
    "signal": (dict(in_channels=6, channels=(8, 8), token_stride=2), lambda B, T: ((torch.randn(B, T, 6),), {}), 0),
}


def test_every_registered_encoder_has_a_case():
    assert set(CASES) == set(ENCODERS.names())


@pytest.mark.parametrize("name", sorted(CASES))
def test_shapes_out_dim_gradients(name):
    torch.manual_seed(0)
    kwargs, make, _ = CASES[name]
    enc = build_encoder(name, **kwargs)
    assert isinstance(enc.out_dim, int) and enc.out_dim > 0
    args, kw = make(2, 8)
    out = enc(*args, **kw)
    assert isinstance(out, EncoderOutput)
    B, D = out.pooled.shape
    assert (B, D) == (2, enc.out_dim)
    assert out.tokens.ndim == 3 and out.tokens.shape[0] == 2 and out.tokens.shape[2] == enc.out_dim
    assert out.mask.shape == out.tokens.shape[:2] and out.mask.dtype == torch.bool and out.mask.any()
    assert torch.isfinite(out.pooled).all() and torch.isfinite(out.tokens).all()
    loss = out.pooled.square().mean() + out.tokens.square().mean()
    if out.extras and "attention_loss" in out.extras:
        loss = loss + out.extras["attention_loss"]
    loss.backward()
    assert_every_parameter_has_a_finite_gradient(enc, name)


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c[2] is not None))
def test_padding_beyond_the_mask_leaves_the_output_unchanged(name):
    torch.manual_seed(0)
    kwargs, make, i = CASES[name]
    enc = build_encoder(name, **kwargs).eval()
    args, kw = make(1, 6)
    with torch.no_grad():
        ref = enc(*args, **kw)
        x = args[i]
        junk = 5 * torch.randn(1, 4, *x.shape[2:])
        padded = list(args)
        padded[i] = torch.cat([x, junk], dim=1)  # (1, 10, ...): 4 frames of junk
        mask = torch.tensor([[True] * 6 + [False] * 4])
        got = enc(*padded, mask, **kw)
    torch.testing.assert_close(got.pooled, ref.pooled, rtol=1e-4, atol=1e-5)
