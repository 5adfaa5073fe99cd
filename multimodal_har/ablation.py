"""Modality ablation: how much each modality contributes, read from the logits of every subset.

Input: ``mhar evaluate``'s ``logits.npz`` (:func:`load_subset_logits`): per-sample logits of a
trained model for every non-empty subset of its ``M`` modalities, each evaluated through the
model's missing-modality path. Everything here is exact (every subset, every coalition; no
Monte-Carlo permutation sampling) and pure numpy; only the confidence intervals resample.

The cooperative game. Subset ``S`` is a bitmask over the modalities in model order (bit ``i``
= ``modalities[i]``; ``K = 2**M`` subsets, index 0 the empty set). ``v(S)`` is the mean over
test samples of a per-sample metric of ``S``'s logits: ``"accuracy"`` (top-1 correctness;
with a tie for the top score the expected correctness under random tie-breaking, so uniform
logits score exactly ``1/C``) or ``"log_prob"`` (log-probability of the true class), or any
callable ``(logits (N, C), labels (N,)) -> (N,)``. ``average="class"`` averages per class
first (mean class accuracy for ``"accuracy"``). The empty set has no logits; its value is
that of a fixed baseline predictor, ``baseline=``

* ``"uniform"`` (default): uniform logits, i.e. chance: ``v(empty) = 1/C`` for accuracy,
  ``log(1/C)`` for log-probability;
* ``"prior"``: the class frequencies of the evaluated samples (the best constant predictor in
  hindsight): the majority-class rate for accuracy;
* a float: that value for every sample.

Quantities, all linear maps of the value vector ``v (K,)`` (so they are precomputed matrices
applied to thousands of bootstrap resamples at once):

* Shapley value (Shapley 1953): ``phi_i = sum_{S not containing i} |S|! (M-|S|-1)! / M!
  * (v(S + i) - v(S))``; efficiency: ``sum_i phi_i = v(all) - v(empty)``.
* Shapley interaction index (Grabisch & Roubens, "An axiomatic approach to the concept of
  interaction among players in cooperative games", IJGT 1999), for a pair ``i != j``:
  ``I_ij = sum_{S subset of N minus {i, j}} |S|! (M-|S|-2)! / (M-1)!
  * (v(S+i+j) - v(S+i) - v(S+j) + v(S))``; positive: complementary modalities (worth more
  together), negative: redundant ones. The diagonal holds ``phi_i`` (the index of a singleton
  is the Shapley value). Zero for every pair of an additive game.
* Leave-one-out: ``v(all) - v(all minus i)``.
* Random modality dropout: mean of ``v`` over the subsets of each size (the expected value
  when ``k`` modalities, chosen uniformly, are dropped).

Confidence intervals: percentile bootstrap over test samples (resample ``N`` samples with
replacement, recompute ``v`` for every subset from the per-sample values, apply the maps),
seeded. The baseline predictor is fixed (``"prior"`` frequencies from all samples).

Per-class contributions: the Shapley values of the game ``v_c(S)`` = mean metric over the
samples of class ``c`` (recall for accuracy) -> ``(C, M)``. Since ``v = sum_c (n_c / N) v_c``
for ``average="sample"`` (and ``v = mean_c v_c`` over the classes present for
``average="class"``) and the Shapley value is linear in the game, the support-weighted sum (the
plain mean) of the per-class rows equals the overall Shapley values exactly.

The corruption robustness curve needs the model: :func:`corruption_curve` takes a callable;
the corruptions themselves are in :mod:`multimodal_har.corruptions`. Figures:
:mod:`multimodal_har.ablation_plots`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np

from multimodal_har.atomic import atomic_write_text
from multimodal_har.metrics import correctness, true_log_prob

MAX_MODALITIES = 12  # 4096 subsets; the (M, M, K) interaction map is then ~1.2M floats
EMPTY_KEY = "(none)"  # the empty subset's name in tables
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)  # default corruption strengths of the robustness curves
Metric = Union[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]


# ---------------------------------------------------------------------------- subsets
def subset_key(modalities: Sequence[str], mask: int) -> str:
    """Bitmask -> name (``"rgb+audio"``, modality order; ``EMPTY_KEY`` for 0), the keys of
    ``logits.npz`` (:func:`multimodal_har.model.subset_key`)."""
    names = [m for i, m in enumerate(modalities) if mask >> i & 1]
    return "+".join(names) if names else EMPTY_KEY


def subset_sizes(num_modalities: int) -> np.ndarray:
    """``(K,)`` number of modalities in each subset bitmask ``0 .. 2**M - 1``."""
    masks = np.arange(1 << num_modalities)
    return ((masks[:, None] >> np.arange(num_modalities)) & 1).sum(axis=1)


def _num_modalities(v: np.ndarray) -> int:
    K = v.shape[-1]
    M = K.bit_length() - 1
    if K < 2 or K != 1 << M:
        raise ValueError(f"a game over M modalities has 2**M values (index: subset bitmask), got {K}")
    return M


def game_vector(values: Mapping[str, float], modalities: Sequence[str], empty: float) -> np.ndarray:
    """``{"rgb": 0.6, "rgb+audio": 0.8, ...}`` (every non-empty subset, e.g. the ``subsets``
    top-1 of ``metrics.json``) and ``v(empty)`` -> the value vector ``(2**M,)``."""
    M = len(modalities)
    v = np.empty(1 << M)
    v[0] = empty
    missing = [subset_key(modalities, s) for s in range(1, 1 << M) if subset_key(modalities, s) not in values]
    if missing:
        raise ValueError(f"values lack {len(missing)} subset(s): {', '.join(missing[:8])}")
    for s in range(1, 1 << M):
        v[s] = float(values[subset_key(modalities, s)])
    return v


# ---------------------------------------------------------------------------- linear maps
def shapley_matrix(num_modalities: int) -> np.ndarray:
    """``(M, K)`` ``W`` with ``phi = W @ v`` (module docstring): coefficient of ``v(T)`` is
    ``+w(|T|-1)`` if ``i`` is in ``T``, else ``-w(|T|)``, ``w(s) = s! (M-s-1)! / M!``."""
    M = num_modalities
    w = np.array([math.factorial(s) * math.factorial(M - s - 1) / math.factorial(M) for s in range(M)] + [0.0])
    size = subset_sizes(M)  # (K,)
    has = (np.arange(1 << M)[None, :] >> np.arange(M)[:, None]) & 1  # (M, K)
    return np.where(has == 1, w[np.maximum(size - 1, 0)], -w[np.minimum(size, M)])


def interaction_matrix(num_modalities: int) -> np.ndarray:
    """``(M, M, K)`` ``I`` with ``interactions = I @ v`` (Grabisch-Roubens, module docstring).
    Off the diagonal the coefficient of ``v(T)`` is ``w2(|T minus {i,j}|)``, signed ``+`` when
    ``T`` holds both or neither of ``i, j`` and ``-`` when one, ``w2(s) = s! (M-s-2)! / (M-1)!``;
    the diagonal is :func:`shapley_matrix`."""
    M = num_modalities
    out = np.zeros((M, M, 1 << M))
    w2 = np.array([math.factorial(s) * math.factorial(M - s - 2) / math.factorial(M - 1) for s in range(M - 1)])
    size = subset_sizes(M)
    has = (np.arange(1 << M)[None, :] >> np.arange(M)[:, None]) & 1  # (M, K)
    for i in range(M):
        for j in range(i + 1, M):
            rest = size - has[i] - has[j]  # |T minus {i, j}|, in 0 .. M-2
            sign = np.where(has[i] == has[j], 1.0, -1.0)
            out[i, j] = out[j, i] = sign * w2[rest]
    out[np.arange(M), np.arange(M)] = shapley_matrix(M)
    return out


def loo_matrix(num_modalities: int) -> np.ndarray:
    """``(M, K)``: ``delta_i = v(all) - v(all minus i)``."""
    M = num_modalities
    full = (1 << M) - 1
    out = np.zeros((M, 1 << M))
    out[:, full] = 1.0
    out[np.arange(M), full ^ (1 << np.arange(M))] -= 1.0
    return out


def dropout_matrix(num_modalities: int) -> np.ndarray:
    """``(M+1, K)``: row ``k`` averages ``v`` over the subsets of size ``M - k`` (``k``
    modalities dropped uniformly at random; row ``M`` is ``v(empty)``)."""
    M = num_modalities
    size = subset_sizes(M)
    out = np.stack([(size == M - k).astype(float) for k in range(M + 1)])
    return out / out.sum(axis=1, keepdims=True)


def shapley_values(v: np.ndarray) -> np.ndarray:
    """Game ``v (2**M,)`` (index: subset bitmask) -> exact Shapley values ``(M,)``."""
    v = np.asarray(v, dtype=np.float64)
    return shapley_matrix(_num_modalities(v)) @ v


def interaction_index(v: np.ndarray) -> np.ndarray:
    """Game ``v (2**M,)`` -> ``(M, M)`` Shapley interaction indices (diagonal: Shapley values)."""
    v = np.asarray(v, dtype=np.float64)
    return interaction_matrix(_num_modalities(v)) @ v


def leave_one_out(v: np.ndarray) -> np.ndarray:
    """Game ``v (2**M,)`` -> ``(M,)`` ``v(all) - v(all minus i)``."""
    v = np.asarray(v, dtype=np.float64)
    return loo_matrix(_num_modalities(v)) @ v


def dropout_curve(v: np.ndarray) -> np.ndarray:
    """Game ``v (2**M,)`` -> ``(M+1,)`` mean value with ``k = 0 .. M`` modalities dropped."""
    v = np.asarray(v, dtype=np.float64)
    return dropout_matrix(_num_modalities(v)) @ v


# ---------------------------------------------------------------------------- data
@dataclass
class SubsetLogits:
    """The contents of ``logits.npz``: ``ids (N,)``, ``labels (N,)`` (``-1``: unlabelled),
    ``classes (C,)``, ``modalities (M,)`` in model order, and ``logits[key] (N, C)`` for every
    non-empty subset ``key`` (:func:`subset_key`)."""

    ids: np.ndarray
    labels: np.ndarray
    classes: list[str]
    modalities: list[str]
    logits: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels)
        self.ids = np.asarray(self.ids)
        self.classes, self.modalities = [str(c) for c in self.classes], [str(m) for m in self.modalities]
        N, C, M = len(self.labels), len(self.classes), len(self.modalities)
        if self.labels.ndim != 1 or not np.issubdtype(self.labels.dtype, np.integer):
            raise ValueError(f"labels must be (N,) integers, got {self.labels.dtype} {self.labels.shape}")
        if len(self.ids) != N:
            raise ValueError(f"ids has {len(self.ids)} entries, labels {N}")
        if N and (self.labels.min() < -1 or self.labels.max() >= C):
            raise ValueError(f"labels must be in [-1, {C}) for {C} classes, got {self.labels.min()}..{self.labels.max()}")
        if not 1 <= M <= MAX_MODALITIES:
            raise ValueError(f"expected 1 to {MAX_MODALITIES} modalities, got {M}")
        if len(set(self.modalities)) != M or any("+" in m or not m for m in self.modalities):
            raise ValueError(f"modality names must be unique, non-empty and without '+', got {self.modalities}")
        keys = [subset_key(self.modalities, s) for s in range(1, 1 << M)]
        missing = [k for k in keys if k not in self.logits]
        if missing:
            raise ValueError(f"no logits for {len(missing)} of the {len(keys)} subsets of {self.modalities}: "
                             f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''} (keys: names in "
                             f"model order joined by '+'; have {sorted(self.logits)[:8]})")
        for k in keys:
            a = np.asarray(self.logits[k])
            if a.shape != (N, C):
                raise ValueError(f"logits[{k!r}] must be (N, C) = ({N}, {C}), got {a.shape}")
            if not np.isfinite(a).all():
                raise ValueError(f"logits[{k!r}] has {int((~np.isfinite(a)).sum())} NaN/inf values")
        self.logits = {k: np.asarray(self.logits[k]) for k in keys}

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def of(self, mask: int) -> np.ndarray:
        """Logits ``(N, C)`` of the subset bitmask ``mask`` (``>= 1``)."""
        return self.logits[subset_key(self.modalities, mask)]

    def labelled(self) -> "SubsetLogits":
        """The samples with a label (``>= 0``)."""
        keep = self.labels >= 0
        return SubsetLogits(self.ids[keep], self.labels[keep], self.classes, self.modalities,
                            {k: a[keep] for k, a in self.logits.items()})


def load_subset_logits(path: Union[str, Path]) -> SubsetLogits:
    """Read ``mhar evaluate``'s ``logits.npz`` (validated: every non-empty subset present, shapes,
    finite values, label range). Arrays other than the subsets and the four fields are ignored."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected RUN/eval_<split>_<checkpoint>/logits.npz from mhar evaluate)")
    with np.load(path, allow_pickle=False) as z:
        need = [k for k in ("ids", "labels", "classes", "modalities") if k not in z.files]
        if need:
            raise ValueError(f"{path} lacks {', '.join(need)}: not a logits.npz of mhar evaluate")
        mods = [str(m) for m in z["modalities"]]
        logits = {k: z[k] for k in z.files if k not in ("ids", "labels", "classes", "modalities")}
        return SubsetLogits(z["ids"], z["labels"], list(z["classes"]), mods, logits)


