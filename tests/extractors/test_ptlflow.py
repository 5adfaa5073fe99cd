"""The ptlflow backend (skipped where ptlflow is not installed: it cannot share an environment
with the `opencv` extra; run in one made with `pip install -e ".[ptlflow,test]"`)."""

import numpy as np
import pytest
import torch

ptlflow = pytest.importorskip("ptlflow")

from multimodal_har.extractors import build_extractor  # noqa: E402
from multimodal_har.extractors.runner import run_extraction  # noqa: E402
from multimodal_har.data.store import FeatureStore  # noqa: E402
from multimodal_har.data.video import iter_frames  # noqa: E402
from multimodal_har.flow.codec import read_flow  # noqa: E402
from multimodal_har.flow.raft import WeightsUnavailable  # noqa: E402
from tests.conftest import VIDEOS  # noqa: E402


def test_pipeline_equals_ptlflows_own_io_adapter_per_pair(tmp_path):
    from ptlflow.utils.io_adapter import IOAdapter

    root = tmp_path / "v"
    root.mkdir()
    for n in ["tai_chi.mp4", "chaplin_with_audio.mp4"]:
        (root / n).symlink_to(VIDEOS / n)
    torch.manual_seed(0)
    ex = build_extractor("ptlflow", model="raft_small", weights="none", short_side=128, max_frames=5,
                         batch_frames=4, format="float16")
    s = run_extraction(ex, videos_root=root, store=tmp_path / "s", workers=2, progress=False)
    assert s.done == 2 and s.items == 8, s.format()
    model = ex._net
    for name in ["tai_chi", "chaplin_with_audio"]:
        with FeatureStore(tmp_path / "s").open(name, "flow") as f:
            got, pairs = read_flow(f), f["pairs"][:].tolist()
        frames = [fr.image for fr in iter_frames(next(root.glob(name + ".*")), short_side=128, max_frames=5)]
        assert pairs == [[k, k + 1] for k in range(4)]
        for k in range(4):  # ptlflow's documented path: BGR uint8 images through IOAdapter
            io = IOAdapter(model.output_stride, frames[k].shape[:2])
            inputs = io.prepare_inputs([frames[k][..., ::-1].copy(), frames[k + 1][..., ::-1].copy()])
            with torch.inference_mode():
                ref = model(inputs)["flows"][0, 0].numpy()
            err = np.abs(got[k] - ref)
            assert err.max() < 0.01 + 2e-3 * np.abs(ref).max(), (name, k, err.max())
            assert np.abs(got[k] - ref[::-1]).mean() > 10 * err.mean()  # x / y not swapped


def test_names_and_offline_checkpoints(tmp_path, monkeypatch):
    from multimodal_har.extractors.ptlflow import load_ptlflow

    with pytest.raises(ValueError, match="raft_small"):
        load_ptlflow("raft_tiny_nope", None)
    with pytest.raises(ValueError, match="things"):
        load_ptlflow("raft", "nope")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    for var in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    with pytest.raises(WeightsUnavailable, match=r"raft-things-.*\.ckpt") as e:
        load_ptlflow("raft", "things")
    assert "--weights /path/to/" in str(e.value)
