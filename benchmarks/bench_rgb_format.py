"""Storage formats for RGB frames: bytes per frame and random-access read+decode time.

    python benchmarks/bench_rgb_format.py [--videos ../shared/data/videos] [--short-side 256]

All frames of the real videos (short side 256) are written with each format into one HDF5
file per video, as the store does; then 200 random frames are read and decoded one at a time
(what a TSN-style sampler does). Raw uint8 without compression is the baseline.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from multimodal_har.extractors.rgb import decode_jpeg, encode_jpeg
from multimodal_har.data.video import iter_frames

FORMATS = ["raw", "raw_gzip1", "raw_lzf", "jpeg95", "jpeg90", "jpeg75"]


def write(path: Path, frames: list[np.ndarray], fmt: str) -> float:
    t = time.perf_counter()
    with h5py.File(path, "w") as f:
        if fmt.startswith("jpeg"):
            q = int(fmt[4:])
            ds = f.create_dataset("frames", (len(frames),), dtype=h5py.vlen_dtype(np.uint8), chunks=(64,))
            for i, fr in enumerate(frames):
                ds[i] = encode_jpeg(fr, q)
        else:
            comp = {"raw": {}, "raw_gzip1": dict(compression="gzip", compression_opts=1),
                    "raw_lzf": dict(compression="lzf")}[fmt]
            f.create_dataset("frames", data=np.stack(frames), chunks=(1, *frames[0].shape), **comp)
    return time.perf_counter() - t


def read(path: Path, idx: np.ndarray, fmt: str) -> float:
    t = time.perf_counter()
    with h5py.File(path, "r") as f:
        ds = f["frames"]
        for i in idx:
            x = ds[int(i)]
            if fmt.startswith("jpeg"):
                x = decode_jpeg(x)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos")
    ap.add_argument("--short-side", type=int, default=256)
    args = ap.parse_args()
    videos = {p.stem: [fr.image for fr in iter_frames(p, short_side=args.short_side)]
              for p in sorted(args.videos.iterdir())}
    n = sum(len(v) for v in videos.values())
    rng = np.random.default_rng(0)
    stats = {}
    with tempfile.TemporaryDirectory() as d:
        for fmt in FORMATS:
            size = wt = rt = 0.0
            reads = 0
            for name, frames in videos.items():
                p = Path(d) / f"{name}.{fmt}.h5"
                wt += write(p, frames, fmt)
                size += p.stat().st_size
                idx = rng.integers(0, len(frames), size=30)
                rt += read(p, idx, fmt)
                reads += len(idx)
            stats[fmt] = (size / n, wt / n * 1e3, rt / reads * 1e3)
    base = stats["raw"][0]
    print(f"{n} frames of {len(videos)} real videos, short side {args.short_side}")
    print(f"{'format':10s} {'KB/frame':>9s} {'vs raw':>8s} {'write ms/frame':>15s} {'random read+decode ms/frame':>28s}")
    for fmt, (b, w, r) in stats.items():
        print(f"{fmt:10s} {b / 1024:9.1f} {base / b:7.1f}x {w:15.2f} {r:28.2f}")


if __name__ == "__main__":
    main()
