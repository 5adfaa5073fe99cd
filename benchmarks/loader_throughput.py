"""Samples/s the multimodal loader delivers alone (no model), 0 workers vs N, for a 4-modality
config (rgb TSN segments, flow stacks, pose, audio) on a store made from the real videos.

The store is built with the project's extractors (rgb, Farneback flow, MediaPipe pose, audio)
from ``--replicas`` copies of ../shared/data/videos (as ``_common.replicate_videos``), then the
training loader (random windows, crops, flips, SpecAugment) is timed over ``--epochs`` epochs
after one warm-up epoch, which also starts the persistent workers.

    python benchmarks/loader_throughput.py --replicas 2 --workers 2
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from _common import SHARED_VIDEOS, loader_rate, replicate_videos


def build_store(root: Path, store: Path, *, short_side: int, fps: float) -> None:
    from multimodal_har.extractors import build_extractor
    from multimodal_har.extractors.runner import run_extraction

    for name, kw in [("rgb", dict(short_side=short_side, fps=fps)),
                     ("farneback", dict(short_side=short_side, fps=fps)),
                     ("mediapipe", dict(short_side=256, fps=fps)),
                     ("audio", {})]:
        t = time.perf_counter()
        s = run_extraction(build_extractor(name, **kw), videos_root=root, store=store, progress=False)
        print(f"extract {name}: {s.done} done, {len(s.missing)} missing, {len(s.failed)} failed "
              f"in {time.perf_counter() - t:.1f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--short-side", type=int, default=128, help="stored rgb / flow short side")
    p.add_argument("--fps", type=float, default=10.0, help="extraction frame rate (rgb, flow, pose)")
    p.add_argument("--crop", type=int, default=112)
    p.add_argument("--segments", type=int, default=8)
    p.add_argument("--window", type=float, default=4.0)
    p.add_argument("--windows-per-video", type=int, default=4)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()

    from multimodal_har.data.dataset import DataConfig, StoreDataset

    with tempfile.TemporaryDirectory() as tmp:
        root = replicate_videos(SHARED_VIDEOS, Path(tmp) / "v", args.replicas)
        store = Path(tmp) / "store"
        build_store(root, store, short_side=args.short_side, fps=args.fps)
        cfg = DataConfig(store=str(store), window=args.window, val_fraction=0,
                         windows_per_video=args.windows_per_video, modalities={
            "rgb": {"segments": args.segments, "crop": args.crop, "multi_scale": True},
            "flow": {"segments": args.segments, "flow_length": 5, "crop": args.crop},
            "pose": {"source": "pose3d", "frames": 32, "normalize": {}},
            "audio": {"frames": int(args.window * 100)}})
        ds = StoreDataset(cfg, "train", train=True)
        print(f"{len(ds)} samples; rgb {args.segments}x3x{args.crop}^2, flow {args.segments}x10x{args.crop}^2, "
              f"pose 32 frames, audio {int(args.window * 100)} frames; batch {args.batch_size}")
        rates = {}
        for w in (0, args.workers):
            rates[w] = loader_rate(ds, workers=w, batch_size=args.batch_size, epochs=args.epochs)
            print(f"{w} workers: {rates[w]:.1f} samples/s")
    print(f"{platform.machine()}, {os.cpu_count()} cores: {args.workers} workers / 0 workers = "
          f"{rates[args.workers] / rates[0]:.2f}x")


if __name__ == "__main__":
    main()
