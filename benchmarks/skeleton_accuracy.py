"""Skeleton action recognition from scratch on the real Kinect datasets, cross-subject.

    python benchmarks/skeleton_accuracy.py --dataset utkinect --seeds 0 1 2
    python benchmarks/skeleton_accuracy.py --dataset msr_action3d --seeds 0 1 2

MSR Action3D (subjects 1,3,5,7,9 train / 2,4,6,8,10 test, 20 actions, 557 sequences) and
UTKinect-Action3D (odd subjects train / even test, 10 actions), from ../shared/data. Each
sequence is normalised (centred on the first frame's pelvis, view-aligned, torso-scaled),
resampled to ``--frames`` frames over its whole length, and augmented in training (rotation
about the vertical axis, scale, a random 80-100% temporal crop). The encoder (ST-GCN by
default) feeds a linear classifier; AdamW with a cosine schedule, the last epoch's model is
evaluated (no early stopping on the test set). Prints top-1 per seed, mean and spread,
time, and the machine.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from _common import SHARED_VIDEOS
from torch import nn

from multimodal_har.encoders import build_encoder
from multimodal_har.encoders.skeleton_gcn import PAPER_CHANNELS
from multimodal_har.skeleton.datasets import read_msr_action3d, read_utkinect
from multimodal_har.skeleton.normalize import NormalizeConfig, normalize

DATA = SHARED_VIDEOS.parent / "skeleton"
READERS = {"msr_action3d": read_msr_action3d, "utkinect": read_utkinect}
NARROW = ((32, 1), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1))


def resample_to(x: np.ndarray, frames: int, start: float = 0.0, stop: float = 1.0) -> np.ndarray:
    """``(T, ...)`` -> ``(frames, ...)`` by linear interpolation over ``[start, stop]`` of the sequence."""
    T = len(x)
    pos = np.linspace(start * (T - 1), stop * (T - 1), frames)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, T - 1)
    w = (pos - lo).reshape(-1, *([1] * (x.ndim - 1)))
    return (1 - w) * x[lo] + w * x[hi]


def load(dataset: str):
    seqs = list(READERS[dataset](DATA / dataset))
    cfg = NormalizeConfig(center="first", align=True, scale=True)
    out = {"train": [], "test": []}
    for s in seqs:
        x, _ = normalize(s.keypoint, np.ones_like(s.score), "kinect_v1_20", cfg)  # MSR's c column is not a score
        out[s.split].append((x.astype(np.float32), s.label_index))
    return out, len({s.label_index for s in seqs})


def augment(x: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    length = rng.uniform(0.8, 1.0)
    start = rng.uniform(0.0, 1.0 - length)
    x = resample_to(x, frames, start, start + length)
    a = rng.uniform(-np.pi / 12, np.pi / 12)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]], np.float32)
    return ((x @ rot.T) * rng.uniform(0.9, 1.1)).astype(np.float32)


def run(args, data, classes: int, seed: int) -> float:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    channels = PAPER_CHANNELS if args.width == "paper" else NARROW
    enc = build_encoder("skeleton_gcn", layout="kinect_v1_20", streams=tuple(args.streams), channels=channels,
                        dropout=args.dropout)
    model = nn.ModuleDict({"enc": enc, "head": nn.Linear(enc.out_dim, classes)})
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    train, test = data["train"], data["test"]
    steps = args.epochs * ((len(train) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    for _ in range(args.epochs):
        model.train()
        order = rng.permutation(len(train))
        for b in range(0, len(order), args.batch):
            idx = order[b:b + args.batch]
            x = torch.from_numpy(np.stack([augment(train[i][0], args.frames, rng) for i in idx]))
            y = torch.tensor([train[i][1] for i in idx])
            loss = nn.functional.cross_entropy(model["head"](model["enc"](x).pooled), y, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.stack([resample_to(s, args.frames) for s, _ in test]).astype(np.float32))
        pred = model["head"](model["enc"](x).pooled).argmax(1).numpy()
    return float((pred == np.array([y for _, y in test])).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(READERS), default="utkinect")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--width", choices=["narrow", "paper"], default="narrow",
                    help="narrow: 6 blocks, 32-64-128 channels; paper: the 10 blocks of 64-128-256")
    ap.add_argument("--streams", nargs="+", default=["joint"], choices=["joint", "bone", "motion"])
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    data, classes = load(args.dataset)
    print(f"{args.dataset}: {len(data['train'])} train / {len(data['test'])} test sequences, {classes} classes; "
          f"ST-GCN {args.width}, streams {'+'.join(args.streams)}, {args.epochs} epochs, {args.frames} frames")
    accs = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        accs.append(run(args, data, classes, seed))
        print(f"  seed {seed}: top-1 {100 * accs[-1]:.1f}% ({time.perf_counter() - t0:.0f} s)")
    print(f"{args.dataset}: top-1 {100 * np.mean(accs):.1f} +- {100 * np.std(accs):.1f}% over {len(accs)} seeds "
          f"(min {100 * min(accs):.1f}, max {100 * max(accs):.1f}); {platform.machine()}, "
          f"{torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
