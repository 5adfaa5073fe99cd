"""Evaluation: ``mhar evaluate RUN [--split test] [--checkpoint best|last|PATH]``.

Loads the run (:func:`~multimodal_har.engine.load_run`: ``RUN/config.yaml`` and the
checkpoint, read once) and writes into ``RUN/eval_<split>_<checkpoint>/`` (``eval_test_best``,
``eval_test_last``, ``eval_val_epoch5`` for ``--checkpoint RUN/epoch5.pt``: evaluating
another checkpoint never replaces a folder; :func:`eval_dir`):

* ``metrics.json``: top-1, top-5, mean class accuracy and loss of the fused model, and the
  top-1 / mean class accuracy of every non-empty modality subset (top-1 is tie-aware, as
  everywhere: :mod:`multimodal_har.metrics`); ``checkpoint``, ``checkpoint_path``, ``epoch``;
* ``per_class.csv`` and ``per_class.json``: support, correct, accuracy (recall), precision,
  F1 per class;
* ``confusion.png`` (and ``confusion.csv``): rows true class, columns predicted, normalised
  per row (matplotlib, Agg backend; skipped with a message if matplotlib is missing); a tied
  top score counts a fraction in each tied column;
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
from typing import Any, Optional, Union

import numpy as np

from .engine import Dist, Run, autocast, load_run, per_video, predict, to_device
from .metrics import classification_metrics, per_class_report


def eval_dir(run_dir: Union[str, Path], split: str, checkpoint: str) -> Path:
    """``RUN/eval_<split>_<checkpoint>``: where :func:`evaluate_run` writes (``checkpoint``: the
    checkpoint's name, ``best``, ``last`` or a ``.pt`` file's stem)."""
    return Path(run_dir) / f"eval_{split}_{checkpoint}"


def save_confusion_png(confusion: np.ndarray, classes: list[str], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix with the counts, as a PNG
    (:func:`~multimodal_har.ablation_plots.plot_confusion`)."""
    import matplotlib.pyplot as plt

    from .ablation_plots import plot_confusion

    plt.close(plot_confusion(confusion, classes, path=path, title=title))
    return Path(path)


def evaluate_run(run: Union[str, Path, Run], *, split: str = "test", checkpoint: Union[str, Path] = "best",
                 batch_size: Optional[int] = None, device: str = "auto", quiet: bool = False) -> dict[str, Any]:
    """Evaluate a run of ``mhar train`` on ``split``; writes ``RUN/eval_<split>_<checkpoint>/``
    (module docstring) and returns the metrics dict (with ``out_dir``).

    Args:
        run: the run directory, or a :class:`~multimodal_har.engine.Run` already loaded
            (then ``checkpoint`` and ``device`` are its own and these arguments are unused).
        checkpoint: ``best``, ``last`` or the path of a ``.pt`` file.
        batch_size: default: the run's evaluation batch size.
    """
    from .model import subset_key

    if not isinstance(run, Run):
        run = load_run(run, checkpoint=checkpoint, device=device)
    model, dev, classes = run.model, run.device, run.classes
    loader = run.loader(run.dataset(split), batch_size)

    def fn(batch):
        batch = to_device(batch, dev)
        with autocast(dev, run.amp):
            return model.subset_logits(batch["inputs"], batch["present"])

    ids, labels, _, outs = predict(fn, loader, Dist.local(dev), progress=not quiet and sys.stderr.isatty(), desc=split)
    ids, labels, outs = per_video(ids, labels, outs)
    run_dir = run.run_dir
    full = subset_key(model.modalities)
    C = len(classes)
    met = classification_metrics(outs[full], labels, C)
    out_dir = eval_dir(run_dir, split, run.checkpoint)
    out_dir.mkdir(parents=True, exist_ok=True)
    subsets = {}
    for key, logits in outs.items():
        m = classification_metrics(logits, labels, C)
        subsets[key] = {"top1": m["top1"], "top5": m["top5"], "mean_class_accuracy": m["mean_class_accuracy"]}
    summary = {"run": str(run_dir), "split": split, "checkpoint": run.checkpoint,
               "checkpoint_path": str(run.checkpoint_path), "epoch": run.epoch,
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
            w.writerow([name, *(f"{v:.6g}" for v in row)])
    save_confusion_png(met["confusion"], classes, out_dir / "confusion.png",
                       title=f"{run_dir.name} {split}: top-1 {met['top1']:.3f}")
    np.savez(out_dir / "logits.npz", ids=np.asarray(ids), labels=labels, classes=np.asarray(classes),
             modalities=np.asarray(model.modalities), **outs)
    return {**summary, "out_dir": str(out_dir)}


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{summary['run']} [{summary['split']}, {Path(summary['checkpoint_path']).name}, "
             f"epoch {summary['epoch']}]: "
             f"{summary['count']} samples  top-1 {summary['top1']:.4f}  top-5 {summary['top5']:.4f}  "
             f"mean class acc {summary['mean_class_accuracy']:.4f}"]
    if len(summary["subsets"]) > 1:
        lines.append("  modality subsets (top-1 / mean class acc):")
        for key, m in summary["subsets"].items():
            lines.append(f"    {key:30s} {m['top1']:.4f} / {m['mean_class_accuracy']:.4f}")
    return "\n".join(lines)


__all__ = ["classification_metrics", "eval_dir", "evaluate_run", "format_summary", "per_class_report", "per_video",
           "save_confusion_png"]
