"""Skeleton action recognition from scratch on real Kinect datasets, cross-subject.

    python benchmarks/skeleton_accuracy.py --dataset utkinect --streams joint bone motion
    python benchmarks/skeleton_accuracy.py --dataset msr_action3d --encoder ctr_gcn --width paper \\
        --streams joint bone motion bone_motion --ensemble --epochs 120 --jobs 12
    python benchmarks/skeleton_accuracy.py --dataset utd_mhad --encoder ctr_gcn --ensemble \\
        --streams joint bone motion bone_motion --jobs 16
    python benchmarks/skeleton_accuracy.py --sweep SWEEP_FILE --out DIR --jobs 16

Datasets and protocols:

* MSR Action3D (subjects 1,3,5,7,9 train / 2,4,6,8,10 test, 20 actions, 557 sequences) and
  UTKinect-Action3D (odd subjects train / even test, 10 actions), from ``--data`` (default
  ../shared/data/skeleton). ``--eval val`` never looks at the test subjects: it trains on the
  training subjects but the last two and evaluates on those two (train 1,3,5, validate on 7,9).
* UTD-MHAD's skeletons (``--utd-data``, default ../shared/data/utd_mhad_train: subjects 1,3,5,7
  of 8, 27 actions): leave-one-subject-out over ``--folds``; a seed's accuracy is the mean over
  the folds.

Each sequence is normalised (centred on the first frame's pelvis, view-aligned, torso-scaled)
and resampled to ``--frames`` frames over its whole length. Training augments (package code,
:func:`multimodal_har.data.augment.augment_pose` and ``resample_positions``): a random
``--min-crop``-100 % temporal crop resampled to ``--frames``, rotation about the vertical axis
(``--rotate``) and about x and z (``--tilt``), ``--shear``, scale, ``--mask-joints``. The encoder
(ST-GCN, CTR-GCN or the stacked-LSTM baseline) feeds a linear classifier; AdamW (or the
paper's Nesterov SGD, ``--optim sgd``) with a one-cycle schedule, label smoothing 0.1; the last
epoch's model is evaluated (no early stopping on the evaluated subjects).

Input streams: by default they are concatenated at the input of one model. With
``--ensemble`` each stream trains its own model and their softmax scores are summed with
``--ensemble-weights`` (default: equal; for the four streams joint, bone, motion, bone_motion
CTR-GCN's and InfoGCN's ensemble weights 0.6, 0.6, 0.4, 0.4); every seed then trains one model
per stream.

``--amp`` trains under bf16 autocast, ``--compile`` compiles the model (``torch.compile``).
``--group seed`` (or ``fold``) trains a seed's (or a fold's) stream models in one process, a
team per seed on the same batches; with ``--graphs`` (CUDA) each model's forward and backward is
one CUDA graph replayed on its own CUDA stream, so the team's small, launch-bound GCNs run at once
(``skeleton_throughput.py`` measures it and checks the graphed training against eager).
``--sweep FILE`` runs many experiments through one pool of ``--jobs`` processes (one a line:
a name, then arguments of this script, which override the command line's); each writes
``--out``/NAME.json. Each trained model's scores are kept (``--models``, by default
``--out``/models) and reused by a later call, so a ``--deadline``-stopped sweep continues.

Prints top-1 per seed, mean and spread, training throughput, the machine; ``--json`` also
writes them to a file.
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import shlex
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import nullcontext
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from torch import nn

from multimodal_har import safe_pickle
from multimodal_har.data import augment as A
from multimodal_har.encoders import build_encoder
from multimodal_har.encoders.skeleton_gcn import PAPER_CHANNELS
from multimodal_har.skeleton.datasets import SkeletonSequence, read_msr_action3d, read_utkinect
from multimodal_har.skeleton.normalize import NormalizeConfig, normalize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import stop_pool  # noqa: E402

T0 = time.perf_counter()

SHARED = Path(__file__).resolve().parents[2] / "shared/data"
DATA = SHARED / "skeleton"
UTD_DATA = SHARED / "utd_mhad_train"
READERS = {"msr_action3d": read_msr_action3d, "utkinect": read_utkinect}
DATASETS = (*READERS, "utd_mhad")
NARROW = ((32, 1), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1))
LAYOUT = "kinect_v1_20"
DEFAULT_LR = {"skeleton_gcn": 3e-3, "ctr_gcn": 3e-3, "pose_lstm": 1e-3}
FOUR_STREAMS = ("joint", "bone", "motion", "bone_motion")
PAPER_ENSEMBLE = (0.6, 0.6, 0.4, 0.4)  # CTR-GCN / InfoGCN: joint, bone, joint motion, bone motion


def read_sequences(dataset: str, args) -> list:
    if args.sequences is not None:  # a machine without the raw files (or scipy): see --save-sequences
        # numpy, builtins and SkeletonSequence only: a pickle handed over cannot run code here
        return safe_pickle.load_file(args.sequences, allow=(SkeletonSequence,))[dataset]
    if dataset == "utd_mhad":
        from multimodal_har.skeleton.utd_mhad import read_utd_mhad

        if not args.utd_data.is_dir():
            raise FileNotFoundError(f"no UTD-MHAD folder {args.utd_data}; pass --utd-data")
        return [s.skeleton for s in read_utd_mhad(args.utd_data, modalities=("skeleton",))]
    if not args.data.is_dir():
        raise FileNotFoundError(f"no skeleton data folder {args.data}; pass --data (it holds {' and '.join(READERS)})")
    return list(READERS[dataset](args.data / dataset))


def load(args) -> tuple[dict, int]:
    """``{fold: {"train": [(x (T, M, V, 3), label)], "test": [...]}}`` and the number of classes.

    MSR / UTKinect have one fold, ``"test"`` (or ``"val"``: the two highest training subjects
    are evaluated and the test subjects dropped); UTD-MHAD one fold per held-out subject."""
    seqs = read_sequences(args.dataset, args)
    cfg = NormalizeConfig(center="first", align=True, scale=True)
    xs = [normalize(s.keypoint, np.ones_like(s.score), LAYOUT, cfg)[0].astype(np.float32) for s in seqs]
    if args.dataset == "utd_mhad":
        subjects = sorted({s.subject for s in seqs})
        missing = set(args.folds) - set(subjects)
        if missing:
            raise ValueError(f"--folds {sorted(missing)}: no such subject in {args.utd_data} (it has {subjects})")
        folds = {f"s{k}": (lambda s, k=k: s.subject == k, lambda s, k=k: s.subject != k) for k in args.folds}
    elif args.eval == "val":
        held = set(sorted({s.subject for s in seqs if s.split == "train"})[-2:])
        folds = {"val": (lambda s: s.split == "train" and s.subject in held,
                         lambda s: s.split == "train" and s.subject not in held)}
    else:
        folds = {"test": (lambda s: s.split == "test", lambda s: s.split == "train")}
    out = {name: {"test": [(x, s.label_index) for s, x in zip(seqs, xs) if is_test(s)],
                  "train": [(x, s.label_index) for s, x in zip(seqs, xs) if is_train(s)]}
           for name, (is_test, is_train) in folds.items()}
    return out, len({s.label_index for s in seqs})


def augment(x: np.ndarray, args, rng: np.random.Generator) -> np.ndarray:
    x = A.interpolate_frames(x, A.resample_positions(len(x), args.frames, rng, min_crop=args.min_crop))
    present = np.ones(x.shape[:2], bool)
    return A.augment_pose(x, present, rng, rotate_deg=args.rotate, scale=0.1, jitter=0.0, tilt_deg=args.tilt,
                          shear=args.shear, mask_joints=args.mask_joints)


def make_encoder(args, streams: tuple[str, ...]) -> nn.Module:
    channels = PAPER_CHANNELS if args.width == "paper" else NARROW
    if args.encoder == "skeleton_gcn":
        return build_encoder("skeleton_gcn", layout=LAYOUT, streams=streams, channels=channels,
                             dropout=args.dropout)
    if args.encoder == "ctr_gcn":
        return build_encoder("ctr_gcn", layout=LAYOUT, streams=streams, channels=channels)
    return build_encoder("pose_lstm", layout=LAYOUT, streams=streams, hidden=args.hidden, layers=args.layers,
                         dropout=args.dropout, pool=args.pool)


class Classifier(nn.Module):
    def __init__(self, enc: nn.Module, classes: int) -> None:
        super().__init__()
        self.enc, self.head = enc, nn.Linear(enc.out_dim, classes)

    def forward(self, x):  # (B, T, M, V, 3) -> (B, classes)
        return self.head(self.enc(x).pooled)


def make_optimizer(args, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    lr = args.lr if args.lr is not None else (0.1 if args.optim == "sgd" else DEFAULT_LR[args.encoder])
    fused = device.type == "cuda" and args.graphs  # a few kernels a step for CUDA-graph runs
    if args.optim == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True,
                               weight_decay=args.weight_decay, fused=fused or None)
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=args.weight_decay, fused=fused or None)


class Member:
    """One model of a team: its optimiser, schedule and (with ``--graphs``) the CUDA graph of its
    forward and backward, replayed on its own CUDA stream so the team's models run at once."""

    def __init__(self, args, classes: int, seed: int, streams: tuple[str, ...], batches: int,
                 device: torch.device) -> None:
        torch.manual_seed(seed)
        self.streams = streams
        self.model = Classifier(make_encoder(args, streams), classes).to(device)
        self.step_model = torch.compile(self.model) if args.compile else self.model
        self.opt = make_optimizer(args, self.model, device)
        lr = self.opt.param_groups[0]["lr"]
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=lr, total_steps=args.epochs * batches,
                                                         pct_start=0.1)
        self.autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if args.amp else nullcontext
        self.clip = args.clip
        self.cuda_stream = torch.cuda.Stream(device) if args.graphs else None
        self.graph = None

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return nn.functional.cross_entropy(self.step_model(x).float(), y, label_smoothing=0.1)

    def _update(self) -> None:
        if self.clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.opt.step()
        self.sched.step()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One training step on ``x (B, T, M, V, 3)``, ``y (B,)``; with a graph, ``x`` / ``y`` must
        be the static tensors it was captured on (already holding the batch)."""
        if self.graph is not None:
            with torch.cuda.stream(self.cuda_stream):
                self.graph.replay()  # fresh gradients in the graph's own .grad tensors
                self._update()
            return
        ctx = torch.cuda.stream(self.cuda_stream) if self.cuda_stream is not None else nullcontext()
        with ctx:
            self.opt.zero_grad(set_to_none=True)
            self.loss(x, y).backward()
            self._update()

    def capture(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Capture forward and backward on the static ``x`` / ``y`` (after eager warm-up steps);
        the optimiser step stays eager (a fused kernel), so the schedule's floats apply."""
        self.opt.zero_grad(set_to_none=True)  # backward then allocates .grad in the graph's pool
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=self.cuda_stream):
            self.loss(x, y).backward()


