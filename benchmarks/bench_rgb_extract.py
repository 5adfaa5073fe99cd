"""Decoding + RGB extraction throughput: one worker vs all workers, side by side.

    python benchmarks/bench_rgb_extract.py [--videos ../shared/data/videos] [--copies 3]

Each configuration extracts the same folder (the real videos, symlinked ``--copies`` times so
that process start-up is amortised) into a fresh store; the first, untimed pass warms the
page cache. Prints frames/s and the ratio of all-workers over one worker, plus decode-only
throughput (PyAV, same resize) as the ceiling of a single process.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from multimodal_har.extractors import build_extractor
from multimodal_har.extractors.runner import run_extraction
from multimodal_har.data.video import iter_frames


def make_folder(videos: Path, copies: int, dst: Path) -> Path:
    for c in range(copies):
        (dst / f"copy{c}").mkdir(parents=True)
        for v in sorted(videos.iterdir()):
            os.symlink(v.resolve(), dst / f"copy{c}" / v.name)
    return dst


def extract(folder: Path, workers: int, short_side: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        s = run_extraction(build_extractor("rgb", short_side=short_side), videos_root=folder,
                           store=Path(d) / "store", workers=workers, progress=False)
        dt = time.perf_counter() - t
    assert not s.failed, s.failed
    return dt, s.items


def decode_only(folder: Path, short_side: int) -> tuple[float, int]:
    t, n = time.perf_counter(), 0
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            n += sum(1 for _ in iter_frames(p, short_side=short_side))
    return time.perf_counter() - t, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos")
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--short-side", type=int, default=256)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    print(f"machine: {platform.machine()}, {cores} cores, {platform.processor() or platform.platform()}")
    with tempfile.TemporaryDirectory() as d:
        folder = make_folder(args.videos, args.copies, Path(d) / "videos")
        decode_only(folder, args.short_side)  # warm the page cache
        dt, n = decode_only(folder, args.short_side)
        print(f"decode+resize only, 1 process:  {n} frames in {dt:.2f} s = {n / dt:7.1f} frames/s")
        one_dt, one_n = extract(folder, 1, args.short_side)
        print(f"rgb extraction, 1 worker:       {one_n} frames in {one_dt:.2f} s = {one_n / one_dt:7.1f} frames/s")
        all_dt, all_n = extract(folder, cores, args.short_side)
        print(f"rgb extraction, {cores} workers:      {all_n} frames in {all_dt:.2f} s = {all_n / all_dt:7.1f} frames/s")
        print(f"ratio all workers / 1 worker: {(all_n / all_dt) / (one_n / one_dt):.2f}x")


if __name__ == "__main__":
    main()
