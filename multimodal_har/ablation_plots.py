"""Figures of the modality ablation (:mod:`multimodal_har.ablation`) and attention maps.

Matplotlib with the Agg backend (no display needed), imported when a function is called.
Every function returns the ``Figure`` and, given ``path``, also saves it as PNG (atomically:
temp name then ``os.replace``). Close figures you do not keep (``plt.close(fig)``).

The figures of values read from the subset table (Shapley / leave-one-out, lattice,
per-class, interactions, the dropping curve, the subset confusions) take ``banner``: a
warning drawn as the figure's title in white on red (``fig.get_suptitle()``), which
:func:`~multimodal_har.ablation_run.run_ablation` sets when the subset logits come from paths
the model never trained (:func:`~multimodal_har.ablation_run.subset_path_reliability`).

* :func:`plot_shapley`: Shapley values and leave-one-out deltas with their bootstrap CIs.
* :func:`plot_subset_lattice`: every subset as a row of a membership grid coloured by its
  value, beside the lattice (Hasse diagram: subset size vs value, edges add one modality).
* :func:`plot_per_class`: the ``(C, M)`` per-class Shapley map; :func:`plot_interactions`:
  the pairwise interaction map.
* :func:`plot_robustness`: value vs modalities dropped, and accuracy vs corruption strength.
* :func:`plot_confusions`: row-normalised confusion matrices of chosen subsets;
  :func:`plot_confusion`: one matrix with its counts (``mhar evaluate``).
* :func:`plot_temporal_attention`, :func:`plot_spatial_attention`,
  :func:`plot_cross_attention`: attention weights drawn over frames / time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from multimodal_har.atomic import atomic_path

from .ablation import AblationResult, SubsetLogits
from .metrics import confusion_matrix, correctness

PathLike = Union[str, Path, None]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _banner(fig, banner: Optional[str]) -> None:
    """``banner`` as the figure's title, white on a red box (a warning no one reads past)."""
    if banner:
        import textwrap

        text = textwrap.fill(banner, width=max(24, int(13 * fig.get_figwidth())))  # ~13 bold 9 pt chars per inch
        fig.suptitle(text, color="white", fontsize=9, fontweight="bold",
                     bbox={"boxstyle": "square,pad=0.35", "facecolor": "red", "edgecolor": "darkred"})


def _finish(fig, path: PathLike, banner: Optional[str] = None):
    _banner(fig, banner)
    fig.tight_layout()
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    return fig


def _err(point: np.ndarray, ci: np.ndarray) -> Optional[np.ndarray]:
    """``(n,)`` and ``(n, 2)`` -> matplotlib's ``(2, n)`` yerr, or None without intervals."""
    if np.isnan(ci).all():
        return None
    return np.abs(np.stack([point - ci[:, 0], ci[:, 1] - point]))


def _metric_label(result: AblationResult) -> str:
    name = {"accuracy": "accuracy", "log_prob": "log p(true class)"}.get(result.metric, result.metric)
    return f"mean class {name}" if result.average == "class" else name


def plot_shapley(result: AblationResult, path: PathLike = None, *, show_loo: bool = True,
                 banner: Optional[str] = None):
    """Bars: each modality's Shapley value (and leave-one-out delta) with CI error bars;
    ``banner``: a red warning title (see the module docstring)."""
    plt = _plt()
    M = len(result.modalities)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * M + 2), 3.6))
    x = np.arange(M)
    width = 0.38 if show_loo else 0.6
    ax.bar(x - (width / 2 if show_loo else 0), result.shapley, width, yerr=_err(result.shapley, result.shapley_ci),
           capsize=4, label="Shapley", color="tab:blue")
    if show_loo:
        ax.bar(x + width / 2, result.loo, width, yerr=_err(result.loo, result.loo_ci), capsize=4,
               label="leave-one-out", color="tab:orange")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, result.modalities)
    ax.set_ylabel(f"contribution to {_metric_label(result)}")
    span = result.value[-1] - result.value[0]
    ci = f", {100 * result.ci:.0f}% bootstrap CI" if result.n_resamples else ""
    ax.set_title(f"v(all) - v(none) = {span:.3f}{ci}", fontsize=9)
    ax.legend(fontsize=8)
    return _finish(fig, path, banner)