GRAPH_WARMUP = 3  # eager steps (real training steps) before a CUDA graph is captured


def train_group(args, data, classes: int, teams: list[tuple[int, list[tuple[str, ...]]]]) -> dict:
    """Train models from scratch: ``teams`` is ``[(seed, [streams, ...])]``; a team's models see the
    same batches (one augmentation per sample, as one data loader feeding several stream models).
    Returns ``{(seed, streams): {"scores" (N, classes), "seconds", "samples_per_s"}}``; samples/s
    counts every model's training samples after the first epoch (compilation, capture left out).

    With ``--graphs`` (CUDA) each model's forward and backward is one CUDA graph replayed on its
    own CUDA stream, so every model of the group runs at once instead of one kernel at a time."""
    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    graphs = args.graphs and device.type == "cuda"
    train, test = data["train"], data["test"]
    batches = len(train) // args.batch  # the last partial batch is dropped: one shape for compile / BN / graphs
    rngs = [np.random.default_rng([seed, *map(len, models[0])] if len(models) == 1 else [seed])
            for seed, models in teams]
    members = [[Member(args, classes, seed, m, batches, device) for m in models] for seed, models in teams]
    if graphs:  # the batch each team's graphs read, and pinned staging, two per team (the CPU fills one
        # while the other is copied)
        shape = (args.batch, args.frames, *train[0][0].shape[1:])
        static = [(torch.zeros(shape, device=device), torch.zeros(args.batch, dtype=torch.long, device=device))
                  for _ in teams]
        pinned = [[(torch.empty(shape).pin_memory(), torch.empty(args.batch, dtype=torch.long).pin_memory())
                   for _ in range(2)] for _ in teams]
        copied = [[None, None] for _ in teams]
        copy_streams = [torch.cuda.Stream(device) for _ in teams]
        main = torch.cuda.current_stream(device)
        for s in copy_streams:
            s.wait_stream(main)
        for team in members:
            for m in team:
                m.cuda_stream.wait_stream(main)
    seen, t_first, k = 0, None, 0
    for epoch in range(args.epochs):
        if epoch == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_first = time.perf_counter()
        for team in members:
            for m in team:
                m.model.train()
        orders = [rng.permutation(len(train)) for rng in rngs]
        for b in range(batches):
            for t, (rng, order, team) in enumerate(zip(rngs, orders, members)):
                idx = order[b * args.batch:(b + 1) * args.batch]
                x = torch.from_numpy(np.stack([augment(train[i][0], args, rng) for i in idx]))
                y = torch.tensor([train[i][1] for i in idx])
                if not graphs:
                    xs, ys = x.to(device), y.to(device)
                    for m in team:
                        m.step(xs, ys)
                    continue
                xs, ys = static[t]
                px, py = pinned[t][k % 2]
                if copied[t][k % 2] is not None:
                    copied[t][k % 2].synchronize()  # its last copy to the GPU is done: free to refill
                px.copy_(x)
                py.copy_(y)
                cs = copy_streams[t]
                for m in team:  # the static batch is overwritten once the last step has read it
                    cs.wait_stream(m.cuda_stream)
                with torch.cuda.stream(cs):
                    xs.copy_(px, non_blocking=True)
                    ys.copy_(py, non_blocking=True)
                    copied[t][k % 2] = cs.record_event()
                for m in team:
                    m.cuda_stream.wait_event(copied[t][k % 2])
                    if m.graph is None and k >= GRAPH_WARMUP:
                        torch.cuda.synchronize()
                        m.capture(xs, ys)
                    m.step(xs, ys)
            k += 1
            seen += args.batch * sum(map(len, members)) * (epoch >= 1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    rate = seen / (time.perf_counter() - t_first) if t_first is not None and seen else float("nan")
    x = torch.from_numpy(np.stack([A.interpolate_frames(s, A.resample_positions(len(s), args.frames, None))
                                   for s, _ in test])).to(device)
    out = {}
    for (seed, _), team in zip(teams, members):
        for m in team:
            m.model.eval()
            with torch.no_grad(), m.autocast():
                scores = m.model(x).float().softmax(1).cpu().numpy()
            n = sum(map(len, members))  # the group's wall time and rate, shared out over its models
            out[seed, m.streams] = {"scores": scores, "seconds": (time.perf_counter() - t0) / n,
                                    "samples_per_s": rate / n}
    return out


def train_and_score(args, data, classes: int, seed: int, streams: tuple[str, ...]) -> dict:
    """One model alone: :func:`train_group` of one team of one."""
    return train_group(args, data, classes, [(seed, [streams])])[seed, streams]


def ensemble_weights(args, models: list[tuple[str, ...]]) -> list[float]:
    if not args.ensemble:
        return [1.0]
    if args.ensemble_weights:
        if len(args.ensemble_weights) != len(models):
            raise SystemExit(f"--ensemble-weights: {len(args.ensemble_weights)} weights for {len(models)} streams")
        return list(args.ensemble_weights)
    if tuple(m[0] for m in models) == FOUR_STREAMS:
        return list(PAPER_ENSEMBLE)
    return [1.0] * len(models)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=DATASETS, default="utkinect")
    ap.add_argument("--data", type=Path, default=DATA, help="folder holding msr_action3d/ and utkinect/")
    ap.add_argument("--utd-data", type=Path, default=UTD_DATA, help="UTD-MHAD folder (Skeleton/ ...)")
    ap.add_argument("--folds", type=int, nargs="+", default=[1, 3, 5, 7], help="UTD-MHAD: held-out subjects")
    ap.add_argument("--eval", choices=["test", "val"], default="test",
                    help="val: hold out the last two training subjects instead of using the test subjects")
    ap.add_argument("--encoder", choices=sorted(DEFAULT_LR), default="skeleton_gcn")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--optim", choices=["adamw", "sgd"], default="adamw",
                    help="sgd: Nesterov momentum 0.9 (CTR-GCN's), default lr 0.1")
    ap.add_argument("--lr", type=float, default=None, help="default: 3e-3 for the GCNs, 1e-3 for the LSTM")
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--dropout", type=float, default=None, help="default: 0.2 for ST-GCN, 0.5 for the LSTM")
    ap.add_argument("--clip", type=float, default=0.0, help="gradient norm clipping (0: none)")
    ap.add_argument("--width", choices=["narrow", "paper"], default="narrow",
                    help="GCNs: narrow = 6 blocks, 32-64-128 channels; paper = the 10 blocks of 64-128-256")
    ap.add_argument("--hidden", type=int, default=512, help="LSTM units per layer (Das et al. 2019: 512)")
    ap.add_argument("--layers", type=int, default=3, help="LSTM layers (Das et al. 2019: 3)")
    ap.add_argument("--pool", choices=["last", "mean"], default="last",
                    help="LSTM: the last frame's hidden state (the paper) or the mean over frames")
    ap.add_argument("--rotate", type=float, default=15.0, help="rotation about the vertical axis, +- degrees")
    ap.add_argument("--tilt", type=float, default=0.0, help="rotation about x and z, +- degrees")
    ap.add_argument("--shear", type=float, default=0.0, help="shear range of the off-diagonal terms")
    ap.add_argument("--mask-joints", type=float, default=0.0, help="probability of masking a joint")
    ap.add_argument("--min-crop", type=float, default=0.8, help="shortest random temporal crop, fraction")
    ap.add_argument("--streams", nargs="+", default=["joint"], choices=list(FOUR_STREAMS))
    ap.add_argument("--ensemble", action="store_true",
                    help="one model per stream, weighted softmax scores summed; default: streams concatenated")
    ap.add_argument("--ensemble-weights", type=float, nargs="+", default=None,
                    help="one per stream (default: equal; 0.6 0.6 0.4 0.4 for the four streams)")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--graphs", action="store_true",
                    help="CUDA: each model's forward + backward as one CUDA graph, replayed on its own CUDA "
                         "stream, so the models of a --group run at once (the optimiser: fused, eager)")
    ap.add_argument("--group", choices=["model", "seed", "fold"], default="model",
                    help="what one process trains: one model; a seed's stream models (on the same batches); "
                         "or all seeds' stream models of a fold (each seed its own batches)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--jobs", type=int, default=1, help="models trained at once, in separate processes")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads per job")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--sweep", type=Path, help="a file of experiments, one a line: NAME ARGS...")
    ap.add_argument("--out", type=Path, help="--sweep: the folder for NAME.json")
    ap.add_argument("--save-sequences", type=Path,
                    help="write every dataset's sequences to this pickle and exit (for --sequences)")
    ap.add_argument("--sequences", type=Path, help="read the sequences from a --save-sequences pickle")
    ap.add_argument("--models", type=Path,
                    help="keep each trained model's scores here and reuse them (default with --sweep: OUT/models)")
    ap.add_argument("--deadline", type=float, help="seconds: stop the pool then, keeping what finished")
    return ap


