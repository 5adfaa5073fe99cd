"""Pose-driven separable attention: shapes, attention maths by hand, masks, frozen pose LSTM, flow driver."""

import importlib.util
import math

import pytest
import torch
from torch import nn

from multimodal_har.encoders import build_encoder
from multimodal_har.encoders.pose_attention import PoseDrivenAttention
from multimodal_har.encoders.pose_lstm import PoseLSTM
from tests.multimodal_har.gradients import assert_every_parameter_has_a_finite_gradient


class TinyVideo(nn.Module):
    """The backbone protocol at its smallest: ``(B, C, T, H, W) -> (B, D, T/2, H/2, W/2)``,
    one frame per feature step (temporal kernel 1), so padded frames cannot leak."""

    def __init__(self, in_channels: int = 3, feature_dim: int = 8) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.conv = nn.Conv3d(in_channels, feature_dim, (1, 3, 3), stride=2, padding=(0, 1, 1))

    def feature_map(self, x):
        return torch.relu(self.conv(x))


class Identity(nn.Module):
    """``feature_map(x) = x``: a feature map chosen by hand."""

    feature_dim = 2

    def feature_map(self, x):
        return x


def pose_lstm(**kw):
    return PoseLSTM(layout="kinect_v1_20", hidden=12, layers=2, **kw)


def model(**kw):
    kw.setdefault("video", TinyVideo())
    kw.setdefault("pose", pose_lstm())
    kw.setdefault("feature_size", (4, 4, 4))
    return PoseDrivenAttention(attention_hidden=16, **kw)


def inputs(B=2, T=8, T_p=10):
    return torch.randn(B, 3, T, 8, 8), torch.randn(B, T_p, 1, 20, 3)


def test_shapes_extras_and_gradients():
    torch.manual_seed(0)
    m = model(freeze_pose=False, lambda1=0.1, lambda2=0.1)
    video, pose = inputs()
    vmask = torch.tensor([[True] * 8, [True] * 6 + [False] * 2])
    out = m(video, pose, vmask)
    assert m.out_dim == 16
    assert out.pooled.shape == (2, 16) and out.tokens.shape == (2, 4, 16)
    assert out.mask.tolist() == [[True] * 4, [True] * 3 + [False]]
    ex = out.extras
    assert ex["spatial_attention"].shape == (2, 4, 4) and ex["temporal_attention"].shape == (2, 4)
    assert ex["attention_loss"].ndim == 0
    assert torch.isfinite(out.tokens).all() and torch.isfinite(out.pooled).all()
    torch.testing.assert_close(out.pooled, out.tokens.sum(1) / out.mask.sum(1, keepdim=True))  # tokens average to pooled
    (out.pooled.sum() + ex["attention_loss"]).backward()
    assert_every_parameter_has_a_finite_gradient(m)


def test_attention_ranges_and_masked_steps():
    torch.manual_seed(0)
    m = model()
    video, pose = inputs(B=3)
    vmask = torch.ones(3, 8, dtype=torch.bool)
    vmask[1, 4:] = False
    vmask[2] = False  # a sample with no valid frame
    ex = m(video, pose, vmask).extras
    a, b = ex["spatial_attention"], ex["temporal_attention"]
    assert ((a > 0) & (a < 1)).all()
    torch.testing.assert_close(b[:2].sum(1), torch.ones(2))
    assert (b[1, 2:] == 0).all() and (b[1, :2] > 0).all() and (b[2] == 0).all()


def test_attention_maths_and_regularisers_by_hand():
    """Heads set to constants: alpha = sigmoid(bias), beta = softmax(bias), on a known map."""
    m = PoseDrivenAttention(video=Identity(), pose=pose_lstm(), feature_size=(2, 2, 2), lambda1=0.5, lambda2=2.0)
    with torch.no_grad():
        for head in (m.spatial, m.temporal):
            head[2].weight.zero_()
        m.spatial[2].bias.copy_(torch.tensor([0.0, math.log(3), -math.log(3), 0.0]))
        m.temporal[2].bias.copy_(torch.tensor([0.0, math.log(3)]))
    f = torch.arange(16, dtype=torch.float32).view(1, 2, 2, 2, 2)  # (B, D, t, h, w)
    out = m(f, torch.randn(1, 5, 1, 20, 3))
    alpha = torch.tensor([[0.5, 0.75], [0.25, 0.5]])
    beta = torch.tensor([0.25, 0.75])
    torch.testing.assert_close(out.extras["spatial_attention"][0], alpha)
    torch.testing.assert_close(out.extras["temporal_attention"][0], beta)
    spatial = (f[0] * alpha).mean(dim=(1, 2, 3))  # GAP over (t, h, w), per channel
    temporal = (f[0].mean(dim=(2, 3)) * beta).sum(dim=1)  # sum_i beta_i mean_hw(f_i)
    torch.testing.assert_close(out.pooled[0], torch.cat([spatial, temporal]))
    torch.testing.assert_close(out.extras["spatial_loss"], torch.tensor(math.sqrt(0.25 + 0.5625 + 0.0625 + 0.25)))
    torch.testing.assert_close(out.extras["temporal_loss"], torch.tensor(0.75 ** 2 + 0.25 ** 2))
    torch.testing.assert_close(out.extras["attention_loss"], torch.tensor(0.5 * math.sqrt(1.125) + 2.0 * 0.625))
    # the second time step masked out: beta = [1, 0], (1 - beta)^2 summed over the valid step only
    out = m(f, torch.randn(1, 5, 1, 20, 3), torch.tensor([[True, False]]))
    torch.testing.assert_close(out.extras["temporal_attention"][0], torch.tensor([1.0, 0.0]))
    assert out.extras["temporal_loss"].item() == 0.0
    torch.testing.assert_close(out.pooled[0, 2:], f[0, :, 0].mean(dim=(1, 2)))


