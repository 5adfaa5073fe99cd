"""The whole path from video files to a fused model: ``mhar extract`` -> ``mhar train`` -> ``mhar evaluate``.

    python benchmarks/video_fusion.py --work runs/video_fusion

1. ``mhar extract`` rgb (short side 128), flow (DIS, short side 128), pose (MediaPipe,
   short side 256) and audio of the shared videos (../shared/data/videos) into
   ``WORK/store``, each video its own class (an annotations CSV); skipped for modalities
   the store already has.
2. A time split: every video becomes ``train/<id>`` (its first ``--train-fraction`` of time)
   and ``test/<id>`` (the rest), see ``store_views.split_store_by_time``. The dataset's splits
   are per video and a window is drawn anywhere in an entry, so a split of one video's time
   is expressed as two entries; train and test windows never share a frame.
3. ``mhar train --config configs/video_4modality.yaml`` with ``--set`` overrides for this
   CPU-sized run (2 s windows, 4 TSN segments, batch 8, a few epochs), then
   ``mhar evaluate RUN --split test --checkpoint last``.

With 7 videos (7 classes, one video each) the metrics say that the path runs end to end,
not how good the model is.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_VIDEOS  # noqa: E402
from store_views import split_store_by_time  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXTRACT = [("rgb", ["rgb", "--short-side", "128"]),
           ("flow", ["flow", "--backend", "dis", "--short-side", "128"]),
           ("pose3d", ["pose", "--backend", "mediapipe", "--short-side", "256"]),
           ("audio", ["audio"])]


def run(cmd: list[str]) -> float:
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    print(f"  ({seconds:.1f} s)", flush=True)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=SHARED_VIDEOS)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--store", type=Path, default=None, help="extracted store (default WORK/store)")
    ap.add_argument("--train-fraction", type=float, default=0.7)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="extraction processes")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    work = args.work.resolve()
    store = (args.store or work / "store").resolve()
    work.mkdir(parents=True, exist_ok=True)
    csv = work / "annotations.csv"
    csv.write_text("path,label,split\n" + "".join(f"{v.name},{v.stem},train\n" for v in sorted(args.videos.iterdir())))
    for modality, cmd in EXTRACT:
        if (store / modality).is_dir():
            print(f"{store}: {modality} already extracted, kept", flush=True)
            continue
        run(["mhar", "extract", *cmd, "--videos", str(args.videos), "--store", str(store),
             "--annotations", str(csv), "--workers", str(args.workers), "--no-progress"])
    split = work / "time_split"
    if not split.is_dir():
        split_store_by_time(store, split, args.train_fraction)
    run_dir = work / "run"
    overrides = [f"data.store={split}", "data.window=2.0", "data.windows_per_video=4", "data.val_split=train",
                 "data.num_workers=0", "data.class_balanced=false",
                 "data.modalities.rgb.segments=4", "data.modalities.flow.segments=4",
                 f"train.epochs={args.epochs}", "train.batch_size=8", "train.warmup_epochs=1",
                 "train.early_stop_patience=0", f"train.device={args.device}"]
    run(["mhar", "train", "--config", "configs/video_4modality.yaml", "--run-dir", str(run_dir),
         *[a for o in overrides for a in ("--set", o)]])
    run(["mhar", "evaluate", str(run_dir), "--split", "test", "--checkpoint", "last", "--device", args.device])


if __name__ == "__main__":
    main()