# ---------------------------------------------------------------------------- per-sample values
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "accuracy": correctness, "log_prob": true_log_prob}


def _metric_fn(metric: Metric) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    if callable(metric):
        return metric
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)} or pass a callable")
    return METRICS[metric]


def baseline_logits(labels: np.ndarray, num_classes: int, baseline: str) -> np.ndarray:
    """The empty set's predictor as logits ``(N, C)``: ``"uniform"`` zeros, ``"prior"`` the log
    class frequencies of ``labels``."""
    if baseline == "uniform":
        return np.zeros((len(labels), num_classes))
    if baseline == "prior":
        freq = np.bincount(labels, minlength=num_classes) / max(len(labels), 1)
        with np.errstate(divide="ignore"):
            return np.broadcast_to(np.log(freq), (len(labels), num_classes))
    raise ValueError(f"baseline must be 'uniform', 'prior' or a float, got {baseline!r}")


def sample_values(data: SubsetLogits, metric: Metric = "accuracy",
                  baseline: Union[str, float] = "uniform") -> np.ndarray:
    """Per-sample metric of every subset ``(N, K)``, column = subset bitmask (0: the baseline)."""
    labels = data.labels
    if (labels < 0).any():
        raise ValueError(f"{int((labels < 0).sum())} unlabelled samples (label -1): use data.labelled()")
    fn, M, N = _metric_fn(metric), len(data.modalities), len(labels)
    out = np.empty((N, 1 << M))
    if isinstance(baseline, str):
        out[:, 0] = fn(baseline_logits(labels, data.num_classes, baseline), labels)
    else:
        out[:, 0] = float(baseline)
    for s in range(1, 1 << M):
        out[:, s] = fn(np.asarray(data.of(s), dtype=np.float64), labels)
    if out.shape != (N, 1 << M) or not np.isfinite(out).all():
        raise ValueError(f"metric {metric!r} gave non-finite per-sample values")
    return out


