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

from multimodal_har.data.store import Appender, attr_value, decode_jpeg_bytes, read_rows
from multimodal_har.data.video import VideoError, VideoInfo

from .base import Extractor, FrameSampling

FORMATS = ("jpeg", "raw")


@dataclass
class RGBConfig(FrameSampling):
    """How frames are sampled (see ``FrameSampling``: short_side, fps, stride, max_frames,
    min_decoded_fraction) and stored.

    Attributes:
        format: ``"jpeg"`` or ``"raw"``.
        jpeg_quality: 1..100 (JPEG only).
    """

    format: str = "jpeg"
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")


def encode_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> JPEG bytes as a uint8 array."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


def decode_jpeg(data: np.ndarray | bytes) -> np.ndarray:
    """JPEG bytes -> ``(H, W, 3)`` uint8 RGB (:func:`~multimodal_har.data.store.decode_jpeg_bytes`)."""
    return decode_jpeg_bytes(data, gray=False)


class RGBExtractor(Extractor):
    """Writes ``frames`` (JPEG bytes ``(T,)`` or uint8 ``(T, H, W, 3)``), ``timestamps`` (s,
    ``(T,)``) and ``frame_indices`` (source frame numbers, ``(T,)``)."""

    name = "rgb"
    modality = "rgb"
    version = 1
    config_class = RGBConfig
    outputs = ("frames", "timestamps", "frame_indices")

    def extract(self, path: Path, out: Any, *, info: VideoInfo, threads: int = 0) -> dict[str, Any]:
        import h5py

        cfg = self.config
        frames_ds = times = indices = None
        kept = 0
        for fr in cfg.frames(path, threads):
            if frames_ds is None:
                h, w = fr.image.shape[:2]
                if cfg.format == "jpeg":
                    ds = out.create_dataset("frames", shape=(0,), maxshape=(None,), chunks=(64,),
                                            dtype=h5py.vlen_dtype(np.uint8))
                else:
                    ds = out.create_dataset("frames", shape=(0, h, w, 3), maxshape=(None, h, w, 3),
                                            chunks=(1, h, w, 3), dtype=np.uint8, compression="gzip",
                                            compression_opts=1)
                frames_ds = Appender(ds)
                times = Appender(out.create_dataset("timestamps", shape=(0,), maxshape=(None,),
                                                     chunks=(1024,), dtype=np.float64), block=1024)
                indices = Appender(out.create_dataset("frame_indices", shape=(0,), maxshape=(None,),
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
        cfg.check_complete(path, kept, info)
        out.attrs["num_frames"] = kept
        return {"frames": kept}


def read_rgb(f: Any, indices: Optional[Sequence[int]] = None) -> np.ndarray:
    """Frames of an open ``rgb`` entry (``h5py.File``) as ``(N, H, W, 3)`` uint8.

    Only the requested frames are read and decoded.
    """
    ds = f["frames"]
    idx = np.arange(ds.shape[0]) if indices is None else indices
    rows = read_rows(ds, idx)  # one HDF5 read for all of them
    if attr_value(f.attrs["format"]) == "jpeg":
        return np.stack([decode_jpeg(r) for r in rows])
    return np.asarray(rows)
