"""Two-stream / TSN video encoders: shapes, gradients, masks, cross-modality init, weights."""

import pytest
import torch
import torchvision.models as tvm

from multimodal_har.encoders import build_encoder
from multimodal_har.encoders.two_stream import TwoStream, VideoCNN, cross_modality_init
from multimodal_har.weights import WeightsUnavailable, resolve_weights
from tests.multimodal_har.gradients import assert_every_parameter_has_a_finite_gradient


def test_2d_shapes_out_dim_gradients():
    torch.manual_seed(0)
    enc = build_encoder("video_cnn", modality="rgb", backbone="resnet18", dropout=0.5)
    out = enc(torch.randn(2, 3, 3, 64, 64))  # (B, K, C, H, W)
    assert enc.out_dim == enc.feature_dim == 512
    assert out.pooled.shape == (2, 512) and out.tokens.shape == (2, 3, 512) and out.mask.shape == (2, 3)
    assert out.mask.all() and torch.isfinite(out.tokens).all()
    out.pooled.sum().backward()
    assert_every_parameter_has_a_finite_gradient(enc)


def test_3d_shapes_out_dim_gradients():
    torch.manual_seed(0)
    enc = VideoCNN(modality="flow", backbone="r3d_18")
    x = torch.randn(2, 2, 2, 4, 32, 32)  # (B, K, C, T, H, W)
    fmap = enc.feature_map(x[:, 0])
    B, D, t, h, w = fmap.shape
    assert (B, D) == (2, enc.feature_dim) and t >= 1 and h == w == 2
    out = enc(x)
    assert out.tokens.shape == (2, 2 * t, 512) and out.mask.shape == (2, 2 * t) and out.pooled.shape == (2, 512)
    assert torch.isfinite(out.pooled).all()
    out.pooled.sum().backward()
    assert_every_parameter_has_a_finite_gradient(enc)


@pytest.mark.parametrize("backbone,dim", [("resnet18", 128), ("resnet50", 512), ("r3d_18", 128)])
def test_fewer_stages_make_a_small_network(tmp_path, backbone, dim):
    torch.manual_seed(0)
    enc = VideoCNN(modality="flow", backbone=backbone, flow_length=2, stages=2)
    assert enc.out_dim == dim and sum(p.numel() for p in enc.parameters()) < 2.1e6
    x = torch.randn(2, 2, 2, 4, 32, 32) if backbone == "r3d_18" else torch.randn(2, 2, 4, 32, 32)
    out = enc(x)
    assert out.pooled.shape == (2, dim) and torch.isfinite(out.pooled).all()
    out.pooled.sum().backward()
    assert_every_parameter_has_a_finite_gradient(enc)
    # a whole network's weights file loads into the first stages
    full = VideoCNN(modality="flow", backbone=backbone, flow_length=2)
    torch.save(full.backbone.state_dict(), tmp_path / "full.pt")
    part = VideoCNN(modality="flow", backbone=backbone, flow_length=2, stages=2, weights=str(tmp_path / "full.pt"))
    for k, v in part.backbone.state_dict().items():
        assert torch.equal(v, full.backbone.state_dict()[k]), k
    with pytest.raises(ValueError, match="stages must be 1, 2, 3 or 4"):
        VideoCNN(stages=5)


@pytest.mark.parametrize("backbone", ["r2plus1d_18", "mc3_18"])
def test_other_3d_backbones_keep_a_time_axis(backbone):
    enc = VideoCNN(backbone=backbone).eval()
    with torch.no_grad():
        fmap = enc.feature_map(torch.randn(1, 3, 8, 32, 32))
        out = enc(torch.randn(1, 2, 3, 8, 32, 32))
    assert fmap.shape[:2] == (1, 512) and fmap.ndim == 5
    assert out.tokens.shape == (1, 2 * fmap.shape[2], 512)