def per_class_values(values: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``values (N, K)``, ``labels (N,)`` -> ``(C, K)`` class means (NaN for a class absent)."""
    onehot = np.eye(num_classes)[labels]  # (N, C)
    n = onehot.sum(axis=0)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, onehot.T @ values / n, np.nan)


def game_values(values: np.ndarray, labels: Optional[np.ndarray] = None, *, num_classes: Optional[int] = None,
                average: str = "sample") -> np.ndarray:
    """``values (N, K)`` -> ``v (K,)``: the sample mean (``average="sample"``) or the mean over
    the classes present of the class means (``"class"``, needs ``labels``, ``num_classes``)."""
    if average == "sample":
        return values.mean(axis=0)
    if average == "class":
        if labels is None or num_classes is None:
            raise ValueError("average='class' needs labels and num_classes")
        return np.nanmean(per_class_values(values, labels, num_classes), axis=0)
    raise ValueError(f"average must be 'sample' or 'class', got {average!r}")


def bootstrap_game_values(values: np.ndarray, labels: np.ndarray, *, num_classes: int, average: str = "sample",
                          n_resamples: int = 1000, seed: int = 0, chunk: int = 128) -> np.ndarray:
    """``(R, K)`` game values of ``R`` bootstrap resamples of the ``N`` samples (multinomial
    counts: resampling with replacement), seeded; ``chunk`` resamples at a time bounds memory
    (results depend on it: keep the default for reproducibility)."""
    N, K = values.shape
    if N == 0:
        raise ValueError("no samples to bootstrap")
    rng = np.random.default_rng(seed)
    p = np.full(N, 1.0 / N)
    onehot = np.eye(num_classes)[labels]  # (N, C)
    out = np.empty((n_resamples, K))
    for a in range(0, n_resamples, chunk):
        W = rng.multinomial(N, p, size=min(chunk, n_resamples - a)).astype(np.float64)  # (r, N)
        if average == "sample":
            out[a:a + len(W)] = W @ values / N
        else:  # mean over the classes present in each resample of the class means
            n = W @ onehot  # (r, C)
            total, present = np.zeros((len(W), K)), np.zeros((len(W), 1))
            for c in np.flatnonzero(onehot.sum(axis=0)):
                idx = labels == c
                sums = W[:, idx] @ values[idx]  # (r, K)
                ok = n[:, c:c + 1] > 0
                total += np.where(ok, sums / np.maximum(n[:, c:c + 1], 1), 0.0)
                present += ok
            out[a:a + len(W)] = total / present
    return out


# ---------------------------------------------------------------------------- the analysis
@dataclass
class AblationResult:
    """Everything :func:`analyze` computes; ``*_ci`` are ``(..., 2)`` (low, high) percentile
    bounds (NaN without bootstrap). Subset arrays are indexed by bitmask (0: the empty set)."""

    modalities: list[str]
    classes: list[str]
    metric: str
    baseline: str
    average: str
    n_samples: int
    n_resamples: int
    ci: float
    seed: int
    keys: list[str]
    sizes: np.ndarray            # (K,)
    value: np.ndarray            # (K,) v(S), the game
    value_ci: np.ndarray         # (K, 2)
    top1: np.ndarray             # (K,) top-1 accuracy (tie-aware; the baseline's for the empty set)
    mean_class_accuracy: np.ndarray  # (K,)
    shapley: np.ndarray          # (M,)
    shapley_ci: np.ndarray       # (M, 2)
    loo: np.ndarray              # (M,)
    loo_ci: np.ndarray           # (M, 2)
    interactions: np.ndarray     # (M, M), diagonal = shapley
    interactions_ci: np.ndarray  # (M, M, 2)
    per_class: np.ndarray        # (C, M) per-class Shapley (NaN rows: class absent)
    class_support: np.ndarray    # (C,)
    dropout: np.ndarray          # (M+1,) mean v with k modalities dropped
    dropout_ci: np.ndarray       # (M+1, 2)
    dropout_top1: np.ndarray     # (M+1,) the same for top-1 accuracy
    corruption: list[dict[str, Any]] = field(default_factory=list)  # rows of corruption_curve

    def subset_rows(self) -> list[dict[str, Any]]:
        return [{"subset": k, "size": int(s), "value": v, "value_lo": lo, "value_hi": hi, "top1": t,
                 "mean_class_accuracy": m}
                for k, s, v, (lo, hi), t, m in zip(self.keys, self.sizes, self.value, self.value_ci, self.top1,
                                                   self.mean_class_accuracy)]

    def modality_rows(self) -> list[dict[str, Any]]:
        return [{"modality": m, "shapley": self.shapley[i], "shapley_lo": self.shapley_ci[i, 0],
                 "shapley_hi": self.shapley_ci[i, 1], "loo": self.loo[i], "loo_lo": self.loo_ci[i, 0],
                 "loo_hi": self.loo_ci[i, 1]} for i, m in enumerate(self.modalities)]

    def interaction_rows(self) -> list[dict[str, Any]]:
        M = len(self.modalities)
        return [{"a": self.modalities[i], "b": self.modalities[j], "interaction": self.interactions[i, j],
                 "lo": self.interactions_ci[i, j, 0], "hi": self.interactions_ci[i, j, 1]}
                for i in range(M) for j in range(i + 1, M)]

    def per_class_rows(self) -> list[dict[str, Any]]:
        return [{"class": c, "support": int(n), **{m: self.per_class[k, i] for i, m in enumerate(self.modalities)}}
                for k, (c, n) in enumerate(zip(self.classes, self.class_support))]

    def dropout_rows(self) -> list[dict[str, Any]]:
        M = len(self.modalities)
        return [{"dropped": k, "kept": M - k, "subsets": math.comb(M, k), "value": self.dropout[k],
                 "value_lo": self.dropout_ci[k, 0], "value_hi": self.dropout_ci[k, 1], "top1": self.dropout_top1[k]}
                for k in range(M + 1)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN -> None)."""
        return _jsonable({
            "modalities": self.modalities, "classes": self.classes, "metric": self.metric,
            "baseline": self.baseline, "average": self.average, "n_samples": self.n_samples,
            "n_resamples": self.n_resamples, "ci": self.ci, "seed": self.seed,
            "subsets": self.subset_rows(), "modality": self.modality_rows(),
            "interactions": self.interaction_rows(), "interaction_matrix": self.interactions.tolist(),
            "per_class": self.per_class_rows(), "dropout": self.dropout_rows(), "corruption": self.corruption})


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(x) else float(x)
    return x


def analyze(data: SubsetLogits, *, metric: Metric = "accuracy", baseline: Union[str, float] = "uniform",
            average: str = "sample", n_resamples: int = 1000, ci: float = 0.95, seed: int = 0) -> AblationResult:
    """The whole study from the subset logits (module docstring); unlabelled samples are
    dropped. ``n_resamples=0`` skips the bootstrap (NaN intervals)."""
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be >= 0, got {n_resamples}")
    data = data.labelled()
    if len(data.labels) == 0:
        raise ValueError("no labelled samples to analyse")
    M, C, labels = len(data.modalities), data.num_classes, data.labels
    values = sample_values(data, metric, baseline)  # (N, K)
    # top-1 accuracy of every subset, shown beside v whatever the metric (the float baseline
    # of another metric has no accuracy: chance 1/C then)
    acc_base = baseline if isinstance(baseline, str) else "uniform"
    acc = values if metric == "accuracy" and isinstance(baseline, str) else sample_values(data, "accuracy", acc_base)
    v = game_values(values, labels, num_classes=C, average=average)
    maps = {"value": np.eye(1 << M), "shapley": shapley_matrix(M), "loo": loo_matrix(M),
            "interactions": interaction_matrix(M).reshape(M * M, -1), "dropout": dropout_matrix(M)}
    point = {k: L @ v for k, L in maps.items()}
    if n_resamples:
        V = bootstrap_game_values(values, labels, num_classes=C, average=average, n_resamples=n_resamples, seed=seed)
        q = [(1 - ci) / 2, (1 + ci) / 2]
        bounds = {k: np.quantile(V @ L.T, q, axis=0).T for k, L in maps.items()}  # (P, 2)
    else:
        bounds = {k: np.full((len(L), 2), np.nan) for k, L in maps.items()}
    per_class_v = per_class_values(values, labels, C)  # (C, K)
    return AblationResult(
        modalities=list(data.modalities), classes=list(data.classes),
        metric=metric if isinstance(metric, str) else getattr(metric, "__name__", "custom"),
        baseline=str(baseline), average=average, n_samples=len(labels), n_resamples=n_resamples, ci=ci, seed=seed,
        keys=[subset_key(data.modalities, s) for s in range(1 << M)], sizes=subset_sizes(M),
        value=point["value"], value_ci=bounds["value"], top1=acc.mean(axis=0),
        mean_class_accuracy=np.nanmean(per_class_values(acc, labels, C), axis=0),
        shapley=point["shapley"], shapley_ci=bounds["shapley"], loo=point["loo"], loo_ci=bounds["loo"],
        interactions=point["interactions"].reshape(M, M), interactions_ci=bounds["interactions"].reshape(M, M, 2),
        per_class=per_class_v @ shapley_matrix(M).T, class_support=np.bincount(labels, minlength=C),
        dropout=point["dropout"], dropout_ci=bounds["dropout"], dropout_top1=dropout_curve(acc.mean(axis=0)))


# ---------------------------------------------------------------------------- robustness
def corruption_curve(evaluate: Callable[[str, float], float], corruptions: Sequence[str],
                     strengths: Sequence[float] = STRENGTHS) -> list[dict[str, Any]]:
    """Rows ``{"corruption", "strength", "accuracy"}`` for every corruption and strength, from
    ``evaluate(corruption, strength) -> accuracy`` (it runs the model on corrupted inputs, e.g.
    with :func:`multimodal_har.corruptions.corrupt_batch`). Strength 0 is the clean input:
    evaluated once and shared by all corruptions."""
    strengths = [float(s) for s in strengths]
    if not corruptions or not strengths or any(not 0.0 <= s <= 1.0 for s in strengths):
        raise ValueError(f"need corruption names and strengths in [0, 1], got {list(corruptions)}, {strengths}")
    rows, clean = [], None
    for c in corruptions:
        for s in strengths:
            if s == 0.0:
                clean = float(evaluate(c, 0.0)) if clean is None else clean
                acc = clean
            else:
                acc = float(evaluate(c, s))
            if not math.isfinite(acc):
                raise ValueError(f"evaluate({c!r}, {s}) returned {acc}")
            rows.append({"corruption": c, "strength": s, "accuracy": acc})
    return rows


# ---------------------------------------------------------------------------- report
def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows([{k: ("" if isinstance(x, float) and not math.isfinite(x) else x) for k, x in r.items()}
                     for r in rows])
    return buf.getvalue()


def write_report(result: AblationResult, out_dir: Union[str, Path]) -> dict[str, Path]:
    """Write ``ablation.json`` (everything) and the CSV tables ``subsets``, ``shapley`` (with
    leave-one-out), ``interactions``, ``per_class``, ``dropout`` and, if any, ``corruption``
    into ``out_dir``, each atomically (temp name then ``os.replace``). Returns name -> path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {"subsets": result.subset_rows(), "shapley": result.modality_rows(),
              "interactions": result.interaction_rows(), "per_class": result.per_class_rows(),
              "dropout": result.dropout_rows()}
    if result.corruption:
        tables["corruption"] = result.corruption
    paths = {}
    for name, rows in tables.items():
        paths[name] = out / f"{name}.csv"
        atomic_write_text(paths[name], _csv(rows))
    paths["json"] = out / "ablation.json"
    atomic_write_text(paths["json"], json.dumps(result.to_dict(), indent=2))
    return paths
