"""Evaluation: ``mhar evaluate RUN [--split test] [--checkpoint best|last]``.

Rebuilds the run's model from ``RUN/config.yaml``, loads a checkpoint, and writes into
``RUN/eval_<split>/``:

* ``metrics.json``: top-1, top-5, mean class accuracy and loss of the fused model, and the
  top-1 / mean class accuracy of every non-empty modality subset;
* ``per_class.csv`` and ``per_class.json``: support, correct, accuracy (recall), precision,
  F1 per class;
* ``confusion.png`` (and ``confusion.csv``): rows true class, columns predicted, normalised
  per row (matplotlib, Agg backend; skipped with a message if matplotlib is missing);
* ``logits.npz``: ``ids``, ``labels``, ``classes``, ``modalities``, and one ``(N, C)`` array
  of logits per non-empty modality subset, keyed by the subset's names joined with ``+`` in the
  model's modality order (``rgb``, ``rgb+audio``, ...; the full set is the fused model). Each
  subset is evaluated through the missing-modality path (the other modalities hidden), which
  is what the ablation tools read. With ``windows_per_video > 1`` every row is a video: the
  mean of its windows' logits (also for the metrics).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .experiment import CHECKPOINTS, build_model, load_run_config


def per_video(ids: list[str], labels: np.ndarray, outs: dict[str, np.ndarray]
              ) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """Several windows of one video (``windows_per_video > 1``) -> one row per video: the mean
    of its windows' logits (TSN's average consensus), in order of first appearance."""
    first: dict[str, int] = {}
    group = np.asarray([first.setdefault(i, len(first)) for i in ids], dtype=np.int64)
    if len(first) == len(ids):
        return list(ids), labels, outs
    counts = np.bincount(group, minlength=len(first)).astype(np.float64)[:, None]
    video_labels = np.zeros(len(first), dtype=np.int64)
    video_labels[group] = labels
    agg = {}
    for k, v in outs.items():
        acc = np.zeros((len(first), v.shape[1]), dtype=np.float64)
        np.add.at(acc, group, v)
        agg[k] = (acc / counts).astype(np.float32)
    return list(first), video_labels, agg


def classification_metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, Any]:
    """``logits (N, C)``, ``labels (N,)`` (-1: unlabelled, ignored) -> top1, top5 (top-min(5, C)),
    mean class accuracy (over the classes present in ``labels``), mean cross-entropy ``loss``
    and the ``(C, C)`` confusion matrix (rows: true class)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    keep = labels >= 0
    logits, labels = logits[keep], labels[keep]
    n = len(labels)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    if n == 0:
        return {"top1": float("nan"), "top5": float("nan"), "mean_class_accuracy": float("nan"),
                "loss": float("nan"), "count": 0, "confusion": confusion}
    pred = logits.argmax(axis=1)
    np.add.at(confusion, (labels, pred), 1)
    k = min(5, num_classes)
    topk = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    support = confusion.sum(axis=1)
    seen = support > 0
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return {"top1": float((pred == labels).mean()), "top5": float((topk == labels[:, None]).any(axis=1).mean()),
            "mean_class_accuracy": float((np.diag(confusion)[seen] / support[seen]).mean()),
            "loss": float(-logp[np.arange(n), labels].mean()), "count": int(n), "confusion": confusion}


def per_class_report(confusion: np.ndarray, classes: list[str]) -> list[dict[str, Any]]:
    """One row per class: support, correct, accuracy (= recall), precision, F1."""
    rows = []
    for i, name in enumerate(classes):
        tp, support, predicted = int(confusion[i, i]), int(confusion[i].sum()), int(confusion[:, i].sum())
        rec = tp / support if support else float("nan")
        prec = tp / predicted if predicted else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if support and predicted and (prec + rec) > 0 else 0.0
        rows.append({"class": name, "index": i, "support": support, "correct": tp, "accuracy": rec,
                     "precision": prec, "f1": f1})
    return rows