def finish(args, name: str, data: dict, models: list, results: dict, machine: str) -> dict:
    """Print and return one experiment's summary (per seed: mean over folds)."""
    weights = ensemble_weights(args, models)
    per_seed = []
    for seed in args.seeds:
        folds, rates, secs = {}, [], 0.0
        per_model = {"+".join(m): [] for m in models}
        for fold, part in data.items():
            labels = np.array([y for _, y in part["test"]])
            runs = [results[fold, seed, m] for m in models]
            scores = sum(w * r["scores"] for w, r in zip(weights, runs))
            folds[fold] = float((scores.argmax(1) == labels).mean())
            for m, r in zip(models, runs):
                per_model["+".join(m)].append(float((r["scores"].argmax(1) == labels).mean()))
                rates.append(r["samples_per_s"])
                secs += r["seconds"]
        per_seed.append({"seed": seed, "top1": float(np.mean(list(folds.values()))), "folds": folds,
                         "seconds": secs, "samples_per_s": float(np.nanmean(rates)),
                         "per_model": {k: float(np.mean(v)) for k, v in per_model.items()}})
    accs = [r["top1"] for r in per_seed]
    for r in per_seed:
        parts = ", ".join(f"{k} {100 * v:.1f}" for k, v in r["per_model"].items())
        fold_txt = ", ".join(f"{k} {100 * v:.1f}" for k, v in r["folds"].items()) if len(data) > 1 else ""
        print(f"  [{name}] seed {r['seed']}: top-1 {100 * r['top1']:.1f}%"
              f"{f' (folds: {fold_txt})' if fold_txt else ''}{f' (models: {parts})' if len(models) > 1 else ''}"
              f" ({r['seconds']:.0f} s of training, {r['samples_per_s']:.0f} samples/s per model)")
    print(f"[{name}] {args.dataset} ({'LOSO ' + ','.join(data) if args.dataset == 'utd_mhad' else args.eval}): "
          f"top-1 {100 * np.mean(accs):.1f} +- {100 * np.std(accs):.1f}% over {len(accs)} seeds "
          f"(min {100 * min(accs):.1f}, max {100 * max(accs):.1f}); {machine}", flush=True)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config["ensemble_weights"] = weights
    return {"config": config, "device": machine, "torch": torch.__version__, "mean": float(np.mean(accs)),
            "std": float(np.std(accs)), "seeds": per_seed}


