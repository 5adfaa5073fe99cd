"""Bytes per frame pair and error of each stored flow format, on real flow.

Computes flow with a CPU backend (TV-L1 by default, DIS with --backend dis) on the shared
sample videos at short side 256, stores it in every format, and prints bytes per pair, the
ratio to float32 ``.flo`` and the end-point error of the stored flow against float32.

    python benchmarks/flow_format.py [--videos ../shared/data/videos] [--pairs 12] [--backend tvl1]
"""

from __future__ import annotations

import argparse
import io
import platform
import time
from pathlib import Path

import h5py
import numpy as np

from multimodal_har.extractors import build_extractor
from multimodal_har.extractors.flow_base import iter_chunks
from multimodal_har.data.ingest import scan_videos
from multimodal_har.data.video import probe
from multimodal_har.flow.codec import FORMATS, FlowWriter, flo_bytes, read_flow


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", default=str(Path(__file__).resolve().parents[2] / "shared/data/videos"))
    ap.add_argument("--pairs", type=int, default=12, help="pairs per video (from its start)")
    ap.add_argument("--backend", default="tvl1", choices=["tvl1", "dis", "farneback"])
    args = ap.parse_args()
    ex = build_extractor(args.backend, max_frames=args.pairs + 1)
    ex.setup(2)
    flows, per_video = [], []
    t0 = time.perf_counter()
    for r in scan_videos(args.videos):
        path = Path(args.videos) / r.path
        for ch in iter_chunks(path, ex.config, probe(path), chunk=args.pairs + 1):
            per_video.append(list(ex.flow_chunk(ch.images)))
            flows.extend(per_video[-1])
    print(f"{args.backend}: {len(flows)} pairs from {args.videos} in {time.perf_counter() - t0:.1f} s "
          f"({platform.processor() or platform.machine()})")
    mags = [np.sqrt((f ** 2).sum(0)) for f in flows]
    print(f"flow magnitude: mean {np.mean([m.mean() for m in mags]):.2f} px, "
          f"99th percentile {np.percentile(np.concatenate([m.ravel() for m in mags]), 99):.2f} px")
    print(f"{'format':<10}{'bytes/pair':>12}{'bytes/pixel':>13}{'x smaller than .flo':>21}{'EPE px':>9}{'EPE |f|<20':>12}")
    for fmt in FORMATS:
        total, pixels, epe, epe_in = 0, 0, [], []
        for vid_flows in per_video:
            h_, w_ = vid_flows[0].shape[1:]
            sizes = []
            for fl in ([], vid_flows):  # payload = file with the pairs - the same file without
                buf = io.BytesIO()
                with h5py.File(buf, "w") as h:
                    w = FlowWriter(h, height=h_, width=w_, format=fmt)
                    for k, f in enumerate(fl):
                        w.add(w.encode(f), (k, k + 1), 0.0)
                    w.flush()
                    back = read_flow(h) if fl else None
                sizes.append(len(buf.getvalue()))
            total += sizes[1] - sizes[0]
            pixels += len(vid_flows) * h_ * w_
            for f, g in zip(vid_flows, back):
                err = np.sqrt(((g - f) ** 2).sum(0))
                epe.append(err.mean())
                epe_in.append(err[(np.abs(f) < 20).all(0)].mean())
        per_pair = total / len(flows)
        flo = np.mean([flo_bytes(f.shape[1], f.shape[2]) for f in flows])
        print(f"{fmt:<10}{per_pair:>12,.0f}{total / pixels:>13.4f}{flo / per_pair:>21.1f}"
              f"{np.mean(epe):>9.3f}{np.mean(epe_in):>12.3f}")


if __name__ == "__main__":
    main()