def test_padding_with_junk_changes_nothing():
    torch.manual_seed(0)
    m = model().eval()
    video, pose = inputs(B=1)
    vmask, pmask = torch.arange(8)[None] < 6, torch.arange(10)[None] < 7
    ref = m(video, pose, vmask, pmask)
    video2, pose2 = video.clone(), pose.clone()
    video2[:, :, 6:] = 100 * torch.randn(1, 3, 2, 8, 8)
    pose2[:, 7:] = 100 * torch.randn(1, 3, 1, 20, 3)
    got = m(video2, pose2, vmask, pmask)
    torch.testing.assert_close(got.pooled, ref.pooled)
    torch.testing.assert_close(got.tokens, ref.tokens)
    # the pose sequence alone, unpadded, drives the same attention
    torch.testing.assert_close(m(video, pose[:, :7], vmask).pooled, ref.pooled)


def test_frozen_pose_lstm_gets_no_gradient_and_does_not_change():
    torch.manual_seed(0)
    m = model()  # freeze_pose=True, the paper's setting
    before = {k: v.clone() for k, v in m.pose.state_dict().items()}
    m.train()
    assert not m.pose.training and m.video.training
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.5)
    out = m(*inputs())
    (out.pooled.sum() + out.extras["attention_loss"]).backward()
    opt.step()
    assert all(p.grad is None for p in m.pose.parameters())
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    assert trainable and not any(n.startswith("pose.") for n in trainable)
    assert m.video.conv.weight.grad is not None and m.temporal[0].weight.grad is not None
    for k, v in m.pose.state_dict().items():
        assert torch.equal(v, before[k]), k
    m.pose.unfreeze()  # fine-tuning it later: gradients flow again
    m.train()
    assert m.pose.training
    m(*inputs()).pooled.sum().backward()
    assert all(p.grad is not None for p in m.pose.parameters())


def test_pose_weights_and_dict_specs(tmp_path):
    torch.manual_seed(0)
    pre = pose_lstm()
    torch.save(pre.state_dict(), tmp_path / "pose.pt")
    m = PoseDrivenAttention(video=TinyVideo(), pose={"layout": "kinect_v1_20", "hidden": 12, "layers": 2},
                            feature_size=(4, 4, 4), pose_weights=tmp_path / "pose.pt")
    assert isinstance(m.pose, PoseLSTM) and m.pose.frozen
    for k, v in pre.state_dict().items():
        assert torch.equal(m.pose.state_dict()[k], v)
    via_registry = build_encoder("pose_attention", video=TinyVideo(), pose=pose_lstm(), feature_size=(4, 4, 4))
    assert via_registry.out_dim == 16


def test_flow_driver():
    torch.manual_seed(0)
    m = PoseDrivenAttention(video=TinyVideo(), flow=TinyVideo(in_channels=2, feature_dim=6), driver="flow",
                            attention_hidden=16).eval()
    video, flow = torch.randn(2, 3, 8, 8, 8), torch.randn(2, 2, 8, 8, 8)
    vmask = torch.tensor([[True] * 8, [True] * 6 + [False] * 2])
    out = m(video, video_mask=vmask, flow=flow)
    assert m.pose is None and out.pooled.shape == (2, 16) and out.tokens.shape == (2, 4, 16)
    b = out.extras["temporal_attention"]
    torch.testing.assert_close(b.sum(1), torch.ones(2))
    assert b[1, 3] == 0
    assert ((out.extras["spatial_attention"] > 0) & (out.extras["spatial_attention"] < 1)).all()
    # the flow driver takes any clip length: the padded sample equals the unpadded one
    alone = m(video[1:, :, :6], flow=flow[1:, :, :6])
    torch.testing.assert_close(out.pooled[1:], alone.pooled)
    torch.testing.assert_close(out.tokens[1:, :3], alone.tokens)
    # the attention really comes from the flow: other flow, other attention
    other = m(video, video_mask=vmask, flow=torch.randn(2, 2, 8, 8, 8))
    assert not torch.allclose(other.extras["spatial_attention"], out.extras["spatial_attention"])
    m.train()
    m(video, video_mask=vmask, flow=flow).pooled.sum().backward()
    assert_every_parameter_has_a_finite_gradient(m)


