"""Classification metrics, with one definition of top-1 for the whole package.

**Top-1 is tie-aware**: a sample whose top score is shared by ``k`` classes counts ``1 / k``
when its label is among them (the expected accuracy under random tie-breaking), so that a
model that outputs uniform logits scores ``1 / C`` rather than whatever ``argmax`` happens to
pick first (class 0). Training's ``train_top1`` and validation (``metrics.jsonl``),
``mhar evaluate`` (``metrics.json``, the per-class report, the confusion matrix) and the
ablation (:mod:`multimodal_har.ablation`) all read it from :func:`correctness`. The
confusion matrix spreads a tied sample the same way (its row still sums to the class's
support), so its diagonal over the row sums is the per-class top-1.

Top-5 (top-``min(5, C)``) is tie-aware the same way (:func:`topk_correctness`): classes tied
with the label at the edge of the top ``k`` share the places left.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def top1_weights(logits: np.ndarray) -> np.ndarray:
    """``(N, C)`` -> ``(N, C)``: each row's top-1 prediction as weights summing to 1, spread
    evenly over the classes tied for the top score; a row with a NaN has no top score and
    all-zero weights (it predicts nothing, so it counts as wrong)."""
    logits = np.asarray(logits)
    top = (logits == logits.max(axis=1, keepdims=True)).astype(np.float64)  # (N, C)
    return top / np.maximum(top.sum(axis=1, keepdims=True), 1.0)


def correctness(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(N, C)``, ``(N,)`` -> ``(N,)`` tie-aware top-1 correctness in [0, 1] (module docstring);
    every label must be a class index (filter unlabelled ``-1`` samples first)."""
    labels = np.asarray(labels, dtype=np.int64)
    return top1_weights(logits)[np.arange(len(labels)), labels]


def topk_correctness(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """``(N, C)``, ``(N,)`` -> ``(N,)`` tie-aware top-``k`` correctness in [0, 1]: with ``g``
    classes scoring above the label and ``e`` scoring the same (the label included), the
    probability that random tie-breaking ranks the label among the first ``k``:
    ``clip((k - g) / e, 0, 1)``. ``k = 1`` is :func:`correctness`; a row with a NaN is wrong."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    s = logits[np.arange(len(labels)), labels][:, None]  # (N, 1) the label's score
    above = (logits > s).sum(axis=1)
    tied = (logits == s).sum(axis=1)  # >= 1 unless the label's score is NaN
    out = np.clip((k - above) / np.maximum(tied, 1), 0.0, 1.0)
    return np.where(np.isnan(logits).any(axis=1), 0.0, out)


def true_log_prob(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(N, C)``, ``(N,)`` -> ``(N,)`` log-softmax probability of the true class."""
    z = logits - logits.max(axis=1, keepdims=True)
    return z[np.arange(len(labels)), labels] - np.log(np.exp(z).sum(axis=1))


def confusion_matrix(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` float64, rows the true class, columns the prediction, a tied sample spread
    over its tied classes (integer counts when there is no tie)."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.float64)
    np.add.at(confusion, np.asarray(labels, dtype=np.int64), top1_weights(logits))
    return confusion


def classification_metrics(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> dict[str, Any]:
    """``logits (N, C)``, ``labels (N,)`` (-1: unlabelled, ignored) -> ``top1`` (tie-aware),
    ``top5`` (top-min(5, C)), ``mean_class_accuracy`` (tie-aware, over the classes present in
    ``labels``), mean cross-entropy ``loss``, ``count`` and the ``(C, C)`` ``confusion``
    matrix (:func:`confusion_matrix`)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    keep = labels >= 0
    logits, labels = logits[keep], labels[keep]
    n = len(labels)
    if n == 0:
        return {"top1": float("nan"), "top5": float("nan"), "mean_class_accuracy": float("nan"),
                "loss": float("nan"), "count": 0, "confusion": np.zeros((num_classes, num_classes))}
    confusion = confusion_matrix(logits, labels, num_classes)
    support = np.bincount(labels, minlength=num_classes)
    seen = support > 0
    return {"top1": float(correctness(logits, labels).mean()),
            "top5": float(topk_correctness(logits, labels, min(5, num_classes)).mean()),
            "mean_class_accuracy": float((np.diag(confusion)[seen] / support[seen]).mean()),
            "loss": float(-true_log_prob(logits, labels).mean()), "count": int(n), "confusion": confusion}


def _count(x: float) -> float | int:
    """A count of the confusion matrix: an int when whole (no tie involved), else the float."""
    return int(round(x)) if abs(x - round(x)) < 1e-9 else float(x)


def per_class_report(confusion: np.ndarray, classes: list[str]) -> list[dict[str, Any]]:
    """One row per class: support, correct, accuracy (= recall), precision, F1 (``correct``
    is fractional where tied predictions were spread, see :func:`confusion_matrix`)."""
    rows = []
    for i, name in enumerate(classes):
        tp, support, predicted = float(confusion[i, i]), float(confusion[i].sum()), float(confusion[:, i].sum())
        rec = tp / support if support else float("nan")
        prec = tp / predicted if predicted else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if support and predicted and (prec + rec) > 0 else 0.0
        rows.append({"class": name, "index": i, "support": _count(support), "correct": _count(tp), "accuracy": rec,
                     "precision": prec, "f1": f1})
    return rows


__all__ = ["classification_metrics", "confusion_matrix", "correctness", "per_class_report", "top1_weights",
           "topk_correctness",
           "true_log_prob"]