def plot_subset_lattice(result: AblationResult, path: PathLike = None, *, banner: Optional[str] = None):
    """Left: membership grid (rows: subsets by size then value; filled cells coloured by the
    subset's value). Right: the subset lattice, subset size vs value, with an edge from each
    subset to every subset with one more modality."""
    plt = _plt()
    M, K = len(result.modalities), len(result.keys)
    order = sorted(range(K), key=lambda s: (result.sizes[s], -result.value[s]))
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(4 + 0.5 * M + 5, max(3.5, 0.22 * K + 1)),
                                   gridspec_kw={"width_ratios": [M + 2, 6]})
    grid = np.full((K, M), np.nan)
    for row, s in enumerate(order):
        for i in range(M):
            if s >> i & 1:
                grid[row, i] = result.value[s]
    lo, hi = np.nanmin(result.value), np.nanmax(result.value)
    im = ax0.imshow(grid, aspect="auto", cmap="viridis", vmin=lo, vmax=hi, interpolation="nearest")
    ax0.set_xticks(range(M), result.modalities, rotation=45, ha="right")
    ax0.set_yticks(range(K), [f"{result.value[s]:.3f}" for s in order], fontsize=7)
    ax0.set_ylabel("subset (value)")
    fig.colorbar(im, ax=ax0, fraction=0.05, label=_metric_label(result))
    for s in range(K):  # the lattice
        for i in range(M):
            if not s >> i & 1:
                t = s | 1 << i
                up = result.value[t] >= result.value[s]
                ax1.plot([result.sizes[s], result.sizes[t]], [result.value[s], result.value[t]],
                         color="tab:green" if up else "tab:red", lw=0.7, alpha=0.5, zorder=1)
    ax1.scatter(result.sizes, result.value, c=result.value, cmap="viridis", vmin=lo, vmax=hi, zorder=2,
                edgecolors="black", linewidths=0.5)
    if K <= 32:
        for s in range(K):
            ax1.annotate(result.keys[s], (result.sizes[s], result.value[s]), fontsize=6,
                         xytext=(4, 2), textcoords="offset points")
    ax1.set_xticks(range(M + 1))
    ax1.set_xlabel("modalities in the subset")
    ax1.set_ylabel(_metric_label(result))
    ax1.set_title("subset lattice (green: adding a modality helps)", fontsize=9)
    return _finish(fig, path, banner)


def _heatmap(plt, matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], title: str, label: str,
             annotate: bool):
    R, C = matrix.shape
    fig, ax = plt.subplots(figsize=(min(2.5 + 0.8 * C, 14), min(1.8 + 0.3 * R, 24)))
    lim = np.nanmax(np.abs(matrix)) if np.isfinite(matrix).any() else 1.0
    im = ax.imshow(matrix, cmap="RdBu_r", vmin=-lim or -1, vmax=lim or 1, aspect="auto")
    ax.set_xticks(range(C), cols, rotation=45, ha="right")
    ax.set_yticks(range(R), rows, fontsize=7 if R > 20 else 9)
    if annotate and R * C <= 400:
        for i in range(R):
            for j in range(C):
                if np.isfinite(matrix[i, j]):
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.05, label=label)
    return fig


def plot_per_class(result: AblationResult, path: PathLike = None, *, annotate: bool = True,
                   banner: Optional[str] = None):
    """Heat map of the per-class Shapley values ``(C, M)`` (diverging, centred at 0)."""
    plt = _plt()
    rows = [f"{c} (n={n})" for c, n in zip(result.classes, result.class_support)]
    fig = _heatmap(plt, result.per_class, rows, result.modalities, "per-class Shapley values",
                   f"contribution to class {result.metric}", annotate)
    return _finish(fig, path, banner)


def plot_interactions(result: AblationResult, path: PathLike = None, *, banner: Optional[str] = None):
    """Heat map of the pairwise Shapley interaction indices (diagonal: blank)."""
    plt = _plt()
    m = result.interactions.copy()
    np.fill_diagonal(m, np.nan)
    fig = _heatmap(plt, m, result.modalities, result.modalities,
                   "pairwise interaction (+: complementary, -: redundant)", "interaction index", True)
    return _finish(fig, path, banner)