@pytest.mark.skipif(importlib.util.find_spec("multimodal_har.encoders.two_stream") is None,
                    reason="multimodal_har/encoders/two_stream.py (VideoCNN) is not written yet")
def test_with_the_real_video_cnn_r3d_18():
    torch.manual_seed(0)
    video = build_encoder("video_cnn", modality="rgb", backbone="r3d_18")
    clip = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        t, h, w = video.feature_map(clip).shape[2:]
    m = PoseDrivenAttention(video={"name": "video_cnn", "modality": "rgb", "backbone": "r3d_18"},
                            pose=pose_lstm(), feature_size=(t, h, w))
    out = m(clip, torch.randn(1, 6, 1, 20, 3))
    assert out.pooled.shape == (1, 2 * m.video.feature_dim) == (1, m.out_dim)
    assert torch.isfinite(out.pooled).all() and out.extras["spatial_attention"].shape == (1, h, w)


def test_wrong_inputs_are_named():
    with pytest.raises(ValueError, match=r"video must expose feature_map\(x\) .* Conv3d lacks feature_map, feature_dim"):
        PoseDrivenAttention(video=nn.Conv3d(3, 4, 1), pose=pose_lstm(), feature_size=(4, 4, 4))
    with pytest.raises(ValueError, match="unknown driver 'depth'; valid choices: pose, flow"):
        model(driver="depth")
    with pytest.raises(ValueError, match=r"needs feature_size=\(t, h, w\)"):
        PoseDrivenAttention(video=TinyVideo(), pose=pose_lstm())
    with pytest.raises(ValueError, match="driver='pose' needs a pose encoder"):
        model(pose=None)
    with pytest.raises(ValueError, match="driver='flow' needs a flow backbone"):
        PoseDrivenAttention(video=TinyVideo(), driver="flow")
    with pytest.raises(ValueError, match="pose is used only with driver='pose'"):
        PoseDrivenAttention(video=TinyVideo(), flow=TinyVideo(2), pose=pose_lstm(), driver="flow")
    with pytest.raises(ValueError, match="flow must expose .* Linear lacks feature_map, feature_dim"):
        PoseDrivenAttention(video=TinyVideo(), flow=nn.Linear(2, 2), driver="flow")
    with pytest.raises(ValueError, match="video: a dict spec needs a 'name'"):
        model(video={"backbone": "r3d_18"})
    m = model()
    video, pose = inputs()
    with pytest.raises(ValueError, match=r"expected video of shape \(B, C, T, H, W\), got \(2, 8, 8, 8\)"):
        m(video[:, 0], pose)
    with pytest.raises(ValueError, match=r"gave \(t, h, w\) = \(4, 8, 8\), the heads were built for feature_size=\(4, 4, 4\)"):
        m(torch.randn(2, 3, 8, 16, 16), pose)
    with pytest.raises(ValueError, match="forward needs pose"):
        m(video)
    with pytest.raises(ValueError, match=r"mask must be \(B, T\)"):
        m(video, pose, torch.ones(2, 7, dtype=torch.bool))
    f = PoseDrivenAttention(video=TinyVideo(), flow=TinyVideo(2), driver="flow")
    with pytest.raises(ValueError, match="forward needs flow"):
        f(video)
    with pytest.raises(ValueError, match=r"flow feature map's \(t, h, w\) = \(4, 2, 2\) must match the video's \(4, 4, 4\)"):
        f(video, flow=torch.randn(2, 2, 8, 4, 4))


def test_one_segment_clips_from_the_store_dataset():
    """The dataset gives 3D clips as (B, K, C, T, H, W) with a (B, K) mask: K = 1 is read as the
    clip, and a masked-out segment gives the same zeros as an all-masked clip."""
    torch.manual_seed(0)
    enc = model().eval()
    video, pose = inputs()
    with torch.no_grad():
        ref = enc(video, pose)
        got = enc(video[:, None], pose, torch.tensor([[True], [False]]))
    torch.testing.assert_close(got.pooled[0], ref.pooled[0])
    assert (got.pooled[1] == 0).all() and not got.mask[1].any()
    with pytest.raises(ValueError, match="one clip per sample; got 2 segments"):
        enc(torch.randn(2, 2, 3, 8, 8, 8), pose)