def describe(args, data: dict, classes: int, name: str) -> None:
    f = next(iter(data.values()))
    arch = {"skeleton_gcn": "ST-GCN", "ctr_gcn": "CTR-GCN"}.get(args.encoder)
    arch = f"{arch} {args.width}" if arch else f"LSTM {args.layers}x{args.hidden}"
    print(f"[{name}] {args.dataset}: {len(data)} fold(s), {len(f['train'])} train / {len(f['test'])} evaluated "
          f"sequences (first fold), {classes} classes; {arch}, streams {'+'.join(args.streams)}"
          f"{' (ensemble)' if args.ensemble else ''}, {args.epochs} epochs, {args.frames} frames, {args.device}"
          f"{', amp' if args.amp else ''}{', compile' if args.compile else ''}", flush=True)


def main() -> None:
    ap = parser()
    base = ap.parse_args()
    if base.save_sequences:
        seqs = {d: read_sequences(d, base) for d in DATASETS}
        base.save_sequences.parent.mkdir(parents=True, exist_ok=True)
        with open(base.save_sequences, "wb") as f:
            pickle.dump(seqs, f)
        print(", ".join(f"{d}: {len(v)}" for d, v in seqs.items()), "sequences written to", base.save_sequences)
        return
    if base.sweep:
        if base.out is None:
            ap.error("--sweep needs --out")
        cli = sys.argv[1:]
        lines = [ln.split("#")[0].strip() for ln in base.sweep.read_text().splitlines()]
        plan = [(ln.split()[0], ap.parse_args(cli + shlex.split(ln)[1:])) for ln in lines if ln]
    else:
        plan = [("run", base)]
    prepared = []
    for name, args in plan:
        if args.dropout is None:
            args.dropout = 0.5 if args.encoder == "pose_lstm" else 0.2
        data, classes = load(args)
        models = [(s,) for s in args.streams] if args.ensemble else [tuple(args.streams)]
        ensemble_weights(args, models)  # fail early on a bad count
        describe(args, data, classes, name)
        prepared.append((name, args, data, classes, models))
    machine = (torch.cuda.get_device_name() if base.device.startswith("cuda") else platform.processor() or "CPU")
    machine += f", {platform.machine()}, torch {torch.__version__}, {base.threads} threads x {base.jobs} jobs"
    jobs = [(e, fold, seed, m) for e, (_, args, data, _, models) in enumerate(prepared)
            for fold in data for seed in args.seeds for m in models]
    # experiments in the order given (under a --deadline the first ones finish); within one, longest runs first
    jobs.sort(key=lambda j: (j[0], -len(prepared[j[0]][2][j[1]]["train"])))

    def groups(pending: list) -> list[list]:
        """The pending models, grouped into what one process trains (``--group``), in job order."""
        key = {"model": lambda j: j, "seed": lambda j: j[:3], "fold": lambda j: j[:2]}[base.group]
        out: dict = {}
        for j in pending:
            out.setdefault(key(j), []).append(j)
        return list(out.values())

    def submit(run, group: list):
        e, fold = group[0][:2]
        _, args, data, classes, _ = prepared[e]
        teams: dict = {}
        for _, _, seed, m in group:
            teams.setdefault(seed, []).append(m)
        return run(train_group, args, data[fold], classes, list(teams.items()))

    cache = base.models or (base.out / "models" if base.sweep else None)

    def cached(j) -> Path:
        e, fold, seed, m = j
        return cache / prepared[e][0] / f"{fold}_seed{seed}_{'+'.join(m)}.npz"

    results = {}
    for j in jobs:  # models a killed or deadline-stopped earlier call finished
        if cache is not None and cached(j).is_file():
            with np.load(cached(j)) as z:
                results[j] = {"scores": z["scores"], "seconds": float(z["seconds"]),
                              "samples_per_s": float(z["samples_per_s"])}
    if results:
        print(f"{len(results)} of {len(jobs)} models read from {cache}", flush=True)

    def record(j, r: dict) -> None:
        results[j] = r
        if cache is not None:
            path = cached(j)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, scores=r["scores"], seconds=r["seconds"], samples_per_s=r["samples_per_s"])
            tmp.replace(path)

    todo = set(range(len(prepared)))

    def flush() -> None:  # each experiment is summarised and written as soon as its models are done
        for e in sorted(todo):
            mine = [j for j in jobs if j[0] == e]
            if all(j in results for j in mine):
                name, args, data, classes, models = prepared[e]
                res = {j[1:]: results[j] for j in mine}
                write(args, base, name, finish(args, name, data, models, res, machine))
                todo.discard(e)

    flush()
    pending = groups([j for j in jobs if j not in results])

    def record_group(group: list, out: dict) -> None:
        for j in group:
            record(j, out[j[2], j[3]])

    if base.jobs <= 1:
        for g in pending:
            record_group(g, submit(lambda fn, *a: fn(*a), g))
            flush()
        return
    pool = ProcessPoolExecutor(base.jobs, mp_context=get_context("spawn"))
    futures = {submit(pool.submit, g): g for g in pending}
    while futures:
        left = None if base.deadline is None else max(0.0, base.deadline - (time.perf_counter() - T0))
        finished, _ = wait(list(futures), timeout=left, return_when=FIRST_COMPLETED)
        for fut in finished:
            record_group(futures.pop(fut), fut.result())
        flush()
        if futures and not finished:  # the deadline passed
            print(f"deadline of {base.deadline:.0f} s: stopped with {sum(map(len, futures.values()))} models "
                  f"unfinished "
                  f"({len(results)} of {len(jobs)} done{f', kept in {cache}' if cache else ''}); experiments "
                  f"unfinished: {', '.join(prepared[e][0] for e in sorted(todo))}", flush=True)
            stop_pool(pool)
            return
    pool.shutdown()


def write(args, base, name: str, result: dict) -> None:
    path = base.out / f"{name}.json" if base.sweep else args.json
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
