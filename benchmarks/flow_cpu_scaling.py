"""CPU flow backends: pairs/s with one process vs one process per core, same videos, same run.

    python benchmarks/flow_cpu_scaling.py [--backend dis] [--max-frames 60] [--replicas 2]

The one-core run is pinned to CPU 0 (``sched_setaffinity``), so OpenCV's and FFmpeg's own
threads cannot borrow other cores; the all-core run uses one process per core.
"""

from __future__ import annotations

import argparse

from _common import SHARED_VIDEOS, one_core_vs_all


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", default=str(SHARED_VIDEOS))
    ap.add_argument("--backend", default="dis", choices=["dis", "farneback", "tvl1"])
    ap.add_argument("--max-frames", type=int, default=120)
    ap.add_argument("--replicas", type=int, default=2)
    args = ap.parse_args()
    one_core_vs_all(args.backend, args.videos, replicas=args.replicas, unit="pairs", max_frames=args.max_frames)

if __name__ == "__main__":
    main()