def save_confusion_png(confusion: np.ndarray, classes: list[str], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix with the counts, as a PNG
    (:func:`~multimodal_har.ablation_plots.plot_confusion`)."""
    import matplotlib.pyplot as plt

    from .ablation_plots import plot_confusion

    plt.close(plot_confusion(confusion, classes, path=path, title=title))
    return Path(path)


def evaluate_run(run_dir: str | Path, *, split: str = "test", checkpoint: str = "best",
                 batch_size: Optional[int] = None, device: str = "auto", quiet: bool = False) -> dict[str, Any]:
    """Evaluate a run of ``mhar train`` on ``split``; writes ``RUN/eval_<split>/`` (module
    docstring) and returns the metrics dict."""
    import torch

    from .data.dataset import StoreDataset
    from .model import subset_key
    from .train import Dist, eval_loader, load_checkpoint, predict, to_device

    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    ck = load_checkpoint(run_dir / f"{checkpoint}.pt")
    classes = list(ck["classes"])
    if config.classes is not None and list(config.classes) != classes:
        raise ValueError(f"{run_dir}: config.yaml and {checkpoint}.pt disagree on the classes")
    ds = StoreDataset(config.data, split, train=False, classes=classes, seed=config.seed)
    if len(ds) == 0:
        raise ValueError(f"split {split!r} of {config.data.store} has no sample")
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    model = build_model(config.model, len(classes))
    model.load_state_dict(ck["model"])
    model.to(dev).eval()
    dist = Dist(rank=0, world=1, local_rank=0, device=dev)
    loader = eval_loader(ds, batch_size or config.train.eval_batch_size or config.train.batch_size,
                         config.data.num_workers, dist)
    amp = config.train.amp and dev.type == "cuda"

    def fn(batch):
        batch = to_device(batch, dev)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            return model.subset_logits(batch["inputs"], batch["present"])

    ids, labels, _, outs = predict(fn, loader, dist, progress=not quiet and sys.stderr.isatty(), desc=split)
    ids, labels, outs = per_video(ids, labels, outs)
    full = subset_key(model.modalities)
    C = len(classes)
    met = classification_metrics(outs[full], labels, C)
    out_dir = run_dir / f"eval_{split}"
    out_dir.mkdir(parents=True, exist_ok=True)
    subsets = {}
    for key, logits in outs.items():
        m = classification_metrics(logits, labels, C)
        subsets[key] = {"top1": m["top1"], "top5": m["top5"], "mean_class_accuracy": m["mean_class_accuracy"]}
    summary = {"run": str(run_dir), "split": split, "checkpoint": checkpoint, "epoch": ck.get("epoch"),
               "count": met["count"], "top1": met["top1"], "top5": met["top5"],
               "mean_class_accuracy": met["mean_class_accuracy"], "loss": met["loss"],
               "modalities": list(model.modalities), "subsets": subsets}
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    report = per_class_report(met["confusion"], classes)
    (out_dir / "per_class.json").write_text(json.dumps(report, indent=2))
    with open(out_dir / "per_class.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(report[0]))
        w.writeheader()
        w.writerows(report)
    with open(out_dir / "confusion.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["true\\predicted", *classes])
        for name, row in zip(classes, met["confusion"]):
            w.writerow([name, *row.tolist()])
    save_confusion_png(met["confusion"], classes, out_dir / "confusion.png",
                       title=f"{run_dir.name} {split}: top-1 {met['top1']:.3f}")
    np.savez(out_dir / "logits.npz", ids=np.asarray(ids), labels=labels, classes=np.asarray(classes),
             modalities=np.asarray(model.modalities), **outs)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{summary['run']} [{summary['split']}, {summary['checkpoint']}.pt, epoch {summary['epoch']}]: "
             f"{summary['count']} samples  top-1 {summary['top1']:.4f}  top-5 {summary['top5']:.4f}  "
             f"mean class acc {summary['mean_class_accuracy']:.4f}"]
    if len(summary["subsets"]) > 1:
        lines.append("  modality subsets (top-1 / mean class acc):")
        for key, m in summary["subsets"].items():
            lines.append(f"    {key:30s} {m['top1']:.4f} / {m['mean_class_accuracy']:.4f}")
    return "\n".join(lines)
