"""Skeleton action recognition from scratch on the real Kinect datasets, cross-subject.

    python benchmarks/skeleton_accuracy.py --dataset utkinect --streams joint bone motion
    python benchmarks/skeleton_accuracy.py --dataset msr_action3d --width paper --streams joint bone motion \\
        --ensemble --epochs 120 --jobs 9
    python benchmarks/skeleton_accuracy.py --dataset msr_action3d --encoder pose_lstm

MSR Action3D (subjects 1,3,5,7,9 train / 2,4,6,8,10 test, 20 actions, 557 sequences) and
UTKinect-Action3D (odd subjects train / even test, 10 actions), from ``--data`` (default
../shared/data/skeleton). Each sequence is normalised (centred on the first frame's pelvis,
view-aligned, torso-scaled), resampled to ``--frames`` frames over its whole length, and
augmented in training (rotation about the vertical axis, scale, a random 80-100% temporal
crop). The encoder (ST-GCN or the stacked-LSTM baseline) feeds a linear classifier; AdamW
with a one-cycle schedule; the last epoch's model is evaluated (no early stopping on the
test set).

Input streams: by default they are concatenated at the input of one model. With
``--ensemble`` each stream trains its own model and their softmax scores are summed
(2s-AGCN, Shi et al. CVPR 2019); every seed then trains one model per stream.

``--eval val`` never looks at the test subjects: it trains on the training subjects but the
last two and evaluates on those two (MSR and UTKinect: train 1,3,5, validate on 7,9), for
choosing a configuration without the test set.

Prints top-1 per seed, mean and spread, time per seed, and the machine; ``--json`` also
writes them to a file.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from torch import nn

from multimodal_har.encoders import build_encoder
from multimodal_har.encoders.skeleton_gcn import PAPER_CHANNELS
from multimodal_har.skeleton.datasets import read_msr_action3d, read_utkinect
from multimodal_har.skeleton.normalize import NormalizeConfig, normalize

DATA = Path(__file__).resolve().parents[2] / "shared/data/skeleton"
READERS = {"msr_action3d": read_msr_action3d, "utkinect": read_utkinect}
NARROW = ((32, 1), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1))
LAYOUT = "kinect_v1_20"
DEFAULT_LR = {"skeleton_gcn": 3e-3, "pose_lstm": 1e-3}


def resample_to(x: np.ndarray, frames: int, start: float = 0.0, stop: float = 1.0) -> np.ndarray:
    """``(T, ...)`` -> ``(frames, ...)`` by linear interpolation over ``[start, stop]`` of the sequence."""
    T = len(x)
    pos = np.linspace(start * (T - 1), stop * (T - 1), frames)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, T - 1)
    w = (pos - lo).reshape(-1, *([1] * (x.ndim - 1)))
    return (1 - w) * x[lo] + w * x[hi]


def load(dataset: str, root: Path, evaluate: str):
    """``{"train": [(x (T, M, V, 3), label)], "test": [...]}`` and the number of classes.

    ``evaluate="val"``: the two highest training subjects become the "test" part and the
    real test subjects are dropped."""
    if not root.is_dir():
        raise FileNotFoundError(f"no skeleton data folder {root}; pass --data (it holds {' and '.join(READERS)})")
    seqs = list(READERS[dataset](root / dataset))
    held_out = set()
    if evaluate == "val":
        held_out = set(sorted({s.subject for s in seqs if s.split == "train"})[-2:])
    cfg = NormalizeConfig(center="first", align=True, scale=True)
    out = {"train": [], "test": []}
    for s in seqs:
        if evaluate == "val" and s.split == "test":
            continue
        part = "test" if s.split == "test" or s.subject in held_out else "train"
        x, _ = normalize(s.keypoint, np.ones_like(s.score), LAYOUT, cfg)  # MSR's c column is not a score
        out[part].append((x.astype(np.float32), s.label_index))
    return out, len({s.label_index for s in seqs})


def augment(x: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    length = rng.uniform(0.8, 1.0)
    start = rng.uniform(0.0, 1.0 - length)
    x = resample_to(x, frames, start, start + length)
    a = rng.uniform(-np.pi / 12, np.pi / 12)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]], np.float32)
    return ((x @ rot.T) * rng.uniform(0.9, 1.1)).astype(np.float32)


def make_encoder(args, streams: tuple[str, ...]) -> nn.Module:
    if args.encoder == "skeleton_gcn":
        channels = PAPER_CHANNELS if args.width == "paper" else NARROW
        return build_encoder("skeleton_gcn", layout=LAYOUT, streams=streams, channels=channels,
                             dropout=args.dropout)
    return build_encoder("pose_lstm", layout=LAYOUT, streams=streams, hidden=args.hidden, layers=args.layers,
                         dropout=args.dropout, pool=args.pool)


def train_and_score(args, data, classes: int, seed: int, streams: tuple[str, ...]) -> tuple[np.ndarray, float]:
    """Train one model from scratch; ``(test softmax scores (N, classes), seconds)``."""
    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, *map(len, streams)])
    device = torch.device(args.device)
    enc = make_encoder(args, streams)
    model = nn.ModuleDict({"enc": enc, "head": nn.Linear(enc.out_dim, classes)}).to(device)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.encoder]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    train, test = data["train"], data["test"]
    steps = args.epochs * ((len(train) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    for _ in range(args.epochs):
        model.train()
        order = rng.permutation(len(train))
        for b in range(0, len(order), args.batch):
            idx = order[b:b + args.batch]
            x = torch.from_numpy(np.stack([augment(train[i][0], args.frames, rng) for i in idx])).to(device)
            y = torch.tensor([train[i][1] for i in idx], device=device)
            loss = nn.functional.cross_entropy(model["head"](model["enc"](x).pooled), y, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            if args.clip:
                nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.stack([resample_to(s, args.frames) for s, _ in test]).astype(np.float32))
        scores = model["head"](model["enc"](x.to(device)).pooled).softmax(1).cpu().numpy()
    return scores, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(READERS), default="utkinect")
    ap.add_argument("--data", type=Path, default=DATA, help="folder holding msr_action3d/ and utkinect/")
    ap.add_argument("--eval", choices=["test", "val"], default="test",
                    help="val: hold out the last two training subjects instead of using the test subjects")
    ap.add_argument("--encoder", choices=["skeleton_gcn", "pose_lstm"], default="skeleton_gcn")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=None, help="default: 3e-3 for ST-GCN, 1e-3 for the LSTM")
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--dropout", type=float, default=None, help="default: 0.2 for ST-GCN, 0.5 for the LSTM")
    ap.add_argument("--clip", type=float, default=0.0, help="gradient norm clipping (0: none)")
    ap.add_argument("--width", choices=["narrow", "paper"], default="narrow",
                    help="ST-GCN: narrow = 6 blocks, 32-64-128 channels; paper = the 10 blocks of 64-128-256")
    ap.add_argument("--hidden", type=int, default=512, help="LSTM units per layer (Das et al. 2019: 512)")
    ap.add_argument("--layers", type=int, default=3, help="LSTM layers (Das et al. 2019: 3)")
    ap.add_argument("--pool", choices=["last", "mean"], default="last",
                    help="LSTM: the last frame's hidden state (the paper) or the mean over frames")
    ap.add_argument("--streams", nargs="+", default=["joint"], choices=["joint", "bone", "motion"])
    ap.add_argument("--ensemble", action="store_true",
                    help="one model per stream, softmax scores summed (2s-AGCN); default: streams concatenated")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--jobs", type=int, default=1, help="models trained at once, in separate processes")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads per job")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.dropout is None:
        args.dropout = 0.5 if args.encoder == "pose_lstm" else 0.2
    data, classes = load(args.dataset, args.data, args.eval)
    labels = np.array([y for _, y in data["test"]])
    models = [(s,) for s in args.streams] if args.ensemble else [tuple(args.streams)]
    arch = f"ST-GCN {args.width}" if args.encoder == "skeleton_gcn" else f"LSTM {args.layers}x{args.hidden}"
    print(f"{args.dataset} ({args.eval}): {len(data['train'])} train / {len(data['test'])} evaluated sequences, "
          f"{classes} classes; {arch}, streams {'+'.join(args.streams)}{' (ensemble)' if args.ensemble else ''}, "
          f"{args.epochs} epochs, {args.frames} frames, {args.device}", flush=True)

    jobs = [(seed, m) for seed in args.seeds for m in models]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(train_and_score, args, data, classes, seed, m) for seed, m in jobs]
            done = [f.result() for f in futures]
    else:
        done = [train_and_score(args, data, classes, seed, m) for seed, m in jobs]
    results = dict(zip(jobs, done))

    per_seed = []
    for seed in args.seeds:
        scores = [results[seed, m][0] for m in models]
        acc = float((sum(scores).argmax(1) == labels).mean())
        parts = ", ".join(f"{'+'.join(m)} {100 * (s.argmax(1) == labels).mean():.1f}" for m, s in zip(models, scores))
        secs = sum(results[seed, m][1] for m in models)
        per_seed.append({"seed": seed, "top1": acc, "seconds": secs,
                         "per_model": {"+".join(m): float((s.argmax(1) == labels).mean())
                                       for m, s in zip(models, scores)}})
        print(f"  seed {seed}: top-1 {100 * acc:.1f}%"
              f"{f' (models: {parts})' if len(models) > 1 else ''} ({secs:.0f} s of training)")
    accs = [r["top1"] for r in per_seed]
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "CPU"
    print(f"{args.dataset} ({args.eval}): top-1 {100 * np.mean(accs):.1f} +- {100 * np.std(accs):.1f}% over "
          f"{len(accs)} seeds (min {100 * min(accs):.1f}, max {100 * max(accs):.1f}); {device}, "
          f"{platform.machine()}, torch {torch.__version__}, {args.threads} threads x {args.jobs} jobs")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"config": config, "device": device, "torch": torch.__version__,
                                         "mean": float(np.mean(accs)), "std": float(np.std(accs)),
                                         "seeds": per_seed}, indent=1))


if __name__ == "__main__":
    main()
