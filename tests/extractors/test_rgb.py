"""RGB extraction on real videos: what is stored equals what was decoded."""

import numpy as np
import pytest

from extractors import build_extractor
from extractors.rgb import RGBConfig, read_rgb
from extractors.runner import process_video
from multimodal_har.data.store import FeatureStore
from multimodal_har.data.video import iter_frames
from tests.conftest import VIDEOS


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / mse)


@pytest.mark.parametrize("fmt", ["jpeg", "raw"])
def test_stored_frames_match_decoded_frames(tmp_path, fmt):
    store = FeatureStore(tmp_path, create=True)
    ex = build_extractor("rgb", short_side=128, stride=3, format=fmt)
    path = VIDEOS / "demo_skeleton.mp4"
    res = process_video(ex, store, "demo", path)
    assert res["status"] == "ok", res["error"]
    ref = list(iter_frames(path, short_side=128, stride=3))
    with store.open("demo", "rgb") as f:
        assert f.attrs["num_frames"] == len(ref) == 24
        assert (f.attrs["height"], f.attrs["width"]) == (128, 228)
        np.testing.assert_array_equal(f["frame_indices"][()], [r.index for r in ref])
        np.testing.assert_allclose(f["timestamps"][()], [r.time for r in ref])
        assert f.attrs["config_hash"] == ex.config_hash
        some = read_rgb(f, [0, 5, 23])  # random access to three frames only
    assert some.shape == (3, 128, 228, 3) and some.dtype == np.uint8
    for got, i in zip(some, [0, 5, 23]):
        if fmt == "raw":
            np.testing.assert_array_equal(got, ref[i].image)
        else:
            assert _psnr(got, ref[i].image) > 30


def test_truncated_video_is_detected(tmp_path):
    data = (VIDEOS / "cleaning_pool.mp4").read_bytes()
    bad = tmp_path / "half.mp4"
    bad.write_bytes(data[: len(data) // 2])
    store = FeatureStore(tmp_path / "s", create=True)
    res = process_video(build_extractor("rgb", short_side=64), store, "half", bad)
    assert res["status"] == "failed"
    assert "truncated" in res["error"] or "invalid data" in res["error"]
    assert not store.has("half", "rgb")


@pytest.mark.parametrize("kw,match", [
    (dict(stride=0), "stride"), (dict(fps=-1.0), "fps"), (dict(fps=5.0, stride=2), "either fps or stride"),
    (dict(format="png"), "format"), (dict(jpeg_quality=0), "jpeg_quality"), (dict(short_side=2), "short_side"),
])
def test_config_is_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        RGBConfig(**kw)


def test_unknown_config_key_lists_valid_keys():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['short_sid'\] in rgb for RGBConfig; valid keys: .*short_side"):
        build_extractor("rgb", short_sid=3)
