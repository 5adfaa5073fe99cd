"""Flow storage: TSN quantisation, the three formats, TSN folder export, size on real flow."""

import io

import h5py
import numpy as np
import pytest

from multimodal_har.flow.codec import (FORMATS, FlowWriter, decode_gray_jpeg, dequantize, export_tsn, flo_bytes,
                                       quantize, read_flow)


def test_tsn_quantisation_endpoints_and_step():
    f = np.array([-100.0, -20.0, 0.0, 20.0, 100.0], np.float32)
    assert quantize(f).tolist() == [0, 0, 128, 255, 255]  # clip to +-20, linear to 0..255
    x = np.linspace(-20, 20, 1001).astype(np.float32)
    assert np.abs(dequantize(quantize(x)) - x).max() <= 20.0 / 255 + 1e-4  # half a step (float32)


def _smooth_flow(h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w] / 16.0
    return np.stack([3 * np.sin(xs + rng.random()) + 1, 2 * np.cos(ys) - 0.5]).astype(np.float32)


@pytest.mark.parametrize("fmt", FORMATS)
def test_writer_round_trip(fmt):
    flows = [_smooth_flow(seed=s) for s in range(5)]
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h:
        w = FlowWriter(h, height=48, width=64, format=fmt, block=2)
        for k, f in enumerate(flows):
            w.add(w.encode(f), (10 + k, 11 + k), k / 25)
        w.flush()
        assert h.attrs["num_pairs"] == 5
        assert h["pairs"][:].tolist() == [[10 + k, 11 + k] for k in range(5)]
        back = read_flow(h)
        assert read_flow(h, [3]).shape == (1, 2, 48, 64)
        np.testing.assert_allclose(read_flow(h, [3])[0], back[3])
    tol = {"float16": 0.01, "uint8": 0.08, "jpeg": 0.3}[fmt]
    assert back.shape == (5, 2, 48, 64)
    assert np.abs(back - np.stack(flows)).mean() < tol
    # x stays x: the first component is the horizontal one
    assert np.abs(back[:, 0] - np.stack(flows)[:, 0]).mean() < tol


def test_writer_rejects_a_wrong_shape():
    with h5py.File(io.BytesIO(), "w") as h:
        w = FlowWriter(h, height=8, width=8)
        with pytest.raises(ValueError, match=r"\(2, 8, 8\)"):
            w.encode(np.zeros((8, 8, 2), np.float32))
        with pytest.raises(ValueError, match="jpeg"):
            FlowWriter(h, height=8, width=8, format="png")


def test_export_tsn_copies_jpeg_bytes(tmp_path):
    flows = [_smooth_flow(seed=s) for s in range(3)]
    path = tmp_path / "e.h5"
    with h5py.File(path, "w") as h:
        w = FlowWriter(h, height=48, width=64, format="jpeg")
        for k, f in enumerate(flows):
            w.add(w.encode(f), (k, k + 1), 0.0)
        w.flush()
    with h5py.File(path, "r") as h:
        dest = export_tsn(h, tmp_path / "tsn" / "video1")
        names = sorted(p.name for p in dest.iterdir())
        assert names == [f"flow_{c}_{i:05d}.jpg" for c in "xy" for i in (1, 2, 3)]
        assert (dest / "flow_y_00002.jpg").read_bytes() == bytes(h["flow_y"][1])
    assert not [p for p in (tmp_path / "tsn").iterdir() if p.name.startswith(".")]  # no temp folder left
    img = decode_gray_jpeg((dest / "flow_x_00001.jpg").read_bytes())
    assert img.shape == (48, 64)
    np.testing.assert_allclose(dequantize(img), flows[0][0], atol=0.4)


def test_export_tsn_from_uint8(tmp_path):
    path = tmp_path / "e.h5"
    with h5py.File(path, "w") as h:
        w = FlowWriter(h, height=48, width=64, format="uint8")
        w.add(w.encode(_smooth_flow()), (0, 1), 0.0)
        w.flush()
    with h5py.File(path, "r") as h:
        dest = export_tsn(h, tmp_path / "v")
    assert sorted(p.name for p in dest.iterdir()) == ["flow_x_00001.jpg", "flow_y_00001.jpg"]


def test_flo_size():
    assert flo_bytes(256, 344) == 12 + 8 * 256 * 344
