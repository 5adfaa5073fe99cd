"""GPU JPEG encoding of flow (nvImageCodec): the choice of encoder everywhere, parity with
libjpeg and the pipeline's stored entries on a CUDA machine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from extractors import build_extractor
from extractors.runner import run_extraction
from multimodal_har.data.store import FeatureStore
from multimodal_har.flow.codec import decode_gray_jpeg, encode_gray_jpeg, quantize, read_flow
from multimodal_har.flow.gpu_jpeg import ENCODERS, gpu_jpeg_status, resolve_encoder

VIDEOS = Path(__file__).resolve().parents[3] / "multimodal_har" / "sample_data" / "videos"


def test_cpu_choices_need_no_gpu():
    assert resolve_encoder("cpu", torch.device("cpu"), quality=95) is None


def test_gpu_on_a_cpu_device_and_unknown_names_say_why():
    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve_encoder("gpu", torch.device("cpu"), quality=95)
    with pytest.raises(ValueError, match="'cpu', 'gpu'"):
        resolve_encoder("nvjpeg", torch.device("cpu"), quality=95)
    with pytest.raises(ValueError, match=str(ENCODERS).replace("(", r"\(").replace(")", r"\)")):
        build_extractor("raft", jpeg_encoder="fast")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only report")
def test_status_without_cuda():
    assert gpu_jpeg_status() == "no CUDA device"


def _quantised_flow(n: int = 8, h: int = 120, w: int = 160) -> np.ndarray:
    """Smooth flow with texture, like a real field: (n, 2, h, w) uint8 TSN-quantised."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w] / 20.0
    f = np.stack([np.stack([np.sin(x + k) * 8 + rng.normal(0, 1, (h, w)), np.cos(y - k) * 6]) for k in range(n)])
    return quantize(f.astype(np.float32))


# ------------------------------------------------------------------------------------ GPU
gpu = pytest.mark.skipif(not torch.cuda.is_available() or gpu_jpeg_status() is not None,
                         reason="needs CUDA and nvImageCodec (extra gpu-jpeg-cu13)")


@pytest.mark.gpu
@gpu
def test_gpu_encoding_decodes_to_what_libjpeg_gives():
    q = _quantised_flow()
    enc = resolve_encoder("gpu", torch.device("cuda"), quality=95)
    imgs = q.reshape(-1, *q.shape[2:])
    blobs = enc.encode(torch.from_numpy(imgs).cuda())
    assert len(blobs) == len(imgs)
    for img, blob in zip(imgs, blobs):
        got = decode_gray_jpeg(blob)
        ref = decode_gray_jpeg(encode_gray_jpeg(img, 95))
        assert got.shape == img.shape and got.ndim == 2  # greyscale, the TSN layout
        # both lossy at quality 95 (this content is noisy): the GPU's error is libjpeg's, about
        err_gpu, err_cpu = np.abs(got.astype(int) - img).mean(), np.abs(ref.astype(int) - img).mean()
        assert err_gpu <= 1.25 * err_cpu + 0.1, (err_gpu, err_cpu)
        assert np.abs(got.astype(int) - ref).mean() <= 1.5


@pytest.mark.gpu
@gpu
def test_pipeline_with_gpu_jpeg_matches_cpu_jpeg(tmp_path):
    """The same RAFT (random weights, fp32, eager) stored through both encoders: the same pairs,
    and flow within the JPEG error."""
    torch.manual_seed(0)
    stores = {}
    for enc in ("cpu", "gpu"):
        ex = build_extractor("raft", model="raft_small", weights="none", short_side=128, max_frames=9,
                             batch_frames=8, precision="fp32", compile="none", jpeg_encoder=enc)
        torch.manual_seed(0)
        s = run_extraction(ex, videos_root=VIDEOS, store=tmp_path / enc, progress=False, workers=1)
        assert not s.failed, s.format()
        stores[enc] = FeatureStore(tmp_path / enc)
    ids = sorted(e["video_id"] for e in stores["cpu"].manifest.entries("flow"))
    assert ids and ids == sorted(e["video_id"] for e in stores["gpu"].manifest.entries("flow"))
    for vid in ids:
        with stores["cpu"].open(vid, "flow") as a, stores["gpu"].open(vid, "flow") as b:
            assert np.array_equal(a["pairs"][:], b["pairs"][:])
            fa, fb = read_flow(a), read_flow(b)
        assert np.abs(fa - fb).mean() < 0.2  # px; one quantisation level is 0.157 px
