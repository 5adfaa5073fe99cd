"""How flow fields are stored: quantised and compressed in the feature store, and as
TSN / MMAction2 JPEGs (``flow_x_%05d.jpg``, ``flow_y_%05d.jpg``) for existing pipelines.

Quantisation follows TSN (Wang et al., ECCV 2016) and MMAction2's ``denseflow``: clip each
component to ``[-bound, bound]`` (bound 20 px) and map linearly to ``0..255``, so a store
entry in the ``jpeg`` format holds byte-for-byte the files those tools read, and exporting
to their folder layout copies bytes without re-encoding.

Formats of the ``flow`` entry (``read_flow`` reads all three):

* ``jpeg`` (default): TSN quantisation, one greyscale JPEG per component and pair.
* ``uint8``: the same quantisation without JPEG (``(P, 2, H, W)``, gzip).
* ``float16``: unclipped flow in half precision (``(P, 2, H, W)``, shuffle + gzip).

``benchmarks/flow_format.py`` measures bytes per pair and the error of each format against
float32 flow; the results are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import os
import warnings
import zlib
import shutil
import uuid
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from multimodal_har.data.store import append_rows, attr_value, decode_jpeg_bytes, read_rows

FORMATS = ("jpeg", "uint8", "float16")
DEFAULT_BOUND = 20.0


def quantize(flow: Any, bound: float = DEFAULT_BOUND) -> Any:
    """Flow (any shape, pixels) -> uint8 with TSN's linear map ``[-bound, bound] -> [0, 255]``.

    Takes a numpy array or a torch tensor (quantised where it lives, e.g. on the GPU).
    """
    scale = 255.0 / (2.0 * bound)
    if hasattr(flow, "clamp"):  # torch
        import torch

        return ((flow.float().clamp(-bound, bound) + bound) * scale).round().to(torch.uint8)
    return np.rint((np.clip(flow, -bound, bound) + bound) * scale).astype(np.uint8)


def dequantize(q: np.ndarray, bound: float = DEFAULT_BOUND) -> np.ndarray:
    """Inverse of :func:`quantize` (up to the quantisation step ``2 * bound / 255``)."""
    return q.astype(np.float32) * (2.0 * bound / 255.0) - bound


def encode_gray_jpeg(image: np.ndarray, quality: int) -> bytes:
    """``(H, W)`` uint8 -> JPEG bytes (libjpeg through torchvision, which releases the GIL, so
    a thread pool encodes in parallel; PIL holds it and does not)."""
    return _encode_gray_jpeg_array(image, quality).tobytes()


def _encode_gray_jpeg_array(image: np.ndarray, quality: int) -> np.ndarray:
    import torch
    from torchvision.io import encode_jpeg

    # torchvision 0.29 deprecates its image codecs (they move to torchcodec, not a dependency
    # here); until then its libjpeg encoder is the one that releases the GIL.
    warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                            category=DeprecationWarning)

    return encode_jpeg(torch.from_numpy(np.ascontiguousarray(image))[None], quality=quality).numpy()


def decode_gray_jpeg(data: Any) -> np.ndarray:
    return decode_jpeg_bytes(data, gray=True)


def flo_bytes(height: int, width: int) -> int:
    """Size of one flow field as a Middlebury ``.flo`` file (float32 x/y + 12-byte header)."""
    return 12 + 8 * height * width


class FlowWriter:
    """Appends flow fields to an open HDF5 file in one of :data:`FORMATS`.

    Datasets written: ``flow`` (``(P, 2, H, W)`` uint8/float16, or for ``jpeg`` ``flow_x`` and
    ``flow_y`` with ``(P,)`` JPEG byte strings), ``pairs`` (``(P, 2)`` source frame indices
    of the two frames of each pair), ``times`` (``(P,)`` seconds of the first frame).
    Attributes: ``format``, ``bound``, ``height``, ``width``, ``num_pairs``.
    """

    def __init__(self, out: Any, *, height: int, width: int, format: str = "jpeg",
                 bound: float = DEFAULT_BOUND, jpeg_quality: int = 95, block: int = 64) -> None:
        import h5py

        if format not in FORMATS:
            raise ValueError(f"flow format must be one of {FORMATS}, got {format!r}")
        self.out, self.format, self.bound, self.quality = out, format, float(bound), jpeg_quality
        self.h, self.w, self.block, self.n = height, width, block, 0
        self._rows: list = []
        if format == "jpeg":
            vlen = h5py.vlen_dtype(np.uint8)
            self._ds = [out.create_dataset(k, shape=(0,), maxshape=(None,), chunks=(block,), dtype=vlen)
                        for k in ("flow_x", "flow_y")]
        else:
            # one chunk per pair, compressed by encode() (in the caller's threads: zlib releases
            # the GIL) and written with write_direct_chunk; HDF5 reads it with these filters
            self._level = 4 if format == "uint8" else 1
            kw = dict(compression="gzip", compression_opts=self._level, shuffle=format == "float16")
            self._ds = [out.create_dataset(
                "flow", shape=(0, 2, height, width), maxshape=(None, 2, height, width),
                chunks=(1, 2, height, width), dtype=np.uint8 if format == "uint8" else np.float16, **kw)]
        self._pairs = out.create_dataset("pairs", shape=(0, 2), maxshape=(None, 2), chunks=(256, 2), dtype=np.int64)
        self._times = out.create_dataset("times", shape=(0,), maxshape=(None,), chunks=(256,), dtype=np.float64)
        out.attrs.update({"format": format, "bound": self.bound, "height": height, "width": width,
                          "num_pairs": 0})

    def encode(self, flow: np.ndarray) -> Any:
        """One ``(2, H, W)`` field (float pixels, or uint8 already quantised) -> a stored row.

        Thread-safe and free of HDF5 calls, so callers may encode in a thread pool.
        """
        if flow.shape != (2, self.h, self.w):
            raise ValueError(f"flow field must be (2, {self.h}, {self.w}), got {tuple(flow.shape)}")
        if self.format == "float16":  # HDF5's shuffle filter, then deflate
            raw = np.ascontiguousarray(flow, dtype=np.float16).view(np.uint8).reshape(-1, 2).T.tobytes()
            return zlib.compress(raw, self._level)
        q = flow if flow.dtype == np.uint8 else quantize(flow, self.bound)
        if self.format == "uint8":
            return zlib.compress(np.ascontiguousarray(q).tobytes(), self._level)
        return tuple(_encode_gray_jpeg_array(q[c], self.quality) for c in (0, 1))

    def add(self, row: Any, pair: Sequence[int], time: float) -> None:
        """Append an encoded row (see :meth:`encode`) for the pair ``(i, j)`` of source frames."""
        self._rows.append((row, (int(pair[0]), int(pair[1])), float(time)))
        if len(self._rows) >= self.block:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        rows = self._rows
        if self.format == "jpeg":
            for c, ds in enumerate(self._ds):
                append_rows(ds, [r[c] for r, _, _ in rows])
        else:  # pre-compressed chunks (see encode)
            ds, n = self._ds[0], self._ds[0].shape[0]
            ds.resize(n + len(rows), axis=0)
            for i, (r, _, _) in enumerate(rows):
                ds.id.write_direct_chunk((n + i, 0, 0, 0), r)
        append_rows(self._pairs, np.array([p for _, p, _ in rows], dtype=np.int64))
        append_rows(self._times, np.array([t for _, _, t in rows]))
        self.n += len(rows)
        self.out.attrs["num_pairs"] = self.n
        self._rows = []


def read_flow(f: Any, indices: Optional[Sequence[int]] = None, *, quantized: bool = False) -> np.ndarray:
    """Flow fields of an open ``flow`` entry as ``(N, 2, H, W)`` float32 pixels (x, y).

    Only the requested pairs are read and decoded. ``quantized``: the stored TSN-quantised
    uint8 as it is (``dequantize(q, f.attrs["bound"])`` gives pixels), for the ``jpeg`` and
    ``uint8`` formats; a ``float16`` entry still gives float32 pixels.
    """
    fmt, bound = attr_value(f.attrs["format"]), float(f.attrs["bound"])
    n = int(f["pairs"].shape[0])
    idx = list(range(n)) if indices is None else [int(i) for i in indices]
    raw = quantized and fmt in ("jpeg", "uint8")
    if not idx:
        return np.zeros((0, 2, int(f.attrs["height"]), int(f.attrs["width"])), np.uint8 if raw else np.float32)
    if fmt == "jpeg":  # one HDF5 read per component for all the pairs
        q = np.empty((len(idx), 2, int(f.attrs["height"]), int(f.attrs["width"])), np.uint8)
        for c, k in enumerate(("flow_x", "flow_y")):
            for i, data in enumerate(read_rows(f[k], idx)):
                q[i, c] = decode_gray_jpeg(data)  # into place: no per-pair stacking
    else:
        q = np.asarray(read_rows(f["flow"], idx))
    if raw:
        return q
    return dequantize(q, bound) if fmt != "float16" else q.astype(np.float32)


def read_flow_quantized(f: Any, index: int) -> np.ndarray:
    """One pair as TSN-quantised ``(2, H, W)`` uint8 (stored uint8 as it is; float16 quantised)."""
    q = read_flow(f, [index], quantized=True)[0]
    return q if q.dtype == np.uint8 else quantize(q, float(f.attrs["bound"]))


def export_tsn(f: Any, dest: str | os.PathLike, *, jpeg_quality: int = 95) -> Path:
    """Write an entry as TSN / MMAction2 flow frames: ``dest/flow_x_00001.jpg``, ``flow_y_...``.

    Numbering starts at 1 as in ``denseflow``. Entries stored as ``jpeg`` are copied byte for
    byte; others are quantised and encoded. The folder appears complete or not at all (written
    beside ``dest`` under a temporary name, then renamed).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        fmt = attr_value(f.attrs["format"])
        for i in range(int(f["pairs"].shape[0])):
            for c, k in enumerate(("flow_x", "flow_y")):
                if fmt == "jpeg":
                    data = bytes(f[k][i])
                else:
                    data = encode_gray_jpeg(read_flow_quantized(f, i)[c], jpeg_quality)
                (tmp / f"{k}_{i + 1:05d}.jpg").write_bytes(data)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


# Bytes per pixel of one stored pair (both components), measured by benchmarks/flow_format.py
# on TV-L1 flow of the shared sample videos at short side 256 (see benchmarks/README.md).
BYTES_PER_PIXEL = {"jpeg": 0.112, "uint8": 0.224, "float16": 2.91}


def bytes_per_pair_estimate(format: str, height: int, width: int) -> float:
    """Expected stored bytes of one pair, for the disk estimate printed before a run."""
    return BYTES_PER_PIXEL[format] * height * width
