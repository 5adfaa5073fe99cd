"""The video RAFT forward equals torchvision's, and weights load (or fail) as documented."""

import pytest
import torch

from multimodal_har.flow.raft import FastRAFT, WeightsUnavailable, crop_flow, load_raft, pad_to_raft, prepare_frames


def _frames(n, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    # smooth random images (a blurred noise field) so that flow is not pure noise
    x = torch.rand(n, 3, h // 8, w // 8, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return (x.permute(0, 2, 3, 1) * 255).to(torch.uint8)


@pytest.mark.parametrize("model", ["raft_small", "raft_large"])
@pytest.mark.parametrize("lookup", ["gather", "grid_sample"])
def test_fast_forward_equals_torchvision_last_prediction(model, lookup):
    torch.manual_seed(0)
    net = load_raft(model, None)
    frames = _frames(4, 120, 136)
    pad = pad_to_raft(120, 136)
    assert pad == (0, 0, 4, 4)  # 120 -> 128 (RAFT's minimum), 136 stays
    x = prepare_frames(frames, pad)
    with torch.inference_mode():
        # pairs out of order and sharing frames, as batches across videos have them
        first, second = torch.tensor([2, 0, 1]), torch.tensor([3, 1, 2])
        out = crop_flow(FastRAFT(net, lookup=lookup)(x, first, second, num_updates=4), pad)
        for b in range(3):
            i, j = int(first[b]), int(second[b])
            ref = crop_flow(net(x[i:i + 1], x[j:j + 1], num_flow_updates=4)[-1], pad)[0]
            assert out.shape[1:] == (2, 120, 136)
            assert (out[b] - ref).abs().max() < 1e-3 * max(1.0, ref.abs().max().item())
            # the check can see a swapped pair or swapped x / y
            swapped = crop_flow(net(x[j:j + 1], x[i:i + 1], num_flow_updates=4)[-1], pad)[0]
            assert (out[b] - swapped).abs().mean() > 10 * (out[b] - ref).abs().mean() + 1e-3
            assert (out[b] - ref.flip(0)).abs().mean() > 10 * (out[b] - ref).abs().mean() + 1e-3


def test_padding_rules():
    assert pad_to_raft(256, 344) == (0, 0, 0, 0)
    assert pad_to_raft(256, 455) == (0, 1, 0, 0)
    assert pad_to_raft(256, 451) == (2, 3, 0, 0)
    assert pad_to_raft(100, 128) == (0, 0, 14, 14)
    with pytest.raises(ValueError, match="multiples of 8"):
        FastRAFT(load_raft("raft_small", None))(torch.zeros(2, 3, 100, 128), torch.tensor([0]), torch.tensor([1]))


def test_weights_from_a_local_file(tmp_path):
    a = load_raft("raft_small", None)
    path = tmp_path / "raft_small_mine.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in a.state_dict().items()}}, path)
    b = load_raft("raft_small", str(path))
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k
    with pytest.raises(FileNotFoundError):
        load_raft("raft_small", str(tmp_path / "missing.pth"))


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match="raft_large, raft_small"):
        load_raft("raft_huge", None)
    with pytest.raises(ValueError, match="C_T_V2"):
        load_raft("raft_small", "C_T_NOPE")


def test_offline_download_says_how_to_pass_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # nothing cached
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # a closed port: offline, at once
    with pytest.raises(WeightsUnavailable) as e:
        load_raft("raft_small", "DEFAULT")
    msg = str(e.value)
    assert "raft_small_C_T_V2" in msg and "--weights /path/to/" in msg and str(tmp_path / "hub") in msg
