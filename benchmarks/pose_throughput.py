"""Pose extraction throughput, each against its baseline in the same process.

    python benchmarks/pose_throughput.py mediapipe [--max-frames 120] [--replicas 2]
    python benchmarks/pose_throughput.py mmpose [--weights none] [--max-frames 300]

``mediapipe``: frames/s with one process pinned to one core vs one process per core, on
the same videos (the shared videos, replicated so every core has work).

``mmpose`` (GPU): frames/s of 2D + 3D (RTMO-s + MotionBERT by default) at short side 256,
batched (``batch_frames`` frames per 2D pass, all lifter windows of a video together) vs
mmpose's one-frame-at-a-time inference, on the same decoded frames. Model time only
(decoded frames are held in memory), then where one process's 2D time goes, then the
end-to-end extractor over the video folder (decoding, tracking and writing included),
with ``--workers`` processes sharing the GPU. RTMO's decoding costs per surviving person
(a Python NMS loop): random weights keep every one of the ``--max-detections`` candidates,
a real scene keeps about one per person. ``--weights none`` builds random weights, the
only option offline; the speed of a forward pass does not depend on the weights' values,
but the number of people a random RTMO reports does (random weights find many people per
frame), which is reported with the numbers.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import SHARED_VIDEOS, one_core_vs_all, replicate_videos

from multimodal_har.extractors import build_extractor
from multimodal_har.extractors.runner import run_extraction


def bench_mediapipe(args) -> None:
    one_core_vs_all("mediapipe", args.videos, replicas=args.replicas, unit="frames", max_frames=args.max_frames)


def bench_mmpose(args) -> None:
    import numpy as np
    import torch

    from multimodal_har.data.video import iter_frames

    weights = None if args.weights == "none" else args.weights
    kw = dict(pose2d=args.pose2d, lifter=args.lifter, pose2d_weights=weights, lifter_weights=weights,
              short_side=256, batch_frames=args.batch_frames, max_frames=args.max_frames,
              max_detections=args.max_detections)
    videos = sorted(Path(args.videos).iterdir())
    frames = [fr.image for v in videos[:args.model_videos]
              for fr in iter_frames(v, short_side=256, max_frames=args.max_frames)]
    print(f"{len(frames)} frames from {args.model_videos} videos at short side 256; "
          f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}")
    rates = {}
    for batched in (True, False):
        ex = build_extractor("mmpose", batched=batched, **kw)
        ex.models()
        n = len(frames) if batched else min(len(frames), args.baseline_frames)
        ex.detect_2d(frames[:8])  # warm-up (cuDNN autotuning, lazy init)
        sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
        sync()
        t0 = time.perf_counter()
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(ex.config.pipeline_threads) as pool:
            dets = []
            for b in range(0, n, ex.config.batch_frames):
                dets += ex.detect_2d(frames[b:b + ex.config.batch_frames], pool)
        sync()
        t2d = time.perf_counter() - t0
        # 3D: one person's track of n frames (a standing COCO skeleton moving a little: the
        # lifter's cost does not depend on the values, and random 2D weights find no one)
        h, w = frames[0].shape[:2]
        pose = np.array([[.5, .15], [.52, .13], [.48, .13], [.55, .14], [.45, .14], [.6, .25], [.4, .25],
                         [.65, .4], [.35, .4], [.67, .52], [.33, .52], [.56, .55], [.44, .55],
                         [.57, .75], [.43, .75], [.57, .95], [.43, .95]], np.float32) * [w, h]
        drift = np.linspace(0, 0.1 * w, n, dtype=np.float32)[:, None, None] * [1, 0]
        xy = (pose[None] + drift)[:, None]  # (n, 1, 17, 2)
        sc = np.ones((n, 1, 17), np.float32)
        t0 = time.perf_counter()
        ex._lift_tracks(xy, sc)
        sync()
        t3d = time.perf_counter() - t0
        people = np.mean([len(d[0]) for d in dets])
        rates[batched] = n / (t2d + t3d)
        print(f"mmpose {'batched' if batched else 'one frame at a time'} (max_detections {args.max_detections}): "
              f"{n} frames, 2D {n / t2d:.1f} frames/s, "
              f"3D (one person) {n / t3d:.1f} frames/s, 2D+3D {rates[batched]:.1f} frames/s "
              f"({people:.1f} people per frame found)")
    print(f"ratio batched / one frame at a time = {rates[True] / rates[False]:.1f}x")
    profile_2d(build_extractor("mmpose", **kw), frames[:args.batch_frames * 4], sync)
    with tempfile.TemporaryDirectory() as tmp:
        root = replicate_videos(args.videos, Path(tmp) / "v", args.replicas)
        for workers in args.workers:
            ex = build_extractor("mmpose", **kw)
            s = run_extraction(ex, videos_root=root, store=Path(tmp) / f"s{workers}", workers=workers,
                               progress=False)
            print(f"end to end (decode, 2D, tracking, 3D of {ex.config.max_people} people, write), "
                  f"{workers} processes on the GPU, {s.done} videos: {s.items} frames in {s.seconds:.1f} s "
                  f"= {s.items / s.seconds:.1f} frames/s")


def profile_2d(ex, frames, sync) -> None:
    """Where one process's batched 2D time goes: input pipeline (CPU), backbone + neck
    (GPU), head with its per-image decoding."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    import torch
    from mmengine.dataset import pseudo_collate

    pose2d = ex.models()[0]
    bs = ex.config.batch_frames
    t = dict(pipeline=0.0, preprocess=0.0, features=0.0, head=0.0)
    with ThreadPoolExecutor(ex.config.pipeline_threads) as pool, torch.no_grad():
        for b in range(0, len(frames), bs):
            t0 = time.perf_counter()
            data = list(pool.map(ex.prepare_2d, frames[b:b + bs]))
            t1 = time.perf_counter()
            batch = pose2d.data_preprocessor(pseudo_collate(data), False)
            sync()
            t2 = time.perf_counter()
            feats = pose2d.extract_feat(batch["inputs"])
            sync()
            t3 = time.perf_counter()
            pose2d.head.predict(feats, batch["data_samples"], test_cfg=pose2d.test_cfg)
            sync()
            t4 = time.perf_counter()
            for k, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                t[k] += dt
    n = len(frames)
    print("one process, batched 2D, ms per frame: " + ", ".join(f"{k} {1e3 * v / n:.2f}" for k, v in t.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="backend", required=True)
    mp = sub.add_parser("mediapipe")
    mp.add_argument("--max-frames", type=int, default=120)
    mp.add_argument("--replicas", type=int, default=2)
    mm = sub.add_parser("mmpose")
    mm.add_argument("--weights", default="default", help="'default' (download), a file, or 'none' (random)")
    mm.add_argument("--pose2d", default="rtmo-s")
    mm.add_argument("--lifter", default="motionbert")
    mm.add_argument("--batch-frames", type=int, default=64)
    mm.add_argument("--max-frames", type=int, default=300)
    mm.add_argument("--model-videos", type=int, default=3, help="videos whose frames the model-only timing uses")
    mm.add_argument("--baseline-frames", type=int, default=200, help="frames the one-at-a-time baseline runs")
    mm.add_argument("--workers", type=int, nargs="+", default=[1], help="processes for the end-to-end runs")
    mm.add_argument("--max-detections", type=int, default=30,
                    help="RTMO candidates kept per frame before NMS (random weights keep them all)")
    mm.add_argument("--replicas", type=int, default=2, help="copies of the video folder for the end-to-end runs")
    for p in (mp, mm):
        p.add_argument("--videos", default=str(SHARED_VIDEOS))
    args = ap.parse_args()
    bench_mediapipe(args) if args.backend == "mediapipe" else bench_mmpose(args)


if __name__ == "__main__":
    main()
