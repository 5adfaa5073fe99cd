"""``mhar demo``: the whole path on the bundled sample videos, offline, in minutes on a CPU.

videos -> feature store (every modality that can be extracted on this machine) -> a small
fused classifier -> ``mhar evaluate`` -> the modality ablation report with its figures.

The task. The 7 bundled clips (``multimodal_har/sample_data/videos``; sources and licences
in ``sample_data/NOTICE``) are unrelated recordings, so each clip is its own class: the model
learns which clip a 1-second window comes from. Every clip is cut in time
(:attr:`~multimodal_har.data.dataset.DataConfig.time_splits`): windows of its first 60 %
train, of the next 20 % validate, of the last 20 % test, so the test windows are time ranges
the model never saw, 20 % of the clip away from any training frame. With ``--videos DIR`` the
class folders of ``DIR`` give the labels (``DIR/<class>/<video>``); videos directly in ``DIR``
are each their own class, as the samples are. The numbers mean nothing as accuracy (7 clips,
one recording per class: the model recognises recordings, not actions); they show that every
stage runs end to end and what each one writes.

What runs, and what is skipped (each skip is said, with its reason, and kept in ``demo.json``):

* ``rgb``: always.
* ``flow``: torchvision RAFT (``raft_small``, else ``raft_large``) when its weights are in
  torch's cache (nothing is downloaded), else DIS (OpenCV, CPU), else skipped (no OpenCV).
* ``pose``: MediaPipe's bundled 3D pose model when ``mediapipe`` is installed (the
  ``mediapipe`` extra), else skipped.
* ``audio``: log-mel spectrograms of the videos that have an audio track (2 of the 7 samples);
  the model sees audio as a missing modality for the others.
* The video encoders start from ImageNet weights when torch's cache holds them, else from
  random weights (said, not an error).

Sizes are small on purpose (short side 96 px at 6 frames/s, 80 px crops, a ResNet-18 per
video stream, a 2-block ST-GCN, a 3-block audio CNN, cross-modal attention of width 64):
about 80 s on 2 idle CPU cores from a fresh install (extraction 14 s, training 51 s, ablation
12 s; cores busy with other work slow it down in proportion); ``--quick`` is a smoke test
(about 20 s). Modality dropout in training (0.5) makes the missing-modality path that the
ablation reads a path the model was trained on.

Output folder (``--out``, default ``runs/demo``): ``store/`` (the feature store, with
``manifest.csv``), ``preview_*.png`` (flow colours and skeletons drawn over frames of one
clip), ``train_config.yaml`` (the experiment, for ``mhar train --config``), ``run/`` (the
training run: checkpoints, ``metrics.jsonl``, ``eval_test_best/`` of ``mhar evaluate``),
``ablation/`` (``mhar ablate``'s report and figures), ``annotations.csv`` (the labels, for
``mhar extract --annotations``) and ``demo.json`` (what ran, what was skipped and why,
metrics, timings).

Re-running resumes: extraction skips the videos done with the same settings, training
continues from ``run/last.pt`` (or is skipped when it finished), evaluation and the ablation
are redone (seconds). A run with other settings (``--quick`` after a full run, or a modality
that became available) stops with a message instead of mixing them: choose another ``--out``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Union

from multimodal_har import api
from multimodal_har.api import SAMPLE_VIDEOS, video_records
from multimodal_har.atomic import atomic_path, atomic_write_text
from multimodal_har.weights import cached_raft, cached_weights
# fractions of every clip's time span; val sits between train and test
TIME_SPLITS = {"train": [0.0, 0.6], "val": [0.6, 0.8], "test": [0.8, 1.0]}
MODALITIES = ("rgb", "flow", "pose", "audio")  # model inputs, in model order


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class DemoSizes:
    """Every size the demo uses (:data:`FULL` and :data:`QUICK`).

    Attributes:
        short_side, fps: frames extracted (rgb, flow and pose sampling).
        crop: square crop of rgb and flow inputs; segments: TSN segments per window;
        flow_length: flow fields stacked per segment; pose_frames: pose frames per window.
        window: seconds per sample; windows: windows per clip and split (training draws them
            at random each epoch; evaluation takes evenly spaced ones, averaged per clip).
        video_stages: residual stages of the rgb and flow ResNet-18s (4: all of it, 11.2 M
            parameters each; 2: 0.7 M, enough for 48 px crops: ``--quick``'s run folder is then
            33 MB instead of 354 MB, its checkpoints holding the weights and, for ``--resume``,
            AdamW's two moments).
        epochs, batch_size, lr: training.
        width: the cross-modal attention's width.
        n_resamples: bootstrap resamples of the ablation's confidence intervals.
        strengths: corruption strengths of the robustness curves.
    """

    short_side: int = 96
    fps: float = 6.0
    crop: int = 80
    segments: int = 3
    flow_length: int = 2
    pose_frames: int = 8
    window: float = 1.0
    windows: int = 6
    video_stages: int = 4
    epochs: int = 10
    batch_size: int = 14
    lr: float = 1e-3
    width: int = 64
    n_resamples: int = 1000
    strengths: tuple[float, ...] = (0.0, 0.5, 1.0)


FULL = DemoSizes()
QUICK = replace(FULL, short_side=64, fps=4.0, crop=48, segments=2, windows=2, video_stages=2, epochs=2, batch_size=8,
                n_resamples=200, strengths=(0.0, 1.0))


@dataclass
class DemoResult:
    """What :func:`run_demo` did. ``notes``: what was skipped or changed, and why."""

    out: Path
    modalities: list[str]
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    ablation: Any = None  # multimodal_har.ablation_run.AblationRun
    files: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------- helpers
def _say(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, flush=True)


def write_annotations(records: list, path: Union[str, Path]) -> Path:
    """The labels the demo used as an annotation CSV (``path,label``; ``mhar extract
    --annotations``), so that the same store can be rebuilt by hand."""
    import csv

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows([r.path, r.label] for r in records)
    return path


# ---------------------------------------------------------------------------- extraction
@dataclass
class ExtractionStep:
    """One modality to extract: the model input it feeds, the extractor, its config."""

    input: str
    extractor: str
    config: dict[str, Any]
    why: str = ""


def plan_extraction(sizes: DemoSizes = FULL) -> tuple[list[ExtractionStep], list[str]]:
    """The extraction steps this machine can run, and notes on what is skipped or replaced."""
    import torch

    from .info import backend_status

    frames = {"short_side": sizes.short_side, "fps": sizes.fps}
    steps = [ExtractionStep("rgb", "rgb", dict(frames), "JPEG frames")]
    notes: list[str] = []
    raft = cached_raft()
    cv2_ok, cv2_why = backend_status("opencv")
    if raft is not None:
        model, path = raft
        cuda = torch.cuda.is_available()
        # on a CPU: fewer refinement iterations and no compilation, so that it fits the budget
        cfg = {**frames, "model": model, "weights": "DEFAULT", "compile": "none",
               "updates": 12 if cuda else 6, "precision": "bf16" if cuda else "fp32", "batch_frames": 16}
        steps.append(ExtractionStep("flow", "raft", cfg, f"RAFT ({model}, weights {path})"))
    elif cv2_ok:
        steps.append(ExtractionStep("flow", "dis", dict(frames), "DIS (OpenCV, CPU)"))
        notes.append("flow: RAFT weights are not in torch's cache (nothing is downloaded), used DIS (OpenCV) "
                     "instead")
    else:
        notes.append(f"flow: skipped: RAFT weights are not in torch's cache and OpenCV is missing ({cv2_why})")
    mp_ok, mp_why = backend_status("mediapipe")
    if mp_ok:
        steps.append(ExtractionStep("pose", "mediapipe", {**frames, "short_side": max(sizes.short_side, 256),
                                                          "max_people": 1}, "MediaPipe 3D pose (CPU)"))
    else:
        notes.append(f"pose: skipped: MediaPipe is not usable ({mp_why})")
    steps.append(ExtractionStep("audio", "audio", {}, "log-mel spectrograms"))
    return steps, notes


def extract(steps: list[ExtractionStep], videos: Path, store: Path, records: list, *,
            workers: Optional[int] = None, quiet: bool = False) -> tuple[dict[str, str], list[str]]:
    """Run ``steps`` into ``store``; returns ({input: store modality usable for training},
    notes). A modality with no usable entry, or whose extractor cannot start, is left out
    and said; a video that fails or lacks the modality is counted in a note."""
    from .data.store import FeatureStore

    fs = FeatureStore(store, create=True)
    usable: dict[str, str] = {}
    notes: list[str] = []
    n = len(records)
    for step in steps:
        _say(quiet, f"extract {step.input}: {step.why}")
        try:
            summary = api.extract(step.extractor, videos=videos, store=fs, config=step.config, records=records,
                                  workers=workers, progress=not quiet)
        except Exception as e:  # noqa: BLE001 - a backend that cannot start (weights, libraries): skip it
            notes.append(f"{step.input}: skipped: {step.extractor} could not run ({type(e).__name__}: {e})")
            continue
        _say(quiet, "  " + summary.format().replace("\n", "\n  "))
        # from the manifest, not this run's summary: a resumed run says the same
        ids = {r.id for r in records}
        entries = {s: [e for e in fs.manifest.entries(modality=summary.modality, status=s) if e["video_id"] in ids]
                   for s in ("ok", "missing", "failed")}
        if entries["missing"]:
            what = "no audio track" if step.input == "audio" else f"no {step.input}"
            notes.append(f"{step.input}: {len(entries['missing'])} of {n} videos have {what}"
                         + (" (the model sees it as missing for them)" if entries["ok"] else ""))
        if entries["failed"]:
            notes.append(f"{step.input}: {len(entries['failed'])} of {n} videos failed: "
                         + "; ".join(f"{e['video_id']}: {e['error']}" for e in entries["failed"][:3]))
        if entries["ok"]:
            usable[step.input] = summary.modality
        else:
            notes.append(f"{step.input}: not used: no video has it")
    fs.manifest.export_csv(fs.root / "manifest.csv")
    return usable, notes


def previews(store: Path, out: Path, records: list, usable: dict[str, str]) -> dict[str, Path]:
    """``preview_flow.png`` / ``preview_pose.png``: flow colours and skeletons over the frames
    of the first clip that has them (``mhar show``)."""
    from .data.store import FeatureStore
    from .show import render, save_png

    fs = FeatureStore(store)
    files = {}
    for name in ("flow", "pose"):
        modality = usable.get(name)
        if modality is None:
            continue
        vid = next((r.id for r in records if fs.has(r.id, modality)), None)
        if vid is not None:
            files[f"preview_{name}.png"] = save_png(render(fs, vid, modality, count=5), out / f"preview_{name}.png")
    return files


# ---------------------------------------------------------------------------- the experiment
def experiment_dict(store: Path, run_dir: Path, usable: dict[str, str], sizes: DemoSizes = FULL,
                    notes: Optional[list[str]] = None) -> dict[str, Any]:
    """The experiment config (as in YAML) of the demo's classifier over the ``usable`` inputs."""
    import torchvision.models as tvm

    notes = notes if notes is not None else []
    imagenet = cached_weights(tvm.ResNet18_Weights.IMAGENET1K_V1)
    weights = "IMAGENET1K_V1" if imagenet is not None else None
    if ("rgb" in usable or "flow" in usable) and weights is None:
        notes.append("rgb/flow encoders: ImageNet ResNet-18 weights are not in torch's cache (nothing is "
                     "downloaded): random initialisation")
    data = {
        "rgb": {"kind": "rgb", "segments": sizes.segments, "crop": sizes.crop},
        "flow": {"kind": "flow", "segments": sizes.segments, "flow_length": sizes.flow_length, "crop": sizes.crop},
        "pose": {"source": usable.get("pose", "pose3d"), "kind": "pose", "frames": sizes.pose_frames,
                 "max_people": 1},
        "audio": {"kind": "audio"},
    }
    encoders = {
        "rgb": {"name": "video_cnn", "kwargs": {"modality": "rgb", "backbone": "resnet18", "weights": weights,
                                                 "dropout": 0.2}},
        "flow": {"name": "video_cnn", "kwargs": {"modality": "flow", "backbone": "resnet18", "weights": weights,
                                                  "flow_length": sizes.flow_length, "dropout": 0.2}},
        # MediaPipe's 33 joints; two ST-GCN blocks (the paper's ten are for Kinetics-scale data)
        "pose": {"name": "skeleton_gcn", "kwargs": {"layout": "mediapipe_33", "channels": [[32, 1], [64, 2]]}},
        "audio": {"name": "audio", "kwargs": {"n_mels": 64, "channels": [16, 32, 64]}},
    }
    if sizes.video_stages != 4:
        for m in ("rgb", "flow"):
            encoders[m]["kwargs"]["stages"] = sizes.video_stages
    inputs = [m for m in MODALITIES if m in usable]
    return {
        "data": {"store": str(store), "modalities": {m: data[m] for m in inputs}, "window": sizes.window,
                 "windows_per_video": sizes.windows, "time_splits": TIME_SPLITS, "num_workers": 0},
        "model": {"encoders": {m: encoders[m] for m in inputs},
                  "fusion": {"name": "cross_attention",
                             "kwargs": {"width": sizes.width, "heads": 2, "self_layers": 1, "cross_layers": 1,
                                        "dropout": 0.1}},
                  "head_dropout": 0.2},
        "train": {"epochs": sizes.epochs, "batch_size": sizes.batch_size, "lr": sizes.lr, "warmup_epochs": 1,
                  "weight_decay": 0.01, "modality_dropout": 0.5 if len(inputs) > 1 else 0.0,
                  "label_smoothing": 0.1, "log_every": 1},
        "seed": 0,
        "run_dir": str(run_dir),
    }


def write_config(config_dict: dict[str, Any], path: Union[str, Path]) -> Path:
    """The experiment as a short YAML file for ``mhar train --config`` (only what the demo sets;
    the run directory gets the resolved config with every default)."""
    import yaml

    path = Path(path)
    head = ("# The experiment of `mhar demo` (written by it). Train it again, e.g. on a store you built by hand:\n"
            f"#   mhar train --config {path} --set data.store=STORE --run-dir RUN\n")
    return atomic_write_text(path, head + yaml.safe_dump(config_dict, sort_keys=False, default_flow_style=None,
                                                         width=110))


def train_or_resume(config_dict: dict[str, Any], *, quiet: bool = False) -> tuple[dict[str, Any], str]:
    """Train the run of ``config_dict``, continue it from ``last.pt``, or skip it when it
    finished: :func:`multimodal_har.api.train` with ``resume="auto"``. Returns (summary, what
    happened). A run of other settings in the same folder is a :class:`DemoError` (nothing
    is overwritten)."""
    try:
        summary = api.train(config_dict, resume="auto", quiet=quiet)
    except api.RunSettingsError as e:
        raise DemoError(f"{e} (another --quick, --videos or set of modalities: use another --out)") from None
    how = summary.pop("how")
    return summary, how


# ---------------------------------------------------------------------------- the whole demo
def run_demo(out: Union[str, Path] = "runs/demo", *, videos: Union[str, Path, None] = None, quick: bool = False,
             workers: Optional[int] = None, quiet: bool = False) -> DemoResult:
    """Extract, train, evaluate and ablate (module docstring); returns a :class:`DemoResult`
    and writes ``OUT/demo.json``.

    Args:
        out: the output folder (created; a previous demo there is resumed).
        videos: a video folder (default: the bundled samples).
        quick: tiny sizes and 2 epochs (:data:`QUICK`): a smoke test of the path.
        workers: extraction processes (default: all cores).
        quiet: no progress output.
    """
    from .evaluate import format_summary

    sizes = QUICK if quick else FULL
    out = Path(out)
    videos = Path(videos) if videos is not None else SAMPLE_VIDEOS
    if not videos.is_dir():
        raise DemoError(f"--videos {videos} is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    # absolute: the run's config.yaml then works from any folder (`mhar evaluate`, the notebooks)
    store, run_dir = out.resolve() / "store", out.resolve() / "run"
    records = video_records(videos)
    classes = sorted({r.label for r in records})
    if len(classes) < 2:
        raise DemoError(f"{videos} gives {len(classes)} class(es): the demo needs at least two videos "
                        f"(or class folders)")
    annotations = write_annotations(records, out / "annotations.csv")
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    _say(quiet, f"mhar demo: {len(records)} videos from {videos}, {len(classes)} classes, "
                f"{'quick' if quick else 'full'} sizes -> {out}")

    steps, notes = plan_extraction(sizes)
    usable, more = extract(steps, videos, store, records, workers=workers, quiet=quiet)
    notes += more
    if not usable:
        raise DemoError(f"no modality could be extracted from {videos}: " + "; ".join(notes))
    files = previews(store, out, records, usable)
    files["annotations.csv"] = annotations
    seconds["extract"] = time.perf_counter() - t0

    t = time.perf_counter()
    cfg = experiment_dict(store, run_dir, usable, sizes, notes)
    api.experiment(cfg)  # checked before anything is written
    files["train_config.yaml"] = write_config(cfg, out / "train_config.yaml")
    _say(quiet, f"train: {', '.join(cfg['model']['encoders'])} fused by cross-modal attention, "
                f"{sizes.epochs} epochs (windows of {sizes.window:g} s; time ranges train {TIME_SPLITS['train']}, "
                f"val {TIME_SPLITS['val']}, test {TIME_SPLITS['test']} of each clip)")
    summary, how = train_or_resume(cfg, quiet=quiet)
    _say(quiet, f"  {how}: best validation top-1 {summary['best_val_top1']:.3f} at epoch {summary['best_epoch']}")
    seconds["train"] = time.perf_counter() - t

    t = time.perf_counter()
    metrics = api.evaluate(run_dir, split="test")
    _say(quiet, format_summary(metrics))
    seconds["evaluate"] = time.perf_counter() - t

    t = time.perf_counter()
    ablation = api.ablate(run_dir, split="test", out_dir=out / "ablation", strengths=sizes.strengths,
                          n_resamples=sizes.n_resamples, quiet=quiet)
    _say(quiet, "ablation (test split, one row per clip, top-1):\n" + ablation.format())
    seconds["ablate"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0

    files.update({f"ablation/{k}": v for k, v in ablation.files.items()})
    eval_out = Path(metrics["out_dir"])
    files[f"{eval_out.name}/confusion.png"] = eval_out / "confusion.png"
    result = DemoResult(out=out, modalities=list(cfg["model"]["encoders"]), notes=notes, metrics=metrics,
                        ablation=ablation, files=files, seconds=seconds)
    report = {"videos": str(videos), "classes": classes, "modalities": result.modalities,
              "extractors": {s.input: s.why for s in steps if s.input in usable}, "notes": notes,
              "sizes": asdict(sizes), "training": {**summary, "how": how},
              "test": {k: metrics[k] for k in ("count", "top1", "top5", "mean_class_accuracy", "subsets")},
              "shapley": dict(zip(ablation.result.modalities, map(float, ablation.result.shapley))),
              "seconds": {k: round(v, 1) for k, v in seconds.items()},
              "files": {k: str(v) for k, v in sorted(files.items())}}
    (out / "demo.json").write_text(json.dumps(report, indent=2))
    _say(quiet, format_report(result))
    return result


def format_report(result: DemoResult) -> str:
    """The closing summary: what was skipped and why, where the figures are, timings."""
    lines = [f"demo done in {result.seconds.get('total', 0):.0f} s ("
             + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items() if k != "total") + ")",
             f"  modalities: {', '.join(result.modalities)}"]
    lines += [f"  skipped / changed: {n}" for n in result.notes] or ["  nothing skipped"]
    figures = sorted(k for k in result.files if k.endswith(".png"))
    lines.append(f"  figures in {result.out}: " + ", ".join(figures))
    lines.append(f"  report: {result.out / 'demo.json'}, {result.out / 'ablation' / 'ablation.json'}")
    return "\n".join(lines)


__all__ = ["DemoError", "DemoResult", "DemoSizes", "FULL", "QUICK", "SAMPLE_VIDEOS", "TIME_SPLITS", "cached_raft",
           "experiment_dict", "extract", "plan_extraction", "run_demo", "train_or_resume", "video_records",
           "write_annotations"]
