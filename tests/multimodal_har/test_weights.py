"""Pretrained torchvision weights from torch's cache are read with ``weights_only=True``: the same
models as torchvision's own builders give, and a planted file that would run code is refused."""

import os
import pickle

import pytest
import torch
import torchvision.models as tvm
from torchvision.models import optical_flow

from multimodal_har.weights import build_pretrained, cache_path


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # never download here
    return tmp_path


def _cache(weights, state):
    path = cache_path(weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


@pytest.mark.parametrize("builder, weights", [(tvm.resnet18, tvm.ResNet18_Weights.DEFAULT),
                                              (optical_flow.raft_small, optical_flow.Raft_Small_Weights.DEFAULT)])
def test_the_same_model_as_torchvision_builds(hub, builder, weights):
    torch.manual_seed(0)
    _cache(weights, builder(weights=None, **({"num_classes": len(weights.meta["categories"])}
                                              if "categories" in weights.meta else {})).state_dict())
    ours = build_pretrained(builder, weights, what=builder.__name__).state_dict()
    theirs = builder(weights=weights).state_dict()  # torchvision's path (weights_only=False)
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_planted_cache_file_is_refused_without_running(hub):
    weights = tvm.ResNet18_Weights.DEFAULT
    marker = hub / "ran"
    _cache(weights, {"conv1.weight": _RunsCode(marker)})
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        build_pretrained(tvm.resnet18, weights, what="resnet18")
    assert not marker.exists()