def plot_robustness(result: Optional[AblationResult] = None, corruption: Optional[Sequence[dict[str, Any]]] = None,
                    path: PathLike = None, *, banner: Optional[str] = None):
    """Robustness curves: value (and top-1) vs number of modalities dropped at random, from
    ``result``; accuracy vs strength per corruption, from rows of
    :func:`~multimodal_har.ablation.corruption_curve` (default: ``result.corruption``)."""
    plt = _plt()
    if corruption is None and result is not None:
        corruption = result.corruption
    panels = [p for p in ("dropout", "corruption") if (p == "dropout" and result is not None)
              or (p == "corruption" and corruption)]
    if not panels:
        raise ValueError("nothing to plot: give an AblationResult and/or corruption rows")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.5), squeeze=False)
    for ax, p in zip(axes[0], panels):
        if p == "dropout":
            k = np.arange(len(result.modalities) + 1)
            ax.plot(k, result.dropout, "o-", label=_metric_label(result))
            if not np.isnan(result.dropout_ci).all():
                ax.fill_between(k, result.dropout_ci[:, 0], result.dropout_ci[:, 1], alpha=0.25)
            if result.metric != "accuracy" or result.average != "sample":
                ax.plot(k, result.dropout_top1, "s--", label="top-1 accuracy")
            ax.set_xticks(k)
            ax.set_xlabel("modalities dropped at random")
            ax.set_ylabel("mean over subsets")
            ax.legend(fontsize=8)
        else:
            for name in dict.fromkeys(r["corruption"] for r in corruption):
                pts = sorted((r["strength"], r["accuracy"]) for r in corruption if r["corruption"] == name)
                ax.plot(*zip(*pts), "o-", label=name)
            ax.set_xlabel("strength (fraction of each sample corrupted)")
            ax.set_ylabel("accuracy")
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _finish(fig, path, banner)


def plot_confusions(data: SubsetLogits, subsets: Optional[Sequence[str]] = None, path: PathLike = None, *,
                    banner: Optional[str] = None):
    """Row-normalised confusion matrices (rows: true class) of the subsets named in
    ``subsets`` (default: each single modality and the full set), one panel each."""
    plt = _plt()
    data = data.labelled()
    M, C = len(data.modalities), data.num_classes
    if subsets is None:
        subsets = [*data.modalities, "+".join(data.modalities)] if M > 1 else list(data.modalities)
    unknown = [s for s in subsets if s not in data.logits]
    if unknown:
        raise ValueError(f"unknown subsets {unknown}; keys are modality names in model order joined by '+', "
                         f"e.g. {list(data.logits)[:4]}")
    n = len(subsets)
    cols = min(n, 3)
    rows = -(-n // cols)
    size = min(2.5 + 0.25 * C, 8)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, key in zip(axes.flat, subsets):
        logits = data.logits[key]
        conf = confusion_matrix(logits.astype(np.float64), data.labels, C)  # ties spread, as top-1 counts them
        acc = correctness(logits.astype(np.float64), data.labels).mean()
        _draw_confusion(ax, conf, data.classes, f"{key}: top-1 {acc:.3f}", fontsize=6)
    return _finish(fig, path, banner)


def _draw_confusion(ax, confusion: np.ndarray, classes: Sequence[str], title: str = "", *, fontsize: int = 8,
                    counts: bool = False):
    """One row-normalised confusion matrix (rows: true class) on ``ax``; the counts written in
    the cells when ``counts`` and there are at most 30 classes. Returns the image."""
    C = len(classes)
    norm = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ticks = list(classes) if C <= 30 else [""] * C
    ax.set_xticks(range(C), ticks, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(C), ticks, fontsize=fontsize)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=fontsize + 3)
    if counts and C <= 30:
        for i, j in zip(*np.nonzero(confusion)):
            ax.text(j, i, f"{confusion[i, j]:.3g}", ha="center", va="center", fontsize=fontsize - 1,
                    color="white" if norm[i, j] > 0.5 else "black")
    return im


def plot_confusion(confusion: np.ndarray, classes: Sequence[str], path: PathLike = None, title: str = ""):
    """One ``(C, C)`` confusion matrix of counts (rows: true class), row-normalised colours
    with the counts written in (``mhar evaluate``'s ``confusion.png``)."""
    plt = _plt()
    C = len(classes)
    if np.shape(confusion) != (C, C):
        raise ValueError(f"confusion must be ({C}, {C}) for {C} classes, got {np.shape(confusion)}")
    size = min(4 + 0.35 * C, 30)
    fig, ax = plt.subplots(figsize=(size, size))
    im = _draw_confusion(ax, np.asarray(confusion), classes, title, counts=True)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _finish(fig, path)


