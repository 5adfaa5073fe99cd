"""One-read row access and JPEG decoding used by the store readers (``read_rgb``, ``read_flow``)."""

import io

import h5py
import numpy as np
import pytest
from PIL import Image

from multimodal_har.data.store import decode_jpeg_bytes, read_rows


def _jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.parametrize("indices", [[3, 1, 3, 0], [0, 40, 99, 7], list(range(100)), []])
def test_read_rows_matches_one_read_per_row(tmp_path, indices):
    data = np.arange(100 * 3, dtype=np.int32).reshape(100, 3)
    vlen = np.empty(100, dtype=object)
    for i in range(100):
        vlen[i] = np.full(i % 7 + 1, i, dtype=np.uint8)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["a"] = data  # [0, 40, 99, 7] spans more than 4x its rows: the fancy-index path
        f.create_dataset("v", data=vlen, dtype=h5py.vlen_dtype(np.uint8))
    with h5py.File(tmp_path / "f.h5", "r") as f:
        np.testing.assert_array_equal(read_rows(f["a"], indices), data[indices].reshape(-1, 3))
        rows = read_rows(f["v"], indices)
        assert len(rows) == len(indices)
        for r, i in zip(rows, indices):
            np.testing.assert_array_equal(r, vlen[i])


def test_decode_jpeg_bytes_agrees_with_pil_and_rejects_junk():
    rng = np.random.default_rng(0)
    rgb = np.repeat(np.repeat(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), 4, 0), 4, 1)
    data = _jpeg(rgb)
    pil = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    for given in (data, np.frombuffer(data, np.uint8)):
        out = decode_jpeg_bytes(given, gray=False)
        assert out.shape == (48, 64, 3) and out.dtype == np.uint8
        assert np.abs(out.astype(int) - pil).max() <= 1  # the same libjpeg, up to IDCT rounding
    gray = decode_jpeg_bytes(_jpeg(rgb[..., 0]), gray=True)
    assert gray.shape == (48, 64)
    with pytest.raises(OSError):
        decode_jpeg_bytes(b"not a jpeg", gray=True)
