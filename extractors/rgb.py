"""RGB frames: sampled, resized to a short side, stored as JPEG (default) or raw uint8.

Why JPEG by default (measured by ``benchmarks/bench_rgb_format.py``, recorded in
``benchmarks/README.md``): on the real sample videos at short side 256, quality 90 takes
19.7 KB per frame, 13.8x less than raw uint8 and 6.8x less than raw with gzip, and reading
plus decoding one random frame (0.73 ms) is faster than from gzip (0.92 ms). Only the frames
a sampler picks are decoded (TSN reads K of T). Each frame is its own JPEG in a
variable-length HDF5 dataset, so random access needs no neighbouring frames (unlike
re-encoded video). ``raw`` keeps exact pixels (one frame per chunk, gzip) for users who need them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from multimodal_har.data.video import VideoError, VideoInfo, expected_kept_frames, iter_frames

from .base import Extractor

FORMATS = ("jpeg", "raw")


@dataclass
class RGBConfig:
    """How frames are sampled and stored.

    Attributes:
        short_side: resize so the shorter side has this many pixels (None: keep the size).
        fps: sample at this rate (None: use ``stride``). Mutually exclusive with ``stride > 1``.
        stride: keep every ``stride``-th frame.
        max_frames: stop after this many kept frames (None: the whole video).
        format: ``"jpeg"`` or ``"raw"``.
        jpeg_quality: 1..100 (JPEG only).
        min_decoded_fraction: fail a video that decodes fewer than this fraction of the
            frames its header announces (truncated files often decode a prefix silently).
    """

    short_side: Optional[int] = 256
    fps: Optional[float] = None
    stride: int = 1
    max_frames: Optional[int] = None
    format: str = "jpeg"
    jpeg_quality: int = 90
    min_decoded_fraction: float = 0.9

    def __post_init__(self) -> None:
        if self.short_side is not None and self.short_side < 8:
            raise ValueError(f"short_side must be >= 8 or None, got {self.short_side}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.fps is not None and self.stride != 1:
            raise ValueError("give either fps or stride, not both")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or None, got {self.max_frames}")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if not 0.0 <= self.min_decoded_fraction <= 1.0:
            raise ValueError(f"min_decoded_fraction must be in [0, 1], got {self.min_decoded_fraction}")


def encode_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> JPEG bytes as a uint8 array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


def decode_jpeg(data: np.ndarray | bytes) -> np.ndarray:
    """JPEG bytes -> ``(H, W, 3)`` uint8 RGB."""
    from PIL import Image

    with Image.open(io.BytesIO(bytes(data))) as im:
        return np.asarray(im.convert("RGB"))


class _Appender:
    """Appends rows to a resizable HDF5 dataset in blocks (one resize per block)."""

    def __init__(self, dataset, block: int = 64) -> None:
        self.ds, self.block, self.rows = dataset, block, []

    def add(self, row: Any) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.block:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        n = self.ds.shape[0]
        self.ds.resize(n + len(self.rows), axis=0)
        if self.ds.dtype.kind == "O":
            for i, r in enumerate(self.rows):
                self.ds[n + i] = r
        else:
            self.ds[n:] = np.stack(self.rows)
        self.rows = []


class RGBExtractor(Extractor):
    """Writes ``frames`` (JPEG bytes ``(T,)`` or uint8 ``(T, H, W, 3)``), ``timestamps`` (s,
    ``(T,)``) and ``frame_indices`` (source frame numbers, ``(T,)``)."""

    name = "rgb"
    modality = "rgb"
    version = 1
    config_class = RGBConfig

    def extract(self, path: Path, out: Any, *, info: VideoInfo, threads: int = 0) -> dict[str, Any]:
        import h5py

        cfg = self.config
        frames_ds = times = indices = None
        kept = 0
        for fr in iter_frames(path, stride=cfg.stride, fps=cfg.fps, short_side=cfg.short_side,
                              max_frames=cfg.max_frames, threads=threads):
            if frames_ds is None:
                h, w = fr.image.shape[:2]
                if cfg.format == "jpeg":
                    ds = out.create_dataset("frames", shape=(0,), maxshape=(None,), chunks=(64,),
                                            dtype=h5py.vlen_dtype(np.uint8))
                else:
                    ds = out.create_dataset("frames", shape=(0, h, w, 3), maxshape=(None, h, w, 3),
                                            chunks=(1, h, w, 3), dtype=np.uint8, compression="gzip",
                                            compression_opts=1)
                frames_ds = _Appender(ds)
                times = _Appender(out.create_dataset("timestamps", shape=(0,), maxshape=(None,),
                                                     chunks=(1024,), dtype=np.float64), block=1024)
                indices = _Appender(out.create_dataset("frame_indices", shape=(0,), maxshape=(None,),
                                                       chunks=(1024,), dtype=np.int64), block=1024)
                out.attrs.update({"height": h, "width": w, "format": cfg.format,
                                  "source_fps": info.fps, "source_num_frames": info.num_frames})
            frames_ds.add(encode_jpeg(fr.image, cfg.jpeg_quality) if cfg.format == "jpeg" else fr.image)
            times.add(fr.time)
            indices.add(fr.index)
            kept += 1
        if kept == 0:
            raise VideoError(f"{path}: no frame could be decoded (the video stream is empty or corrupt)")
        for a in (frames_ds, times, indices):
            a.flush()
        expected = self.expected_frames(info)
        limited = cfg.max_frames is not None and kept >= cfg.max_frames
        if expected and not limited and kept < cfg.min_decoded_fraction * expected - 1:
            raise VideoError(
                f"{path}: decoded {kept} of the ~{expected} frames its header announces "
                f"(the file is truncated or corrupt)"
            )
        out.attrs["num_frames"] = kept
        return {"frames": kept}

    def expected_frames(self, info: VideoInfo) -> int:
        """How many frames sampling should keep, from the header (0 if unknown)."""
        cfg = self.config
        return expected_kept_frames(info, stride=cfg.stride, fps=cfg.fps, max_frames=cfg.max_frames)


def read_rgb(f: Any, indices: Optional[Sequence[int]] = None) -> np.ndarray:
    """Frames of an open ``rgb`` entry (``h5py.File``) as ``(N, H, W, 3)`` uint8.

    Only the requested frames are read and decoded.
    """
    ds = f["frames"]
    idx = range(ds.shape[0]) if indices is None else indices
    fmt = f.attrs["format"]
    fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
    if fmt == "jpeg":
        return np.stack([decode_jpeg(ds[int(i)]) for i in idx])
    return np.stack([ds[int(i)] for i in idx])
