"""CPU flow backends: pairs/s with one process vs one process per core, same videos, same run.

    python benchmarks/flow_cpu_scaling.py [--backend dis] [--max-frames 60] [--replicas 2]

The one-core run is pinned to CPU 0 (``sched_setaffinity``), so OpenCV's and FFmpeg's own
threads cannot borrow other cores; the all-core run uses one process per core.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

from _common import SHARED_VIDEOS, replicate_videos

from extractors import build_extractor
from extractors.runner import run_extraction


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", default=str(SHARED_VIDEOS))
    ap.add_argument("--backend", default="dis", choices=["dis", "farneback", "tvl1"])
    ap.add_argument("--max-frames", type=int, default=120)
    ap.add_argument("--replicas", type=int, default=2)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        root = replicate_videos(args.videos, Path(tmp) / "v", args.replicas)
        rates = {}
        allowed = os.sched_getaffinity(0)
        for workers in (1, cores):
            ex = build_extractor(args.backend, max_frames=args.max_frames)
            os.sched_setaffinity(0, {min(allowed)} if workers == 1 else allowed)
            s = run_extraction(ex, videos_root=root, store=Path(tmp) / f"s{workers}", workers=workers,
                               progress=False)
            os.sched_setaffinity(0, allowed)
            rates[workers] = s.items / s.seconds
            print(f"{args.backend}, {'1 core' if workers == 1 else f'{workers} processes'}: {s.items} pairs in {s.seconds:.1f} s = "
                  f"{rates[workers]:.1f} pairs/s")
    print(f"{platform.machine()}, {cores} cores: ratio all cores / one core = {rates[cores] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