# ---------------------------------------------------------------------------- attention
def _frames(frames: np.ndarray) -> np.ndarray:
    """``(T, H, W, 3)`` or ``(T, H, W)`` uint8 / float in [0, 1] -> float ``(T, H, W, 3)``."""
    f = np.asarray(frames)
    if f.ndim == 3:
        f = np.repeat(f[..., None], 3, axis=-1)
    if f.ndim != 4 or f.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) or (T, H, W), got {f.shape}")
    return f.astype(np.float64) / 255.0 if f.dtype == np.uint8 else np.clip(f.astype(np.float64), 0, 1)


def plot_temporal_attention(frames: np.ndarray, weights: np.ndarray, path: PathLike = None, *,
                            title: str = "temporal attention"):
    """Frame thumbnails ``(K, H, W, 3)`` in a row above a strip of temporal attention
    ``weights (t,)`` spanning the same width (``t`` may differ from ``K``: e.g. attention over
    feature steps, each covering ``K / t`` frames)."""
    plt = _plt()
    f = _frames(frames)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0:
        raise ValueError(f"weights must be (t,), got {w.shape}")
    K = len(f)
    aspect = f.shape[1] / f.shape[2]
    fig = plt.figure(figsize=(1.4 * K + 0.5, 1.4 * aspect + 1.3))
    gs = fig.add_gridspec(2, K, height_ratios=[1.4 * aspect, 0.45])
    for k in range(K):
        ax = fig.add_subplot(gs[0, k])
        ax.imshow(f[k])
        ax.axis("off")
    strip = fig.add_subplot(gs[1, :])  # (t,) weights under the whole row of thumbnails
    strip.imshow(w[None, :], aspect="auto", cmap="magma", vmin=0, vmax=max(w.max(), 1e-12),
                 extent=(0, len(w), 0, 1))
    strip.set_yticks([])
    strip.set_xticks(np.arange(len(w)) + 0.5, [f"{x:.2f}" for x in w] if len(w) <= 16 else [""] * len(w),
                     fontsize=6)
    strip.set_xlabel("attention weight per time step")
    fig.suptitle(title, fontsize=9)
    return _finish(fig, path)


def plot_spatial_attention(frame: np.ndarray, attention: np.ndarray, path: PathLike = None, *,
                           alpha: float = 0.5, title: str = "spatial attention"):
    """Spatial attention ``(h, w)`` (e.g. a 7x7 feature grid) stretched over ``frame (H, W, 3)``."""
    plt = _plt()
    f = _frames(np.asarray(frame)[None])[0]
    a = np.asarray(attention, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"attention must be (h, w), got {a.shape}")
    H, W = f.shape[:2]
    fig, ax = plt.subplots(figsize=(4, 4 * H / W + 0.4))
    ax.imshow(f)
    im = ax.imshow(a, cmap="jet", alpha=alpha, extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="bilinear")
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _finish(fig, path)


def plot_cross_attention(attention: np.ndarray, path: PathLike = None, *, query: str = "query",
                         key: str = "key", query_times: Optional[np.ndarray] = None,
                         key_times: Optional[np.ndarray] = None):
    """Cross-modal attention ``(Tq, Tk)`` (rows: query tokens, sum to 1) as a heat map, axes in
    seconds when token times are given."""
    plt = _plt()
    a = np.asarray(attention, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"attention must be (Tq, Tk), got {a.shape}")
    Tq, Tk = a.shape
    extent = None
    if query_times is not None and key_times is not None:
        qt, kt = np.asarray(query_times, float), np.asarray(key_times, float)
        if qt.shape != (Tq,) or kt.shape != (Tk,):
            raise ValueError(f"query_times / key_times must be ({Tq},) / ({Tk},), got {qt.shape} / {kt.shape}")
        dk = float(np.median(np.diff(kt))) if Tk > 1 else 1.0  # cells centred on the token times
        dq = float(np.median(np.diff(qt))) if Tq > 1 else 1.0
        extent = (kt[0] - dk / 2, kt[-1] + dk / 2, qt[-1] + dq / 2, qt[0] - dq / 2)
    fig, ax = plt.subplots(figsize=(5, 4))
    im = ax.imshow(a, aspect="auto", cmap="viridis", extent=extent, interpolation="nearest")
    unit = " (s)" if extent else " token"
    ax.set_xlabel(f"{key}{unit}")
    ax.set_ylabel(f"{query}{unit}")
    ax.set_title(f"{query} -> {key} attention", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _finish(fig, path)
