"""RGB extraction on real videos: what is stored equals what was decoded."""

from pathlib import Path

import numpy as np
import pytest

from multimodal_har.extractors import build_extractor
from multimodal_har.extractors.rgb import RGBConfig, read_rgb
from multimodal_har.extractors.runner import process_video
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


def _write_long_video(path, n_frames, size=(480, 270)):
    """A real H.264 file: a gradient with a moving square (compresses well, encodes fast)."""
    import av

    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], -1).astype(np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt, s.options = w, h, "yuv420p", {"preset": "ultrafast"}
        for i in range(n_frames):
            img = base.copy()
            x = (i * 4) % (w - 40)
            img[100:140, x:x + 40] = 255
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from Linux's /proc")
def test_long_video_is_streamed_in_bounded_memory(tmp_path):
    import subprocess
    import sys

    root = tmp_path / "v"
    root.mkdir()
    n = 2400
    _write_long_video(root / "long.mp4", n)
    held = n * 256 * 455 * 3  # bytes if every resized frame were kept in memory
    # VmHWM: the peak RSS of this process's own address space. (ru_maxrss would not do: on
    # Linux it carries the forking parent's high-water mark across exec.)
    code = (
        "import re, sys; from multimodal_har.cli import main; "
        f"rc = main(['extract', 'rgb', '--videos', {str(root)!r}, '--store', {str(tmp_path / 's')!r}, "
        "'--workers', '1', '--no-progress']); "
        "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1); "
        "print(int(hwm) * 1024); sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    peak = int(out.stdout.strip().splitlines()[-1])
    with FeatureStore(tmp_path / "s").open("long", "rgb") as f:
        assert f.attrs["num_frames"] == n
    assert peak < 300 * 2**20 < held / 2, f"peak RSS {peak / 2**20:.0f} MiB (holding the frames: {held / 2**20:.0f} MiB)"
