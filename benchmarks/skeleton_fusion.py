"""Multi-stream skeleton fusion on the real Kinect datasets, through the package's own training path.

    python benchmarks/skeleton_fusion.py --out results/fusion --jobs 22          # both datasets
    python benchmarks/skeleton_fusion.py --datasets utkinect --methods concat joint --seeds 0 --out X
    python benchmarks/skeleton_fusion.py --out results/fusion --summary          # the tables again

Joint, bone and motion streams of the same ``pose3d`` entries are three modalities, each
with its own narrow ST-GCN ((32,1),(32,1),(64,2),(64,1),(128,2),(128,1), dropout 0.2). The
sequences go into a feature store with ``multimodal_har.skeleton.datasets.add_to_store``
(cross-subject splits: MSR Action3D subjects 1,3,5,7,9 train; UTKinect odd subjects
train); every run is an experiment config (``multimodal_har.experiment``) trained by
``multimodal_har.train.train`` and evaluated by ``multimodal_har.evaluate.evaluate_run`` on
the test split with the LAST epoch's checkpoint (no model selection on the test subjects).

Methods: the fusion methods ``concat late early slow cross_attention`` (each with its
defaults), and the single streams ``joint bone motion`` (one modality, concat = its pooled
embedding + a linear head). Fixed in advance, close to ``skeleton_accuracy.py``: 32 frames
per sample (``frames: 32``; a shorter sequence keeps all its frames and is masked),
normalisation centred on the first sampled frame, view-aligned, torso-scaled; training
rotation about y +-15 deg and scale 0.9-1.1 (no jitter); AdamW lr 3e-3, weight decay
5e-4, 10% linear warm-up then cosine, 60 epochs, batch 16, label smoothing 0.1, no gradient
clipping, no modality dropout, fp32. Validation (each epoch, never used for any choice) is
the training split without augmentation, so that no training sequence is held out.

Each finished run writes ``OUT/DATASET/METHOD-sSEED.json`` (top-1, mean class accuracy, the
top-1 of every modality subset of the fused model, training seconds); runs whose file exists
are skipped, so an interrupted sweep continues. Prints one table per dataset: per-seed top-1,
mean +- std, mean training seconds per run, and each fusion method minus the best single
stream. Runs go longest first over ``--jobs`` processes (1 torch thread each: these small
models are launch-bound, so many at once use the machine, as in ``skeleton_sweep.sh``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from _common import stop_pool

DATA = Path(__file__).resolve().parents[2] / "shared/data/skeleton"
NARROW = [[32, 1], [32, 1], [64, 2], [64, 1], [128, 2], [128, 1]]
STREAMS = ("joint", "bone", "motion")
FUSIONS = ("concat", "late", "early", "slow", "cross_attention")
RATE_HZ = {"msr_action3d": 15.0, "utkinect": 30.0}


def build_store(dataset: str, data: Path, store: Path) -> Path:
    """The dataset's sequences in a feature store (``pose3d``), once."""
    from multimodal_har.data.store import FeatureStore
    from multimodal_har.skeleton.datasets import DATASETS, add_to_store

    if (store / "manifest.sqlite").is_file():
        return store
    tmp = store.with_name(store.name + ".building")
    n = add_to_store(FeatureStore(tmp, create=True), DATASETS.get(dataset)(data / dataset), dataset=dataset)
    os.replace(tmp, store)
    print(f"{dataset}: {n} sequences written to {store}", flush=True)
    return store


def make_config(method: str, *, dataset: str, store: Path, run_dir: Path, seed: int, epochs: int,
                device: str) -> dict:
    """The experiment config (a mapping, as read from YAML) of one run."""
    streams = (method,) if method in STREAMS else STREAMS
    pose = {"source": "pose3d", "kind": "pose", "rate_hz": RATE_HZ[dataset], "frames": 32,
            "normalize": {"center": "first", "align": True, "scale": True},
            "augment": True, "rotate_deg": 15.0, "scale": 0.1, "jitter": 0.0}
    return {
        "data": {"store": str(store), "num_workers": 0, "window": None, "val_split": "train",
                 "modalities": {m: {**pose, "stream": m} for m in streams}},
        "model": {"encoders": {m: {"name": "skeleton_gcn",
                                   "kwargs": {"layout": "kinect_v1_20", "channels": NARROW, "dropout": 0.2}}
                               for m in streams},
                  "fusion": {"name": "concat" if method in STREAMS else method, "kwargs": {}}},
        "train": {"epochs": epochs, "batch_size": 16, "eval_batch_size": 256, "lr": 3e-3, "weight_decay": 5e-4,
                  "warmup_epochs": 0.1 * epochs, "grad_clip": 0.0, "amp": False, "label_smoothing": 0.1,
                  "modality_dropout": 0.0, "device": device, "log_every": 1000},
        "seed": seed,
        "run_dir": str(run_dir),
    }


def result_path(out: Path, dataset: str, method: str, seed: int) -> Path:
    return out / dataset / f"{method}-s{seed}.json"