def test_2d_feature_map_runs_per_frame_and_pools_to_the_tokens():
    torch.manual_seed(0)
    enc = VideoCNN(backbone="resnet18").eval()
    clip = torch.randn(2, 3, 4, 64, 64)  # (B, C, T, H, W)
    with torch.no_grad():
        fmap = enc.feature_map(clip)
        out = enc(clip.transpose(1, 2))  # the T frames as K segments
    assert fmap.shape == (2, 512, 4, 2, 2)
    torch.testing.assert_close(fmap.mean(dim=(3, 4)).transpose(1, 2), out.tokens, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backbone,shape", [("resnet18", (3, 64, 64)), ("r3d_18", (3, 4, 32, 32))])
@pytest.mark.parametrize("consensus", ["avg", "max"])
def test_padded_segments_do_not_change_the_output(backbone, shape, consensus):
    torch.manual_seed(0)
    enc = VideoCNN(backbone=backbone, consensus=consensus).eval()
    x = torch.randn(1, 2, *shape)
    padded = torch.cat([x, 100 * torch.randn(1, 3, *shape)], dim=1)  # junk beyond the 2 valid segments
    mask = torch.tensor([[True, True, False, False, False]])
    with torch.no_grad():
        ref, got = enc(x), enc(padded, mask)
    n = ref.tokens.shape[1]
    torch.testing.assert_close(got.pooled, ref.pooled, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got.tokens[:, :n], ref.tokens, rtol=1e-4, atol=1e-5)
    assert got.mask[0, :n].all() and not got.mask[0, n:].any() and (got.tokens[:, n:] == 0).all()
    if consensus == "avg":
        torch.testing.assert_close(ref.pooled, ref.tokens.mean(dim=1))
    else:
        torch.testing.assert_close(ref.pooled, ref.tokens.amax(dim=1))
    stats = {k: v.clone() for k, v in enc.state_dict().items()}
    enc.train()  # a batch with no valid segment: zeros, the same shapes, batch norm untouched
    empty = enc(padded, torch.zeros(1, 5, dtype=torch.bool))
    assert empty.tokens.shape == got.tokens.shape and (empty.pooled == 0).all() and not empty.mask.any()
    assert all(torch.equal(v, stats[k]) for k, v in enc.state_dict().items())


def test_cross_modality_init_is_the_rgb_mean_replicated():
    w = torch.randn(64, 3, 7, 7)
    new = cross_modality_init(w, 10)
    assert new.shape == (64, 10, 7, 7)
    for c in range(10):
        torch.testing.assert_close(new[:, c], (w[:, 0] + w[:, 1] + w[:, 2]) / 3)
    assert cross_modality_init(torch.randn(8, 3, 3, 7, 7), 2).shape == (8, 2, 3, 7, 7)  # 3D filters
    with pytest.raises(ValueError, match=r"expected RGB conv filters \(out, 3, \*kernel\), got \(64, 2, 7, 7\)"):
        cross_modality_init(torch.randn(64, 2, 7, 7), 10)


@pytest.mark.parametrize("backbone,first,channels", [("resnet18", "conv1.weight", 6), ("r3d_18", "stem.0.weight", 2)])
def test_flow_stream_from_rgb_weights_copies_what_it_should(tmp_path, backbone, first, channels):
    torch.manual_seed(0)
    rgb = tvm.get_model(backbone, weights=None).state_dict()
    path = tmp_path / f"{backbone}_rgb.pth"
    torch.save(rgb, path)
    enc = VideoCNN(modality="flow", backbone=backbone, flow_length=3, weights=str(path))
    got = enc.backbone.state_dict()
    assert got[first].shape[1] == channels == enc.in_channels
    for c in range(channels):
        torch.testing.assert_close(got[first][:, c], rgb[first].mean(dim=1), rtol=0, atol=0)
    rest = {k for k in rgb if k != first and not k.startswith("fc.")}
    assert rest == set(got) - {first}
    for k in rest:
        assert torch.equal(got[k], rgb[k]), k
    out = enc.eval()(torch.randn(1, 2, channels, *((64, 64) if channels == 6 else (4, 32, 32))))
    assert torch.isfinite(out.pooled).all()


def test_weights_from_a_local_file(tmp_path):
    torch.manual_seed(0)
    ref = tvm.resnet18(weights=None)
    path = tmp_path / "mine.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}, path)
    enc = VideoCNN(backbone="resnet18", weights=str(path))
    got = enc.backbone.state_dict()
    want = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    assert set(got) == set(want)
    for k, v in want.items():
        assert torch.equal(got[k], v), k
    # a flow stream's own checkpoint (2L-channel first conv, "backbone." keys) loads as it is
    flow = VideoCNN(modality="flow", backbone="resnet18", flow_length=2)
    torch.save(flow.state_dict(), tmp_path / "flow.pt")
    again = VideoCNN(modality="flow", backbone="resnet18", flow_length=2, weights=str(tmp_path / "flow.pt"))
    for (k, v), w in zip(flow.state_dict().items(), again.state_dict().values()):
        assert torch.equal(v, w), k
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        VideoCNN(backbone="resnet18", weights=str(tmp_path / "missing.pth"))


def test_weights_names_resolve_and_unknown_ones_list_the_choices():
    r18, r3d = tvm.ResNet18_Weights, tvm.video.R3D_18_Weights
    assert resolve_weights(r18, "DEFAULT", what="resnet18") is r18.DEFAULT
    assert resolve_weights(r18, "IMAGENET1K_V1", what="resnet18") is r18.IMAGENET1K_V1
    assert resolve_weights(r18, "ResNet18_Weights.DEFAULT", what="resnet18") is r18.DEFAULT
    assert resolve_weights(r3d, "KINETICS400_V1", what="r3d_18") is r3d.KINETICS400_V1
    with pytest.raises(ValueError, match="unknown resnet18 weights 'KINETICS400_V1'; choices: DEFAULT, IMAGENET1K_V1"):
        VideoCNN(backbone="resnet18", weights="KINETICS400_V1")
    with pytest.raises(ValueError, match="resnet18 takes ResNet18_Weights, got 'ResNet50_Weights.DEFAULT'"):
        VideoCNN(backbone="resnet18", weights="ResNet50_Weights.DEFAULT")
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'; valid choices: .*resnet18.*r3d_18"):
        VideoCNN(backbone="vgg16")


def test_offline_download_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # nothing cached
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # a closed port: offline, at once
    with pytest.raises(WeightsUnavailable) as e:
        VideoCNN(backbone="resnet18", weights="DEFAULT")
    msg = str(e.value)
    url = tvm.ResNet18_Weights.DEFAULT.url
    assert url in msg and str(tmp_path / "hub" / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in msg
    assert "weights=/path/to/resnet18-f37072fd.pth" in msg


def test_normalisation_the_weights_expect():
    assert VideoCNN(backbone="resnet18").mean == (0.485, 0.456, 0.406)
    r3d = VideoCNN(backbone="r3d_18")
    assert r3d.mean == (0.43216, 0.394666, 0.37645) and r3d.std == (0.22803, 0.22145, 0.216989)
    flow = VideoCNN(modality="flow", backbone="resnet18", flow_length=5)
    assert flow.mean == (0.0,) * 10 and flow.std == (20.0,) * 10


def test_wrong_inputs_raise_clear_errors():
    enc = VideoCNN(modality="flow", backbone="resnet18", flow_length=5)
    with pytest.raises(ValueError, match=r"expects x of shape \(B, K, C, H, W\) with C = 10, got \(2, 3, 3, 64, 64\)"):
        enc(torch.randn(2, 3, 3, 64, 64))
    with pytest.raises(ValueError, match=r"expects x of shape \(B, K, C, H, W\)"):
        enc(torch.randn(2, 10, 64, 64))
    with pytest.raises(ValueError, match=r"mask must be \(B, T\) = \(2, 3\), got \(2, 4\)"):
        enc(torch.randn(2, 3, 10, 64, 64), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"feature_map expects one clip per sample \(B, 10, T, H, W\)"):
        enc.feature_map(torch.randn(2, 10, 64, 64))
    with pytest.raises(ValueError, match=r"expects x of shape \(B, K, C, T, H, W\) with C = 3"):
        VideoCNN(backbone="r3d_18")(torch.randn(1, 2, 3, 32, 32))
    with pytest.raises(ValueError, match="unknown modality 'depth'; valid choices: rgb, flow"):
        VideoCNN(modality="depth")
    with pytest.raises(ValueError, match="unknown consensus 'median'; valid choices: avg, max"):
        VideoCNN(consensus="median")


def test_partial_bn_freezes_every_batch_norm_but_the_first():
    enc = VideoCNN(backbone="resnet18", partial_bn=True)
    bns = [m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns[0].training and bns[0].weight.requires_grad
    assert not any(m.training or m.weight.requires_grad for m in bns[1:])


def test_resnet50_flow_construction():
    enc = VideoCNN(modality="flow", backbone="resnet50", flow_length=10)
    assert enc.out_dim == 2048 and enc.backbone.conv1.in_channels == 20


def test_two_stream_shapes_gradients_and_late_fusion_extras():
    torch.manual_seed(0)
    enc = build_encoder("two_stream", rgb={"backbone": "resnet18"},
                        flow=VideoCNN(modality="flow", backbone="resnet18", flow_length=2))
    rgb, flow = torch.randn(2, 3, 3, 64, 64), torch.randn(2, 3, 4, 64, 64)
    out = enc(rgb, flow)
    assert enc.out_dim == 1024
    assert out.pooled.shape == (2, 1024) and out.tokens.shape == (2, 3, 1024) and out.mask.all()
    torch.testing.assert_close(out.pooled, torch.cat([out.extras["rgb"].pooled, out.extras["flow"].pooled], 1))
    torch.testing.assert_close(out.tokens[..., 512:], out.extras["flow"].tokens)
    out.pooled.sum().backward()
    assert_every_parameter_has_a_finite_gradient(enc)


def test_two_stream_with_a_missing_stream_and_3d_tokens_per_segment():
    torch.manual_seed(0)
    enc = TwoStream(rgb={"backbone": "r3d_18"}, flow={"backbone": "resnet18", "flow_length": 2}).eval()
    rgb, flow = torch.randn(1, 2, 3, 4, 32, 32), torch.randn(1, 2, 4, 64, 64)
    with torch.no_grad():
        both = enc(rgb, flow, rgb_mask=torch.tensor([[True, False]]))
        no_rgb = enc(None, flow)
    r = both.extras["rgb"]
    assert both.tokens.shape == (1, 2, 1024) and both.mask.all()  # segment 1 is valid in the flow stream
    t = r.tokens.shape[1] // 2
    torch.testing.assert_close(both.tokens[0, 0, :512], r.tokens[0, :t].mean(0))
    assert (both.tokens[0, 1, :512] == 0).all()
    assert no_rgb.extras["rgb"] is None
    assert (no_rgb.pooled[:, :512] == 0).all() and (no_rgb.tokens[..., :512] == 0).all()
    torch.testing.assert_close(no_rgb.pooled[:, 512:], both.pooled[:, 512:])
    with pytest.raises(ValueError, match="at least one of rgb and flow"):
        enc(None, None)
    with pytest.raises(ValueError, match=r"same batch and segments \(B, K\); got rgb \(1, 2\), flow \(1, 3\)"):
        enc(rgb, torch.randn(1, 3, 4, 64, 64))
    with pytest.raises(ValueError, match="the flow stream must be a VideoCNN with modality='flow'"):
        TwoStream(rgb={}, flow=enc.rgb)
