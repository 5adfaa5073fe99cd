"""One top-1 for the package: tie-aware, by hand; the confusion matrix and report agree with it."""

import numpy as np
import pytest

from multimodal_har import ablation, metrics
from multimodal_har.metrics import (classification_metrics, confusion_matrix, correctness, per_class_report,
                                    top1_weights, topk_correctness)


def test_ties_count_a_fraction():
    logits = np.array([[1.0, 1.0, 0.0],    # label 0, tied with 1: 1/2
                       [2.0, 2.0, 2.0],    # uniform: 1/3
                       [0.0, 5.0, 1.0],    # right
                       [3.0, 0.0, 3.0]])   # label 1, not among the tied: 0
    labels = np.array([0, 2, 1, 1])
    np.testing.assert_allclose(correctness(logits, labels), [0.5, 1 / 3, 1.0, 0.0])
    np.testing.assert_allclose(top1_weights(logits).sum(axis=1), 1.0)
    m = classification_metrics(logits, labels, 3)
    assert m["top1"] == pytest.approx((0.5 + 1 / 3 + 1) / 4)  # argmax would say 0.5 (rows 1 and 2 "right")
    conf = confusion_matrix(logits, labels, 3)
    np.testing.assert_allclose(conf, [[0.5, 0.5, 0], [0.5, 1.0, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(conf, m["confusion"])
    np.testing.assert_allclose(conf.sum(axis=1), np.bincount(labels, minlength=3))  # rows keep their support
    assert m["mean_class_accuracy"] == pytest.approx(np.mean([0.5, 1.0 / 2, 1 / 3]))  # diag / support


def test_top_k_is_tie_aware_too():
    logits = np.array([[5.0, 4.0, 3.0, 3.0, 3.0, 0.0],   # label 3: 2 above, 3 tied for places 3-5 of k=3: 1/3
                       [5.0, 4.0, 3.0, 3.0, 3.0, 0.0],   # the same with k=4: 2/3
                       [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],   # uniform, k=3: 3/6
                       [9.0, 8.0, 7.0, 6.0, 5.0, 4.0],   # label 5 ranked 6th: 0 for k < 6
                       [np.nan, 1.0, 2.0, 3.0, 4.0, 5.0]])
    labels = np.array([3, 3, 2, 5, 5])
    np.testing.assert_allclose(topk_correctness(logits[[0, 2, 3, 4]], labels[[0, 2, 3, 4]], 3), [1 / 3, 0.5, 0, 0])
    np.testing.assert_allclose(topk_correctness(logits[:2], labels[:2], 4), [2 / 3, 2 / 3])
    np.testing.assert_allclose(topk_correctness(logits, labels, 6)[:4], 1.0)
    rng = np.random.default_rng(0)  # k = 1 is the tie-aware top-1
    x, y = rng.integers(0, 3, (200, 4)).astype(float), rng.integers(0, 4, 200)
    np.testing.assert_allclose(topk_correctness(x, y, 1), correctness(x, y))
    # without ties it is the usual top-k
    z = rng.normal(size=(200, 8))
    top5 = (np.argsort(-z, axis=1)[:, :5] == y[:, None]).any(axis=1)
    np.testing.assert_array_equal(topk_correctness(z, y, 5), top5)
    assert classification_metrics(z, y, 8)["top5"] == pytest.approx(top5.mean())


def test_uniform_logits_score_chance():
    C = 5
    m = classification_metrics(np.zeros((10, C)), np.arange(10) % C, C)
    assert m["top1"] == pytest.approx(1 / C) and m["mean_class_accuracy"] == pytest.approx(1 / C)


def test_report_counts_whole_without_ties_and_fractions_with():
    rows = per_class_report(confusion_matrix(np.eye(3), np.array([0, 1, 2]), 3), list("abc"))
    assert rows[0] == {"class": "a", "index": 0, "support": 1, "correct": 1, "accuracy": 1.0, "precision": 1.0,
                       "f1": 1.0}
    assert isinstance(rows[0]["support"], int) and isinstance(rows[0]["correct"], int)
    tied = per_class_report(confusion_matrix(np.array([[1.0, 1.0]]), np.array([0]), 2), list("ab"))
    assert tied[0]["correct"] == 0.5 and tied[0]["support"] == 1 and tied[1]["precision"] == 0.0


def test_a_nan_prediction_is_wrong_and_unlabelled_samples_are_left_out():
    logits = np.array([[np.nan, 0.0], [0.0, 1.0], [5.0, 0.0]])
    labels = np.array([0, 1, -1])
    m = classification_metrics(logits, labels, 2)
    assert m["count"] == 2 and m["top1"] == 0.5


def test_the_ablation_uses_the_same_definition():
    assert ablation.correctness is metrics.correctness and ablation.METRICS["accuracy"] is metrics.correctness
    rng = np.random.default_rng(0)
    logits = rng.integers(0, 3, (50, 4)).astype(np.float64)  # many ties
    labels = rng.integers(0, 4, 50)
    assert classification_metrics(logits, labels, 4)["top1"] == pytest.approx(correctness(logits, labels).mean())
