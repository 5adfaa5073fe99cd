"""Fusion on real multimodal data: UTD-MHAD skeleton + inertial (+ depth video), leave-one-subject-out.

    python benchmarks/fusion_real.py --store STORE --out OUT --jobs 16            # every method
    python benchmarks/fusion_real.py --store STORE --out OUT --methods concat --folds 7 --seeds 0
    python benchmarks/fusion_real.py --store STORE --out OUT --summary            # the table again

``STORE`` is ``mhar import utd_mhad ../shared/data/utd_mhad_train STORE --modalities
skeleton,inertial`` (the 4 training subjects of the cross-subject protocol, 431 samples).
Fold ``k`` trains on the other three subjects and tests on subject ``k`` (``data.id_splits``);
every run is an experiment config trained by ``multimodal_har.train.train`` and evaluated by
``multimodal_har.evaluate.evaluate_run`` with the LAST epoch's checkpoint: a fixed schedule, no
model selection on the evaluated subject (validation each epoch is the training split without
augmentation, never used for a choice).

Methods (``METHODS``):

* single modalities: ``skeleton`` (ST-GCN, joint stream), ``skeleton_lstm`` (Das et al.'s 3-layer
  pose LSTM), ``inertial`` (TCN on the 6-axis wrist/thigh signal); each ``EPOCHS`` epochs;
* ``product``: the product of the separately trained ``skeleton`` and ``inertial`` models'
  probabilities (same fold and seed; computed from their saved test logits, no training);
* fusion methods with the recommended recipe (``staged``): stage 1 is the separately trained
  ``skeleton`` and ``inertial`` models of the same fold and seed (``train.init_from``: their
  encoders and classifiers), stage 2 (``FUSION_EPOCHS``) fuses with per-group learning rates
  (encoders at 0.1x), the per-modality auxiliary loss (weight 1) and, for the feature-level
  methods, modality dropout 0.3 (so the subset paths the ablation reads are trained ones);
  ``late`` heads start from the single models' classifiers (``late_poe`` therefore starts as
  ``product``). The in-run equivalent is ``train.pretrain_epochs`` (stage 1 inside the run);
  measured the same way for seed 0 (benchmarks/README.md);
* depth video (issue 15, item 5: all four modality families on real data; the store also needs
  ``depth`` and ``depth_flow``: ``mhar extract rgb ... --short-side 120 --as depth`` and ``mhar
  extract flow --backend dis ... --short-side 120 --as depth_flow`` on the depth videos that
  ``mhar import utd_mhad`` writes, README "Skeletons: layouts, datasets"), ResNet-18s from scratch (``weights=None``), frames
  resized to a short side of ``DEPTH_RESIZE`` px and cropped to ``DEPTH_CROP`` (TSN's multi-scale
  crops in training, centre crop in evaluation; never mirrored: UTD-MHAD has left / right
  classes), AdamW at ``DEPTH_LR``, batch ``DEPTH_BATCH``, 1 warm-up epoch, ``DEPTH_EPOCHS`` epochs:

  - ``depth``: the ``two_stream`` encoder over ``DEPTH_SEGMENTS`` TSN segments: one depth frame
    (``kwarg: rgb``) and a stack of ``DEPTH_FLOW_LENGTH`` depth-flow fields (``kwarg: flow``) per
    segment, two streams of one model input; dropout 0.5 on each segment embedding;
  - ``depth_attention``: Das et al.'s ``pose_attention``: a clip of ``DEPTH_CLIP`` consecutive
    depth frames through a 2D ResNet-18 frame by frame (a ``t x h x w = 8 x 3 x 3`` feature map:
    an 8-step temporal attention; ``r3d_18`` would leave one time step of an 8-frame clip and
    costs 4x more on the CPU), its spatial and temporal attention driven by a frozen pose LSTM:
    the encoder of the ``skeleton_lstm`` run of the same fold and seed (the paper's workflow:
    pre-trained on the skeletons, then frozen; the run is trained first and its LSTM written to
    ``WORK/runs/skeleton_lstm/fF-sS/pose_lstm.pt``); head dropout ``DEPTH_HEAD_DROPOUT``. The
    encoder's attention regulariser (``extras["attention_loss"]``, lambda 1e-5) is not added by
    the trainer;
  - ``product3``: the product of the ``skeleton``, ``inertial`` and ``depth`` models'
    probabilities (as ``product``);
  - ``late_poe3``: the staged recipe on the three (``init_from`` the three single runs, late
    fusion, poe, auxiliary loss 1, encoders at 0.1x lr) for ``DEPTH_FUSION_EPOCHS`` epochs.

  The schedule (epochs, resolution, 3 segments, 8-frame clips) was chosen for a CPU budget
  (about 50 minutes of a 2-core CPU for one fold: measured one epoch + validation at 61 s for
  ``depth`` and 74 s for ``depth_attention`` with one torch thread, two threads being slower)
  before any test number was seen; it is not tuned on any subject, and short for ResNets from
  scratch: a lower bound of what depth video gives here;
* ``METHOD@RECIPE``: the same fusion under another recipe (``RECIPES``): ``freeze`` (encoders
  frozen in stage 2), ``ens`` (``model.ensemble``: the fused head is a zero-initialised
  correction added to the single models' product of experts), ``noaux`` (no auxiliary loss), ``joint`` (trained jointly from scratch for
  ``EPOCHS + FUSION_EPOCHS`` epochs, no recipe: what issue 15 measured) and ``ogm`` (jointly, with
  the auxiliary loss and OGM-GE), to show what each part of the recipe changes.

Each finished run writes ``OUT/METHOD/fFOLD-sSEED.json`` (top-1, mean class accuracy, the top-1
of every modality subset, per-sample test logits, seconds); runs whose file exists are skipped,
so an interrupted sweep continues. ``--jobs`` processes with one torch thread each (these small
models are launch-bound, so many at once use the GPU, as in ``skeleton_fusion.py``).
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

SUBJECTS = (1, 3, 5, 7)
EPOCHS = 60
FUSION_EPOCHS = 20
NARROW = [[32, 1], [32, 1], [64, 2], [64, 1], [128, 2], [128, 1]]
SINGLES = ("skeleton", "skeleton_lstm", "inertial")
FUSIONS = ("late_poe", "late_mean", "concat", "early", "slow", "cross_attention")
# training recipes of the fusion methods (``METHOD@RECIPE``; the bare name is ``staged``)
RECIPES = {
    "staged": "stage 1 each encoder alone, stage 2 fused: encoders at 0.1x lr, auxiliary loss 1, "
              "modality dropout 0.3 (feature fusions)",
    "ens": "as staged, on top of the ensemble (model.ensemble: fused head added to the single models' product, "
           "starting at zero)",
    "freeze": "as staged, encoders frozen in stage 2",
    "noaux": "as staged, no auxiliary loss",
    "joint": "trained jointly from scratch, no recipe (what issue 15 measured)",
    "ogm": "trained jointly from scratch with the auxiliary loss and OGM-GE (alpha 0.5)",
}
STAGED = ("staged", "ens", "freeze", "noaux")  # recipes that start from the single models
# depth video (a CPU schedule, fixed before any test number was seen: module docstring)
DEPTH_EPOCHS = 18
DEPTH_FUSION_EPOCHS = 4
DEPTH_LR = 1e-3
DEPTH_BATCH = 16
DEPTH_EVAL_BATCH = 32
DEPTH_RESIZE = 96  # short side (stored: 120 px) before cropping
DEPTH_CROP = 96
DEPTH_SEGMENTS = 3  # TSN's K
DEPTH_HEAD_DROPOUT = 0.5  # depth_attention (two_stream has its own dropout of 0.5 per segment)
DEPTH_FLOW_LENGTH = 5
DEPTH_CLIP = 8
DEPTHS = ("depth", "depth_attention")
PRODUCTS = {"product": ("skeleton", "inertial"), "product3": ("skeleton", "inertial", "depth")}
FUSIONS3 = ("late_poe3",)  # skeleton + inertial + depth, staged
METHODS = (*SINGLES, "product", *FUSIONS, *(f"{f}@{r}" for f in FUSIONS for r in RECIPES if r != "staged"),
           *DEPTHS, "product3", *FUSIONS3)


def depends(method: str) -> tuple:
    """The runs ``method`` starts from (same fold and seed): trained first, and it waits for them."""
    if method in FUSIONS3:
        return ("skeleton", "inertial", "depth")
    if method == "depth_attention":
        return ("skeleton_lstm",)  # its frozen pose LSTM (Das et al.: pre-trained on the skeletons)
    if method not in SINGLES and method not in DEPTHS and (method.partition("@")[2] or "staged") in STAGED:
        return ("skeleton", "inertial")
    return ()


def fusion_spec(method: str) -> dict:
    name = method.partition("@")[0]
    if name in ("late_poe", "late_poe3"):
        return {"name": "late", "kwargs": {"mode": "poe"}}
    if name == "late_mean":
        return {"name": "late", "kwargs": {"mode": "mean"}}
    if name == "cross_attention":
        return {"name": "cross_attention", "kwargs": {"width": 128, "heads": 4, "dropout": 0.2}}
    return {"name": name, "kwargs": {}}


def make_config(method: str, *, store: Path, run_dir: Path, fold: int, seed: int, device: str,
                epochs: int = EPOCHS, fusion_epochs: int = FUSION_EPOCHS, depth_epochs: int = DEPTH_EPOCHS,
                depth_fusion_epochs: int = DEPTH_FUSION_EPOCHS) -> dict:
    """The experiment config (a mapping, as read from YAML) of one run."""
    model_extra: dict = {}
    pose = {"source": "pose3d", "kind": "pose", "stream": "joint", "frames": 32,
            "normalize": {"center": "first", "align": True, "scale": True},
            "augment": True, "rotate_deg": 15.0, "scale": 0.1, "jitter": 0.0}
    signal = {"source": "inertial", "kind": "signal", "key": "data", "frames": None, "augment": True,
              "scale": 0.1, "jitter": 0.02}
    gcn = {"name": "skeleton_gcn", "kwargs": {"layout": "kinect_v1_20", "channels": NARROW, "dropout": 0.2}}
    lstm = {"name": "pose_lstm", "kwargs": {"layout": "kinect_v1_20", "hidden": 256, "dropout": 0.5}}
    tcn = {"name": "signal", "kwargs": {"in_channels": 6, "channels": [64, 64, 128, 128], "kernel_size": 5,
                                        "dropout": 0.2, "token_stride": 4}}
    # depth video: frames / flow of the depth camera, TSN segments (no mirroring: UTD-MHAD has
    # left / right classes), ResNet-18 from scratch
    video = {"resize": DEPTH_RESIZE, "crop": DEPTH_CROP, "multi_scale": True, "flip": False, "augment": True}
    depth_rgb = {"source": "depth", "kind": "rgb", "input": "depth", "kwarg": "rgb", "segments": DEPTH_SEGMENTS,
                 "layout": "2d", **video}
    depth_flow = {"source": "depth_flow", "kind": "flow", "input": "depth", "kwarg": "flow",
                  "segments": DEPTH_SEGMENTS, "flow_length": DEPTH_FLOW_LENGTH, "layout": "2d", **video}
    two_stream = {"name": "two_stream", "kwargs": {
        "rgb": {"backbone": "resnet18", "weights": None, "dropout": 0.5},
        "flow": {"backbone": "resnet18", "weights": None, "flow_length": DEPTH_FLOW_LENGTH, "dropout": 0.5}}}
    if method in DEPTHS:
        if method == "depth":
            streams, encoders = {"depth": depth_rgb, "depth_flow": depth_flow}, {"depth": two_stream}
        else:  # one clip of DEPTH_CLIP consecutive frames + the skeleton driving the attention
            clip = {"source": "depth", "kind": "rgb", "input": "depth", "kwarg": "video", "segments": 1,
                    "layout": "3d", "clip_length": DEPTH_CLIP, **video}
            driver = {**pose, "input": "depth", "kwarg": "pose"}
            side = -(-DEPTH_CROP // 32)  # ResNet-18's feature grid (stride 32, rounded up)
            pose_weights = str(run_dir.parents[1] / "skeleton_lstm" / run_dir.name / "pose_lstm.pt")
            streams = {"depth": clip, "depth_pose": driver}
            model_extra = {"head_dropout": DEPTH_HEAD_DROPOUT}
            encoders = {"depth": {"name": "pose_attention", "kwargs": {
                "video": {"name": "video_cnn", "modality": "rgb", "backbone": "resnet18", "weights": None},
                "pose": dict(lstm["kwargs"]), "feature_size": [DEPTH_CLIP, side, side],
                "pose_weights": pose_weights, "freeze_pose": True}}}
        fusion = {"name": "concat", "kwargs": {}}
    elif method in FUSIONS3:
        streams = {"pose": pose, "imu": signal, "depth": depth_rgb, "depth_flow": depth_flow}
        encoders, fusion = {"pose": gcn, "imu": tcn, "depth": two_stream}, fusion_spec(method)
    elif method in SINGLES:
        streams = {"skeleton": {"pose": pose}, "skeleton_lstm": {"pose": pose}, "inertial": {"imu": signal}}[method]
        encoders = {"skeleton": {"pose": gcn}, "skeleton_lstm": {"pose": lstm}, "inertial": {"imu": tcn}}[method]
        fusion = {"name": "concat", "kwargs": {}}
    else:
        streams, encoders, fusion = {"pose": pose, "imu": signal}, {"pose": gcn, "imu": tcn}, fusion_spec(method)
    train = {"epochs": epochs, "batch_size": 16, "eval_batch_size": 256, "lr": 3e-3, "weight_decay": 5e-4,
             "warmup_epochs": 0.1 * epochs, "grad_clip": 0.0, "amp": False, "label_smoothing": 0.1,
             "modality_dropout": 0.0, "device": device, "log_every": 1000, "validate_every": 0}
    recipe = method.partition("@")[2] or "staged"
    if method in SINGLES:
        pass
    elif method in DEPTHS:
        train.update(epochs=depth_epochs, warmup_epochs=1.0, lr=DEPTH_LR, batch_size=DEPTH_BATCH,
                     eval_batch_size=DEPTH_EVAL_BATCH)
    elif method in FUSIONS3:  # staged: stage 1 is the three single models of the same fold and seed
        runs = run_dir.parents[1]
        train.update(init_from={"pose": str(runs / "skeleton" / run_dir.name), "imu": str(runs / "inertial" / run_dir.name),
                                "depth": str(runs / "depth" / run_dir.name)},
                     epochs=depth_fusion_epochs, lr=1e-3, warmup_epochs=1.0, encoder_lr_scale=0.1,
                     aux_loss_weight=1.0, eval_batch_size=DEPTH_EVAL_BATCH)
    elif recipe in ("joint", "ogm"):
        train["epochs"] = epochs + fusion_epochs
        train["warmup_epochs"] = 0.1 * train["epochs"]
        if recipe == "ogm":
            train.update(aux_loss_weight=1.0, ogm_alpha=0.5)
    else:  # staged, and its variants: stage 1 is the single models of the same fold and seed
        runs = run_dir.parents[1]
        if recipe == "ens":
            model_extra = {"ensemble": True}
        train.update(init_from={"pose": str(runs / "skeleton" / run_dir.name), "imu": str(runs / "inertial" / run_dir.name)},
                     epochs=fusion_epochs, lr=1e-3,
                     warmup_epochs=1.0, encoder_lr_scale=0.1, aux_loss_weight=0.0 if recipe == "noaux" else 1.0,
                     freeze_encoders=recipe == "freeze",
                     modality_dropout=0.0 if method.startswith("late") else 0.3)
    rest = [f"*_s{s}_*" for s in SUBJECTS if s != fold]
    return {
        "data": {"store": str(store), "num_workers": 0, "window": None, "val_split": "train",
                 "id_splits": {"train": rest, "test": [f"*_s{fold}_*"]}, "modalities": streams},
        "model": {"encoders": encoders, "fusion": fusion, **model_extra},
        "train": train,
        "seed": seed,
        "run_dir": str(run_dir),
    }


def pose_lstm_file(run: Path) -> Path:
    """``RUN/pose_lstm.pt``: the pose LSTM's state dict from a ``skeleton_lstm`` run's ``last.pt``
    (what ``PoseLSTM.load_pretrained`` reads), written once."""
    import torch

    from multimodal_har.engine import load_checkpoint

    path = run / "pose_lstm.pt"
    if not path.is_file():
        state = load_checkpoint(run / "last.pt")["model"]
        enc = {k[len("encoders.pose."):]: v for k, v in state.items() if k.startswith("encoders.pose.")}
        if not enc:
            raise ValueError(f"{run / 'last.pt'} has no pose encoder")
        tmp = path.with_suffix(".tmp")
        torch.save(enc, tmp)
        tmp.replace(path)
    return path


def result_path(out: Path, method: str, fold: int, seed: int) -> Path:
    return out / method.replace("@", "-") / f"f{fold}-s{seed}.json"


def run_one(method: str, fold: int, seed: int, args: argparse.Namespace) -> dict:
    """Train and evaluate one (method, fold, seed); writes and returns its numbers."""
    import shutil

    import torch

    from multimodal_har.evaluate import evaluate_run
    from multimodal_har.experiment import experiment_from_dict
    from multimodal_har.train import train

    torch.set_num_threads(args.threads)
    run_dir = args.work / "runs" / method.replace("@", "-") / f"f{fold}-s{seed}"
    if run_dir.exists():  # a killed run: start again
        shutil.rmtree(run_dir)
    if method == "depth_attention":  # the frozen pose LSTM: the encoder of this fold's skeleton_lstm run
        pose_lstm_file(args.work / "runs" / "skeleton_lstm" / f"f{fold}-s{seed}")
    cfg = experiment_from_dict(make_config(method, store=args.store, run_dir=run_dir, fold=fold, seed=seed,
                                           device=args.device, epochs=args.epochs,
                                           fusion_epochs=args.fusion_epochs, depth_epochs=args.depth_epochs,
                                           depth_fusion_epochs=args.depth_fusion_epochs))
    t0 = time.perf_counter()
    summary = train(cfg, quiet=True)
    seconds = time.perf_counter() - t0
    met = evaluate_run(run_dir, split="test", checkpoint="last", device=args.device, quiet=True)
    logits = np.load(Path(met["out_dir"]) / "logits.npz")
    key = "+".join(met["modalities"])  # the full set's logits (evaluate names subsets "a+b")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else "CPU"
    res = {"method": method, "fold": fold, "seed": seed, "top1": met["top1"],
           "mean_class_accuracy": met["mean_class_accuracy"], "count": met["count"],
           "epochs": summary["epochs_done"], "train_seconds": seconds, "device": device,
           "torch": torch.__version__, "subsets": {k: v["top1"] for k, v in met["subsets"].items()},
           "ids": [str(i) for i in logits["ids"]] if "ids" in logits.files else None,
           "labels": logits["labels"].tolist() if "labels" in logits.files else None,
           "logits": np.round(logits[key], 4).tolist()}
    path = result_path(args.out, method, fold, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res))
    return res


def product_top1(out: Path, fold: int, seed: int, models=("skeleton", "inertial")):
    """Top-1 of the product of separately trained models' probabilities (None unless all of them ran,
    on the same test samples)."""
    paths = [result_path(out, m, fold, seed) for m in models]
    if not all(p.is_file() for p in paths):
        return None
    rs = [json.loads(p.read_text()) for p in paths]
    if any(r["logits"] is None or r["ids"] != rs[0]["ids"] for r in rs):
        return None
    lp = sum(la - np.logaddexp.reduce(la, axis=1, keepdims=True) for la in (np.asarray(r["logits"]) for r in rs))
    return float(np.mean(lp.argmax(1) == np.asarray(rs[0]["labels"])))


def collect(out: Path, method: str, folds, seeds) -> dict:
    """``{(fold, seed): top1}`` of the finished runs of ``method``."""
    res = {}
    for f in folds:
        for s in seeds:
            if method in PRODUCTS:
                v = product_top1(out, f, s, PRODUCTS[method])
            else:
                p = result_path(out, method, f, s)
                v = json.loads(p.read_text())["top1"] if p.is_file() else None
            if v is not None:
                res[(f, s)] = v
    return res


def summarize(out: Path, methods, folds, seeds) -> dict:
    """Print the table (LOSO mean per seed, then mean +- std over seeds) and return it."""
    table = {}
    print(f"\nUTD-MHAD, leave-one-subject-out over subjects {list(folds)}, last epoch; "
          f"mean over folds per seed, then mean +- std over seeds {list(seeds)}")
    print("| method | per fold (mean over seeds, %) | LOSO top-1 mean +- std over seeds (%) |")
    print("| --- | --- | ---: |")
    for m in methods:
        r = collect(out, m, folds, seeds)
        per_seed = [np.mean([r[(f, s)] for f in folds]) * 100 for s in seeds if all((f, s) in r for f in folds)]
        per_fold = [np.mean([r[(f, s)] for s in seeds if (f, s) in r]) * 100 if any((f, s) in r for s in seeds)
                    else float("nan") for f in folds]
        if not r:
            print(f"| {m} | not run | |")
            continue
        fold_txt = ", ".join(f"s{f} {v:.1f}" for f, v in zip(folds, per_fold))
        tot = f"{np.mean(per_seed):.1f} +- {np.std(per_seed):.1f}" if per_seed else "incomplete"
        if per_seed and len(per_seed) < len(seeds):
            tot += f" ({len(per_seed)} seeds)"
        table[m] = {"per_fold": per_fold, "per_seed": per_seed}
        print(f"| {m} | {fold_txt} | {tot} |")
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, required=True, help="the UTD-MHAD store (mhar import utd_mhad ...)")
    ap.add_argument("--out", type=Path, required=True, help="result files (OUT/METHOD/fFOLD-sSEED.json)")
    ap.add_argument("--work", type=Path, default=None, help="run directories (default OUT/work)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--folds", type=int, nargs="+", default=list(SUBJECTS), help="held-out subjects")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=EPOCHS, help="single models and stage 1")
    ap.add_argument("--fusion-epochs", type=int, default=FUSION_EPOCHS, help="stage 2 of the recipe")
    ap.add_argument("--depth-epochs", type=int, default=DEPTH_EPOCHS, help="the depth single models")
    ap.add_argument("--depth-fusion-epochs", type=int, default=DEPTH_FUSION_EPOCHS,
                    help="stage 2 of the recipe with depth (late_poe3)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once, one process each")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--summary", action="store_true", help="only print the table of the result files")
    ap.add_argument("--deadline", type=float, default=None, help="seconds after which unfinished runs are stopped")
    args = ap.parse_args()
    args.out, args.store = args.out.resolve(), args.store.resolve()
    args.work = (args.work or args.out / "work").resolve()
    if args.summary:
        summarize(args.out, args.methods, args.folds, args.seeds)
        return
    trained = [m for m in args.methods if m not in PRODUCTS]
    for m in list(trained) + [m for m in args.methods if m in PRODUCTS]:  # the runs they start from / multiply
        trained += [x for x in (PRODUCTS[m] if m in PRODUCTS else depends(m)) if x not in trained]
    # the single models first (the products and staged recipes need them; the pose LSTM that
    # depth_attention starts from first of all), then the recommended recipes, then the other
    # recipes, so that a run stopped by --deadline has the comparisons that matter most
    first = ("skeleton_lstm",) * ("depth_attention" in trained) + ("skeleton", "inertial", "depth", "depth_attention")
    order = sorted(trained, key=lambda m: (first.index(m) if m in first else len(first), "@" in m,
                                           m not in FUSIONS))
    jobs = [(m, f, s) for m in order for s in args.seeds for f in args.folds
            if not result_path(args.out, m, f, s).is_file()]
    print(f"{len(jobs)} runs to do, {args.jobs} at once", flush=True)
    t0 = time.perf_counter()
    pool = ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn"))
    # staged recipes (and depth_attention) start from runs of their fold and seed: submitted once those exist
    def needs(m: str, f: int, s: int) -> list:
        return [(x, f, s) for x in depends(m) if not result_path(args.out, x, f, s).is_file()]

    waiting = [j for j in jobs if needs(*j)]
    futures = {pool.submit(run_one, *j, args): j for j in jobs if not needs(*j)}
    pending = set(futures)
    try:
        while pending:
            done = next(as_completed(pending, timeout=None if args.deadline is None
                                     else max(1.0, args.deadline - (time.perf_counter() - t0))))
            pending.discard(done)
            m, f, s = futures[done]
            try:
                r = done.result()
                print(f"  [{time.perf_counter() - t0:.0f} s] {m} fold s{f} seed {s}: top-1 {100 * r['top1']:.1f}% "
                      f"({r['train_seconds']:.0f} s)", flush=True)
            except Exception as e:  # report and go on: the table marks it
                print(f"  {m} fold s{f} seed {s}: FAILED {type(e).__name__}: {e}", flush=True)
            for j in [j for j in waiting if not needs(*j)]:
                waiting.remove(j)
                fut = pool.submit(run_one, *j, args)
                futures[fut] = j
                pending.add(fut)
        if waiting:
            print(f"not run (their single models failed): {waiting}")
        pool.shutdown()
    except TimeoutError:  # the deadline: unfinished runs are stopped; a later call continues them
        left = [futures[f] for f in futures if not f.done()] + waiting
        print(f"deadline of {args.deadline:.0f} s reached: {len(left)} runs stopped or not started")
        stop_pool(pool)
    print(f"{time.perf_counter() - t0:.0f} s wall, {args.jobs} runs at once x {args.threads} thread(s), "
          f"{os.cpu_count()} CPU cores, {platform.machine()}")
    summarize(args.out, [*args.methods, *(m for m in order if m not in args.methods)], args.folds, args.seeds)


if __name__ == "__main__":
    main()