def run_one(dataset: str, method: str, seed: int, args: argparse.Namespace, store: Path) -> dict:
    """Train and evaluate one (dataset, method, seed); writes and returns its numbers."""
    import shutil

    import torch

    from multimodal_har.evaluate import evaluate_run
    from multimodal_har.experiment import experiment_from_dict
    from multimodal_har.train import train

    torch.set_num_threads(args.threads)
    run_dir = args.work / "runs" / dataset / f"{method}-s{seed}"
    if run_dir.exists():  # a killed run: start again
        shutil.rmtree(run_dir)
    cfg = experiment_from_dict(make_config(method, dataset=dataset, store=store, run_dir=run_dir, seed=seed,
                                           epochs=args.epochs, device=args.device))
    t0 = time.perf_counter()
    summary = train(cfg, quiet=True)
    seconds = time.perf_counter() - t0
    met = evaluate_run(run_dir, split="test", checkpoint="last", device=args.device, quiet=True)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else "CPU"
    res = {"dataset": dataset, "method": method, "seed": seed, "top1": met["top1"],
           "mean_class_accuracy": met["mean_class_accuracy"], "count": met["count"],
           "epochs": summary["epochs_done"], "train_seconds": seconds, "device": device,
           "torch": torch.__version__, "subsets": {k: v["top1"] for k, v in met["subsets"].items()}}
    path = result_path(args.out, dataset, method, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res))
    return res


def summarize(out: Path, datasets, methods, seeds) -> None:
    """Print one table per dataset from the result files under ``out``."""
    for dataset in datasets:
        rows = {}
        for m in methods:
            rs = [json.loads(result_path(out, dataset, m, s).read_text()) for s in seeds
                  if result_path(out, dataset, m, s).is_file()]
            if rs:
                rows[m] = rs
        if not rows:
            continue
        any_r = next(iter(rows.values()))[0]
        print(f"\n{dataset}, cross-subject, last epoch on test ({any_r['count']} sequences); {any_r['device']}, "
              f"torch {any_r['torch']}")
        print("| method | top-1 per seed (%) | mean +- std (%) | s per run |")
        print("| --- | --- | --- | ---: |")
        means = {}
        for m in methods:
            if m not in rows:
                print(f"| {m} | not run | | |")
                continue
            accs = [100 * r["top1"] for r in rows[m]]
            means[m] = (float(np.mean(accs)), len(accs))
            seeds_txt = ", ".join(f"{a:.1f}" for a in accs)
            if len(accs) < len(seeds):
                seeds_txt += f" (seeds {[r['seed'] for r in rows[m]]} only)"
            print(f"| {m} | {seeds_txt} | {np.mean(accs):.1f} +- {np.std(accs):.1f} "
                  f"| {np.mean([r['train_seconds'] for r in rows[m]]):.0f} |")
        singles = {m: v for m, v in means.items() if m in STREAMS and v[1] == len(seeds)}
        if singles:
            best = max(singles, key=lambda m: singles[m][0])
            print(f"best single stream: {best} ({singles[best][0]:.1f}%); fusion minus it: "
                  + ", ".join(f"{m} {v[0] - singles[best][0]:+.1f}" for m, v in means.items() if m in FUSIONS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", choices=sorted(RATE_HZ), default=["msr_action3d", "utkinect"])
    ap.add_argument("--data", type=Path, default=DATA, help="folder holding msr_action3d/ and utkinect/")
    ap.add_argument("--out", type=Path, required=True, help="result files (OUT/DATASET/METHOD-sSEED.json)")
    ap.add_argument("--work", type=Path, default=None, help="stores and run directories (default OUT/work)")
    ap.add_argument("--methods", nargs="+", default=[*FUSIONS, *STREAMS], choices=[*FUSIONS, *STREAMS])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once, one process each")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--summary", action="store_true", help="only print the tables of the result files")
    ap.add_argument("--deadline", type=float, default=None, help="seconds after which unfinished runs are stopped")
    args = ap.parse_args()
    args.out = args.out.resolve()
    args.work = (args.work or args.out / "work").resolve()
    if args.summary:
        summarize(args.out, args.datasets, args.methods, args.seeds)
        return
    stores = {d: build_store(d, args.data, args.work / "stores" / d) for d in args.datasets}
    # longest first (MSR before UTKinect, three streams before one), runs already done skipped
    jobs = [(d, m, s) for d in sorted(args.datasets) for single in (False, True) for m in args.methods
            if (m in STREAMS) == single for s in args.seeds
            if not result_path(args.out, d, m, s).is_file()]
    print(f"{len(jobs)} runs to do, {args.jobs} at once", flush=True)
    t0 = time.perf_counter()
    pool = ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn"))
    futures = {pool.submit(run_one, d, m, s, args, stores[d]): (d, m, s) for d, m, s in jobs}
    try:
        for fut in as_completed(futures, timeout=args.deadline):
            d, m, s = futures[fut]
            try:
                r = fut.result()
                print(f"  [{time.perf_counter() - t0:.0f} s] {d} {m} seed {s}: top-1 {100 * r['top1']:.1f}% "
                      f"({r['train_seconds']:.0f} s)", flush=True)
            except Exception as e:  # report and go on: the table marks it
                print(f"  {d} {m} seed {s}: FAILED {type(e).__name__}: {e}", flush=True)
        pool.shutdown()
    except TimeoutError:  # the deadline: unfinished runs are stopped; a later call continues them
        left = [futures[f] for f in futures if not f.done()]
        print(f"deadline of {args.deadline:.0f} s reached: {len(left)} runs stopped or not started: {left}")
        stop_pool(pool)
    print(f"{time.perf_counter() - t0:.0f} s wall, {args.jobs} runs at once x {args.threads} thread(s), "
          f"{os.cpu_count()} CPU cores, {platform.machine()}")
    summarize(args.out, args.datasets, args.methods, args.seeds)


if __name__ == "__main__":
    main()
