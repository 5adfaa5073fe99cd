"""The modality ablation of a trained run: ``mhar ablate RUN`` and :func:`run_ablation`.

The study itself (exact Shapley values, interactions, bootstrap intervals, leave-one-out,
per-class contributions) is :mod:`multimodal_har.ablation`; its figures are
:mod:`multimodal_har.ablation_plots`. This module runs it on a run directory of ``mhar train``:

1. **Every subset, no retraining.** The logits of every non-empty modality subset come from
   ``mhar evaluate``'s ``RUN/eval_<split>_<checkpoint>/logits.npz`` (each subset through the model's
   missing-modality path). They are reused when they belong to the requested checkpoint
   (``metrics.json`` names it and its epoch, and ``logits.npz`` is newer than the checkpoint
   file); otherwise :func:`~multimodal_har.evaluate.evaluate_run` writes them first. The run
   is loaded once (:func:`~multimodal_har.engine.load_run`), for this evaluation, the
   corruption curves and the attention maps.
2. **Analysis**: :func:`~multimodal_har.ablation.analyze` (top-1 accuracy, chance baseline for
   the empty set), whose random-modality-dropping curve is read from the subset table.
3. **Corruption robustness** (``robustness=True``): the model re-run on the split with one
   input corrupted at each strength (:mod:`multimodal_har.corruptions`): ``pose_noise`` on pose
   inputs, ``audio_silence`` on audio, ``frozen_frames`` on rgb / flow (along the input's first
   axis: frames, or TSN segments), chosen by each data stream's kind; signals get none. One
   curve per corrupted input, plus one with all of a kind's inputs corrupted together when
   there are several (e.g. the joint, bone and motion streams of one skeleton). The
   corruptions act on the model input as the model sees it (after normalisation: pose noise
   of ``sigma`` = 0.05 store units, metres for raw 3D poses). Seeded: the same curves on
   every call. Strength 0 is the clean input: the full set's accuracy of the subset table.
4. **Retraining** (``retrain=True``, slow): one model per proper subset, trained from the run's
   config with the other modalities removed from its ``data`` and ``model`` sections (and from
   per-modality fusion options), same seed, epochs and class list, in ``RUN/retrain/<subset>/``
   (kept: an interrupted ablation resumes, a finished subset is reused). The full set is the
   run itself (same config, same seed). Each is evaluated on the split; the report puts the
   retrained accuracies next to the missing-modality ones, with the Shapley values and
   leave-one-out deltas of the retrained game.
5. **Attention maps** of one sample of the split: the cross-modal attention (last layer, every
   query -> key pair, valid tokens only, axes in seconds when the encoders give token times) of
   a fusion whose forward takes ``return_attention`` (``cross_attention``), and the spatial /
   temporal attention of encoders that return ``spatial_attention`` / ``temporal_attention``
   extras (``pose_attention``), drawn over the sample's frames.

**Can the subset values be trusted?** Step 1 reads each subset through the missing-modality
path of one model. A model trained with every modality always present never trained those
paths (measured on real data: a ``concat`` model's skeleton-alone path 0.44 top-1, its
inertial-alone path 0.49, where the same encoders trained alone reach 0.84 / 0.83), and Shapley
values read from them describe untrained paths, not the modalities.
:func:`subset_path_reliability` judges it from the run's config before any work: the paths
were trained with one modality, with ``train.modality_dropout > 0``, or with ``late`` fusion
and ``train.aux_loss_weight > 0`` (each modality's head trained on its modality alone; not
stage-1 pre-training alone, see the function); the ablation is also reliable when
``retrain=True``, whose retrained game is then the one to read. When the paths were not
trained the report is still written, flagged:

* ``ablation.json`` always has a ``reliability`` block (``reliable``, ``reason``,
  ``how_to_fix``, ``rule``, ``subset_paths_trained``), and ``notes`` starts with the warning;
* ``RELIABILITY.txt`` (written only then, so its presence is the flag; the CSV tables stay
  plain tables) says why, how to fix it and which files are concerned;
* the figures of subset values (``shapley``, ``subset_lattice``, ``per_class``,
  ``interactions``, ``robustness``: its dropping curve, ``confusion``: its single modalities)
  carry a red title, "UNRELIABLE: subset paths never trained (see ablation.json)" (with
  ``retrain=True``: "...; use the retrained values (retrained.png, ablation.json)");
* unless ``retrain=True``, a loud warning goes to stderr, ``quiet`` or not.

``require_reliable=True`` (``mhar ablate --require-reliable``) refuses instead: an
:class:`UnreliableAblationError` (a ``ValueError``: exit status 2 from the CLI) before
anything is evaluated or written.

Everything goes into ``RUN/ablation_<split>/`` (or ``out_dir``), built in a temporary sibling
folder and moved into place when complete: ``ablation.json`` (the analysis, plus ``run``,
``reliability``, ``retrained``, ``attention``, ``files`` and ``notes``: what was skipped and
why), the CSV tables of :func:`~multimodal_har.ablation.write_report` (plus ``retrained.csv``),
``RELIABILITY.txt`` (see above), and the figures ``shapley.png``, ``subset_lattice.png``,
``per_class.png``, ``interactions.png`` (two or more modalities), ``robustness.png``,
``confusion.png`` (each single modality and the full set), ``retrained.png`` and
``attention_*.png``.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from .ablation import (STRENGTHS, AblationResult, SubsetLogits, _jsonable, analyze, corruption_curve,
                       correctness, leave_one_out, load_subset_logits, shapley_values, write_report)
from .engine import Dist, Run, autocast, checkpoint_file, load_run, per_video, predict, to_device
from .experiment import ExperimentConfig, config_to_dict, experiment_from_dict, load_run_config

MAX_THUMBNAILS = 8  # frames drawn above a temporal attention strip


@dataclass
class AblationRun:
    """What :func:`run_ablation` produced.

    Attributes:
        result: the analysis (with its ``corruption`` rows when robustness ran).
        out_dir: where the files are.
        files: file name -> path of every file written (``ablation.json``, ``shapley.csv``,
            ``shapley.png``...).
        retrained: one row per subset (``subset``, ``size``, ``missing_modality_top1``,
            ``retrained_top1``, ``retrained_mean_class_accuracy``, ``run_dir``) or None.
        notes: what was skipped, and why.
        reliability: :func:`subset_path_reliability` of the run (``ablation.json``'s
            ``reliability``).
    """

    result: AblationResult
    out_dir: Path
    files: dict[str, Path]
    retrained: Optional[list[dict[str, Any]]] = None
    notes: list[str] = field(default_factory=list)
    reliability: dict[str, Any] = field(default_factory=dict)

    def format(self) -> str:
        """A short plain-text summary: subset accuracies, Shapley values with CIs, LOO."""
        r = self.result
        pct = f"{100 * r.ci:.0f}% CI" if r.n_resamples else "no CI"
        rt = {row["subset"]: row for row in self.retrained or []}
        lines = [f"{r.n_samples} samples, {len(r.classes)} classes, modalities {', '.join(r.modalities)}",
                 f"  {'subset':28s} {'top-1':>6s}  {pct:>15s}" + ("  retrained" if rt else "")]
        M = len(r.modalities)
        for s in sorted(range(len(r.keys)), key=lambda s: (r.sizes[s], [i for i in range(M) if s >> i & 1])):
            lo, hi = r.value_ci[s]
            ci = f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else ""
            extra = f"  {rt[r.keys[s]]['retrained_top1']:9.3f}" if r.keys[s] in rt else ""
            lines.append(f"  {r.keys[s]:28s} {r.value[s]:6.3f}  {ci:>15s}{extra}")
        lines.append(f"  {'modality':16s} {'Shapley':>8s} {pct:>17s}  {'LOO':>7s} {pct:>17s}")
        for i, m in enumerate(r.modalities):
            sci = f"[{r.shapley_ci[i, 0]:+.3f}, {r.shapley_ci[i, 1]:+.3f}]" if r.n_resamples else ""
            lci = f"[{r.loo_ci[i, 0]:+.3f}, {r.loo_ci[i, 1]:+.3f}]" if r.n_resamples else ""
            lines.append(f"  {m:16s} {r.shapley[i]:+8.3f} {sci:>17s}  {r.loo[i]:+7.3f} {lci:>17s}")
        lines.append(f"  sum of Shapley values = v(all) - v(none) = {r.value[-1]:.3f} - {r.value[0]:.3f} "
                     f"= {r.shapley.sum():+.3f}")
        if r.corruption:
            top = max(row["strength"] for row in r.corruption)
            lines.append(f"  top-1 with inputs corrupted at strength {top:g}: " + ", ".join(
                f"{row['corruption']} {row['accuracy']:.3f}" for row in r.corruption if row["strength"] == top))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _say(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- reliability
UNRELIABLE_BANNER = "UNRELIABLE: subset paths never trained (see ablation.json)"
RETRAINED_BANNER = "UNRELIABLE: subset paths never trained; use the retrained values (retrained.png, ablation.json)"
HOW_TO_FIX = ("train the run again with modality dropout (`mhar train ... --set train.modality_dropout=0.3`: every "
              "subset path is then trained), or run `mhar ablate --retrain` (one model trained per subset; its "
              "game is the one to read), or train late fusion with per-modality losses (`--set "
              "model.fusion.name=late --set train.aux_loss_weight=0.5`: each modality's head trained on its "
              "modality alone)")
HOW_TO_FIX_RETRAINED = ("read the retrained values (ablation.json 'retrained', retrained.csv, retrained.png); for "
                        "missing-modality values worth reading, train the run again with modality dropout (`mhar "
                        "train ... --set train.modality_dropout=0.3`) or late fusion with per-modality losses "
                        "(`--set model.fusion.name=late --set train.aux_loss_weight=0.5`)")


class UnreliableAblationError(ValueError):
    """``run_ablation(require_reliable=True)`` (``mhar ablate --require-reliable``) on a run
    whose subset paths were never trained (:func:`subset_path_reliability`)."""


def subset_path_reliability(config: ExperimentConfig, retrained: bool) -> dict[str, Any]:
    """Whether the subset logits of a run come from paths the model was trained on.

    The ablation reads each modality subset through the model's missing-modality path (the
    other modalities hidden). A model that always saw every modality in training never
    trained those paths: measured on real data, a ``concat`` model's skeleton-alone path gave
    0.44 top-1 and inertial-alone 0.49 where the same encoders trained alone reach 0.84 /
    0.83, so Shapley values read from it describe an untrained path, not the modalities.

    The rule, first match wins (``config`` is the run's resolved ``RUN/config.yaml``):

    1. **One modality**: reliable; the only subset is the full model (nothing to ablate).
    2. ``train.modality_dropout > 0``: reliable; in stage 2 a training sample kept a random
       non-empty proper subset of its modalities with that probability, so every subset path
       was trained (each proper subset on ``p / (2^M - 2)`` of the samples).
    3. ``late`` fusion and ``train.aux_loss_weight > 0``: reliable; a ``late`` subset
       prediction combines the per-modality heads of the present modalities only, and the
       auxiliary loss trained each head on its own modality alone. (With ``mode="gate"`` the
       weights of a proper subset of >= 2 modalities come from a gate that never saw that
       presence pattern, but they still mix heads that were each trained.)
    4. Otherwise the subset paths were never trained. In particular ``late`` fusion without
       the auxiliary loss does **not** count, stage-1 pre-training with frozen encoders
       (``pretrain_epochs > 0``, ``freeze_encoders``) included: stage 1 trains each frozen
       encoder with its own linear head, and those heads may even initialise the ``late``
       heads, but stage 2 then trains the ``late`` heads only through the fused prediction,
       where they co-adapt (``poe`` sums their log-probabilities, which makes them one linear
       classifier over all modalities; ``mean`` lets a head that another one covers drift).
       Nor does ``aux_loss_weight`` with another fusion: its auxiliary heads are the stage-1
       heads, which no subset path uses.

    The subset paths' verdict is ``subset_paths_trained``; ``reliable`` is that, or
    ``retrained`` (``--retrain`` ran: one model per subset was trained, and the retrained game
    in ``ablation.json`` is then the trustworthy one; the missing-modality values next to it
    still carry the warning). Runs with modalities genuinely missing from some training
    samples are not credited: the config cannot tell which subsets they cover.

    Returns:
        ``{"reliable": bool, "reason": str, "how_to_fix": str, "rule": str,
        "subset_paths_trained": bool}``; ``rule`` is ``single_modality``,
        ``modality_dropout``, ``late_aux_loss``, ``retrained`` or ``untrained``; ``reason``
        names the config values; ``how_to_fix`` is empty when the subset paths were trained.
    """
    mods = list(config.model.encoders)
    M = len(mods)
    tc = config.train
    p = float(tc.modality_dropout)
    aux = float(getattr(tc, "aux_loss_weight", 0.0) or 0.0)
    pre = int(getattr(tc, "pretrain_epochs", 0) or 0)
    frozen = bool(getattr(tc, "freeze_encoders", False))
    fusion = config.model.fusion.name
    mode = (config.model.fusion.kwargs or {}).get("mode", "mean") if fusion == "late" else None
    fusion_txt = f"fusion {fusion!r}" + (f" (mode {mode!r})" if mode else "")
    also = (" --retrain ran too: the retrained game in ablation.json ('retrained') measures each subset with "
            "its own model." if retrained else "")

    def verdict(rule: str, reason: str, trained: bool = True, how: str = "") -> dict[str, Any]:
        return {"reliable": trained or retrained, "reason": reason, "how_to_fix": how, "rule": rule,
                "subset_paths_trained": trained}

    if M == 1:
        return verdict("single_modality", f"one modality ({mods[0]}): the only subset is the full model, "
                                          f"there is nothing to ablate.")
    if p > 0:
        return verdict("modality_dropout",
                       f"train.modality_dropout = {p:g}: in training a sample with several modalities kept a "
                       f"random non-empty proper subset of them with probability {p:g} (each of the "
                       f"{2 ** M - 2} proper subsets on {p / (2 ** M - 2):.1%} of the samples), so the subset "
                       f"paths the ablation reads were trained." + also)
    if fusion == "late" and aux > 0:
        gate = (" With mode 'gate' the weights of a proper subset of 2 or more modalities come from a gate that "
                "never saw that presence pattern; they still mix trained heads." if mode == "gate" and M > 2 else "")
        return verdict("late_aux_loss",
                       f"{fusion_txt} with train.aux_loss_weight = {aux:g}: each modality's head was trained on "
                       f"its modality alone, and a subset's prediction combines the heads of the modalities "
                       f"present." + gate + also)
    why = [f"train.modality_dropout = {p:g} (every training sample had all {M} modalities, {', '.join(mods)})"]
    if fusion == "late":
        why.append(f"{fusion_txt} with train.aux_loss_weight = {aux:g}: its per-modality heads were trained only "
                   f"through the fused prediction, never alone")
        if pre > 0:
            why.append(f"train.pretrain_epochs = {pre}{' with frozen encoders' if frozen else ''} does not change "
                       f"that: stage 1 trained each encoder with a head of its own (which may start the late heads), "
                       f"but stage 2 trained the late heads jointly, through the fused prediction")
    else:
        why.append(f"{fusion_txt} combines the modalities in one model that never saw one missing (hidden "
                   f"modalities are inputs it was not trained on)")
        if aux > 0:
            why.append(f"train.aux_loss_weight = {aux:g} trained auxiliary heads that no subset path uses")
    reason = ("the subset logits come from missing-modality paths the model never trained: " + "; ".join(why)
              + ". Shapley values, leave-one-out deltas, the subset lattice, the per-class values, the "
                "interactions and the modality-dropping curve describe those untrained paths, not the modalities.")
    if retrained:
        return verdict("retrained", "--retrain ran: the retrained game (ablation.json 'retrained', retrained.csv, "
                                    "retrained.png: one model trained per subset) is the trustworthy one; the "
                                    "missing-modality values beside it are not: " + reason, False,
                       HOW_TO_FIX_RETRAINED)
    return verdict("untrained", reason, False, HOW_TO_FIX)


def reliability_banner(reliability: Mapping[str, Any]) -> Optional[str]:
    """The red title of the figures of subset values, or None when the subset paths were trained."""
    if reliability["subset_paths_trained"]:
        return None
    return RETRAINED_BANNER if reliability["reliable"] else UNRELIABLE_BANNER


def _warn_unreliable(run_dir: Path, reliability: Mapping[str, Any], out: Path) -> None:
    """The loud warning on stderr (whatever ``quiet`` says: it is a result, not progress)."""
    import textwrap

    def wrap(text: str) -> list[str]:
        return textwrap.wrap(text, 88, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False,
                             break_long_words=False)

    bar = "!" * 90
    lines = [bar, f"WARNING: mhar ablate {run_dir}: the subset values are UNRELIABLE",
             *wrap(reliability["reason"]), *wrap("how to fix: " + reliability["how_to_fix"]),
             *wrap(f"(written anyway, flagged: {out / 'ablation.json'} 'reliability', {out / 'RELIABILITY.txt'}, "
                   f"red titles on the figures; --require-reliable refuses instead)"), bar]
    print("\n".join(lines), file=sys.stderr, flush=True)


def _reliability_text(reliability: Mapping[str, Any], files: Sequence[str]) -> str:
    """``RELIABILITY.txt``: the verdict, why, how to fix, and the files it concerns."""
    head = ("UNRELIABLE: the subset values of this report come from missing-modality paths the model never "
            "trained." if not reliability["reliable"] else
            "The missing-modality values of this report come from paths the model never trained; the "
            "retrained ones (retrained.csv, retrained.png, ablation.json 'retrained') are the ones to read.")
    return "\n".join([head, "", f"reason: {reliability['reason']}", "", f"how to fix: {reliability['how_to_fix']}",
                      "", "concerned files: " + ", ".join(files), ""])


# ---------------------------------------------------------------------------- subset logits
def _logits_are_current(eval_dir: Path, checkpoint: str, ck_epoch: Any, ck_path: Path,
                        modalities: Sequence[str]) -> bool:
    """``eval_dir/logits.npz`` was written by ``mhar evaluate`` for this checkpoint (its name,
    and its epoch unless ``ck_epoch`` is None, in ``metrics.json``), after the checkpoint file,
    for these modalities."""
    logits, metrics = eval_dir / "logits.npz", eval_dir / "metrics.json"
    if not (logits.is_file() and metrics.is_file()):
        return False
    try:
        meta = json.loads(metrics.read_text())
    except (OSError, ValueError):
        return False
    return (meta.get("checkpoint") == checkpoint and (ck_epoch is None or meta.get("epoch") == ck_epoch)
            and list(meta.get("modalities", [])) == list(modalities)
            and logits.stat().st_mtime >= ck_path.stat().st_mtime)


def subset_logits_of_run(run: Union[str, Path, Run], *, split: str = "test", checkpoint: Union[str, Path] = "best",
                         device: str = "auto", quiet: bool = False) -> Path:
    """``RUN/eval_<split>_<checkpoint>/logits.npz``, evaluating the run first when it is absent
    or stale (see the module docstring). ``run``: a run directory (its checkpoint is read
    only when the logits must be computed) or a :class:`~multimodal_har.engine.Run` already
    loaded (``checkpoint`` and ``device`` are then its own)."""
    from .evaluate import eval_dir, evaluate_run

    if isinstance(run, Run):
        run_dir, name, ck_path, epoch = run.run_dir, run.checkpoint, run.checkpoint_path, run.epoch
        mods = run.modalities
    else:
        run_dir = Path(run)
        mods = list(load_run_config(run_dir).model.encoders)
        (name, ck_path), epoch = checkpoint_file(run_dir, checkpoint), None
    out = eval_dir(run_dir, split, name)
    if not _logits_are_current(out, name, epoch, ck_path, mods):
        _say(quiet, f"evaluating {run_dir} ({ck_path.name}) on every modality subset of split {split!r}")
        evaluate_run(run, split=split, checkpoint=checkpoint, device=device, quiet=True)
    return out / "logits.npz"


# ---------------------------------------------------------------------------- robustness
def corrupt_input(batch: Mapping[str, Any], name: str, kwarg: str, corruption: str, strength: float, *,
                  generator=None, **kwargs: Any) -> dict[str, Any]:
    """:func:`~multimodal_har.corruptions.corrupt_batch` on the keyword argument ``kwarg`` of
    model input ``name`` (its mask: ``mask`` for ``x``, ``<kwarg>_mask`` otherwise), so that
    multi-input encoders (``two_stream``'s ``rgb`` / ``flow``) can have one part corrupted."""
    from .corruptions import corrupt_batch
    from .data.dataset import mask_name

    inp = batch["inputs"].get(name)
    if inp is None or kwarg not in inp:
        raise ValueError(f"batch has no input {name!r} with kwarg {kwarg!r}; it has "
                         f"{ {k: list(v) for k, v in batch['inputs'].items()} }")
    view = {"inputs": {name: {"x": inp[kwarg], "mask": inp.get(mask_name(kwarg))}}}
    if view["inputs"][name]["mask"] is None:
        del view["inputs"][name]["mask"]
    x = corrupt_batch(view, name, corruption, strength, generator=generator, **kwargs)["inputs"][name]["x"]
    return {**batch, "inputs": {**batch["inputs"], name: {**inp, kwarg: x}}}


def corruption_targets(dataset) -> dict[str, list[tuple[str, str, str]]]:
    """Curve name -> ``[(corruption, input, kwarg), ...]`` for a :class:`StoreDataset`: one
    curve per corruptible stream, plus one per corruption that applies to several streams."""
    from .corruptions import corruption_of_kind

    by_corruption: dict[str, list[tuple[str, str, str]]] = {}
    for s in dataset.streams:
        c = corruption_of_kind(s.kind)  # the kind's own (Kind.corruption)
        if c is not None:
            by_corruption.setdefault(c, []).append((c, s.input, s.cfg.kwarg))
    curves = {}
    for c, targets in by_corruption.items():
        for t in targets:
            curves[f"{c}: {t[1]}" + ("" if t[2] == "x" else f".{t[2]}")] = [t]
        if len(targets) > 1:
            curves[f"{c}: all {len(targets)}"] = list(targets)
    return curves


def accuracy_under(model, loader, device, *, targets: Sequence[tuple[str, str, str]] = (), strength: float = 0.0,
                   seed: int = 0, amp: bool = False) -> float:
    """Top-1 accuracy (tie-aware, labelled samples, one row per video as ``mhar evaluate``) of
    the full model on ``loader`` with ``targets`` corrupted at ``strength``; seeded."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))

    def fn(batch):
        batch = to_device(batch, device)
        if strength > 0:
            for corruption, name, kwarg in targets:
                if name in batch["inputs"] and kwarg in batch["inputs"][name]:
                    batch = corrupt_input(batch, name, kwarg, corruption, strength, generator=gen)
        with autocast(device, amp):
            return {"full": model(batch["inputs"], batch["present"]).logits}

    ids, labels, _, outs = predict(fn, loader, Dist.local(device))
    _, labels, outs = per_video(ids, labels, outs)
    keep = labels >= 0
    if not keep.any():
        raise ValueError("no labelled sample to measure accuracy on")
    return float(correctness(outs["full"][keep].astype(np.float64), labels[keep]).mean())


# ---------------------------------------------------------------------------- retraining
def subset_config(config: ExperimentConfig, subset: Sequence[str], run_dir: Union[str, Path]) -> ExperimentConfig:
    """``config`` with only the model inputs in ``subset``: their data streams, their encoders,
    and per-modality fusion options (a mapping keyed by modality names) cut to them; seed,
    budget and class list unchanged."""
    subset = list(subset)
    d = config_to_dict(config)
    inputs = list(d["model"]["encoders"])
    unknown = [m for m in subset if m not in inputs]
    if unknown or not subset:
        raise ValueError(f"subset must be a non-empty subset of {inputs}, got {subset}")
    d["data"]["modalities"] = {k: v for k, v in d["data"]["modalities"].items() if (v.get("input") or k) in subset}
    d["model"]["encoders"] = {m: s for m, s in d["model"]["encoders"].items() if m in subset}
    kw = d["model"]["fusion"]["kwargs"]
    for k, v in list(kw.items()):
        if isinstance(v, Mapping) and v and set(v) <= set(inputs):
            kw[k] = {m: x for m, x in v.items() if m in subset}
    d["run_dir"] = str(run_dir)
    return experiment_from_dict(d)


def retrain_subsets(run_dir: Union[str, Path], *, split: str = "test", checkpoint: str = "best",
                    device: str = "auto", quiet: bool = False) -> list[dict[str, Any]]:
    """Train one model per proper modality subset (module docstring) and evaluate each on
    ``split``; rows ``{subset, size, retrained_top1, retrained_mean_class_accuracy, run_dir}``
    for every non-empty subset (the full set: the run itself), accuracies tie-aware."""
    from .model import nonempty_subsets
    from .train import train

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    modalities = list(config.model.encoders)
    subsets = nonempty_subsets(modalities)
    rows = []
    for n, subset in enumerate(subsets, 1):
        key = "+".join(subset)
        if len(subset) == len(modalities):
            sub_run = run_dir
        else:
            sub_run = run_dir / "retrain" / key
            cfg = subset_config(config, subset, sub_run)
            if device != "auto":
                cfg.train.device = device
            done = sub_run / "retrain_done.json"
            if not done.is_file():
                resume = (sub_run / "last.pt").is_file()
                _say(quiet, f"retraining on {key} ({n}/{len(subsets)}){', resuming' if resume else ''}: {sub_run}")
                summary = train(cfg, resume=resume, quiet=True)
                done.write_text(json.dumps(summary, indent=2))
        path = subset_logits_of_run(sub_run, split=split, checkpoint=checkpoint, device=device, quiet=True)
        data = load_subset_logits(path).labelled()
        if data.modalities != list(subset):
            raise ValueError(f"{path}: logits of modalities {data.modalities}, expected {list(subset)}")
        acc = correctness(data.logits[key].astype(np.float64), data.labels)
        per_class = [acc[data.labels == c].mean() for c in np.unique(data.labels)]
        rows.append({"subset": key, "size": len(subset), "retrained_top1": float(acc.mean()),
                     "retrained_mean_class_accuracy": float(np.mean(per_class)), "run_dir": str(sub_run)})
    return rows


def _retrained_game(result: AblationResult, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Shapley values and leave-one-out of the retrained accuracies (empty set: the baseline's)."""
    by_key = {r["subset"]: r["retrained_top1"] for r in rows}
    v = np.array([result.top1[0]] + [by_key[k] for k in result.keys[1:]])
    return {"shapley": dict(zip(result.modalities, shapley_values(v).tolist())),
            "loo": dict(zip(result.modalities, leave_one_out(v).tolist())), "empty": float(v[0])}


def _plot_retrained(result: AblationResult, rows: list[dict[str, Any]], path: Path) -> None:
    """Grouped bars per subset: missing-modality top-1 vs retrained top-1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [r["subset"] for r in rows]
    x = np.arange(len(keys))
    fig, ax = plt.subplots(figsize=(max(4.5, 0.7 * len(keys) + 2), 3.6))
    ax.bar(x - 0.2, [r["missing_modality_top1"] for r in rows], 0.4, label="missing-modality (one model)")
    ax.bar(x + 0.2, [r["retrained_top1"] for r in rows], 0.4, label="retrained per subset")
    ax.axhline(result.top1[0], color="gray", lw=0.8, ls="--", label="no modality (chance)")
    ax.set_xticks(x, keys, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("top-1 accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------- attention maps
def _display_frames(x, mask, mean: Optional[Sequence[float]], std: Optional[Sequence[float]]) -> Optional[np.ndarray]:
    """One sample's video input -> ``(N, H, W, 3)`` in [0, 1] for drawing, or None if it is not
    RGB: ``(3, T, H, W)`` (one clip, ``pose_attention``'s ``video``), ``(K, 3, H, W)`` (TSN
    segments) or ``(K, 3, T, H, W)`` (segments of clips). ``mask`` ``(T,)`` / ``(K,)`` keeps the
    valid frames / segments. The normalisation is undone with ``mean`` / ``std`` when given,
    else the values are stretched to [0, 1]."""
    x = x.detach().float().cpu()
    if x.dim() == 4 and x.shape[1] == 3:
        f = x.permute(0, 2, 3, 1)  # (K, 3, H, W) -> (K, H, W, 3)
    elif x.dim() == 4 and x.shape[0] == 3:
        f = x.permute(1, 2, 3, 0)  # (3, T, H, W) -> (T, H, W, 3)
    elif x.dim() == 5 and x.shape[1] == 3:
        f = x.permute(0, 2, 3, 4, 1)  # (K, 3, T, H, W) -> (K, T, H, W, 3)
    else:
        return None
    if mask is not None and len(mask) == len(f):
        f = f[mask.detach().cpu().bool()]
    f = f.reshape(-1, *f.shape[-3:]).numpy().astype(np.float64)  # (N, H, W, 3)
    if len(f) == 0:
        return None
    if mean is not None and std is not None:
        f = f * np.asarray(std, dtype=np.float64) + np.asarray(mean, dtype=np.float64)
    else:
        f = (f - f.min()) / max(f.max() - f.min(), 1e-12)
    return np.clip(f, 0.0, 1.0)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def attention_figures(model, batch: Mapping[str, Any], out_dir: Union[str, Path], *,
                      frame_stats: Optional[Mapping[tuple[str, str], tuple[Any, Any]]] = None
                      ) -> tuple[dict[str, Path], dict[str, Any], list[str]]:
    """Attention maps of one sample of ``batch`` (a collated batch on the model's device): the
    first sample with every modality present (else the first). Returns (file name -> path,
    a JSON-ready description, notes). ``frame_stats``: ``(input, kwarg) -> (mean, std)`` of
    the normalisation of video inputs, to draw the frames in their own colours."""
    import torch

    from .ablation_plots import plot_cross_attention, plot_spatial_attention, plot_temporal_attention
    from .data.dataset import mask_name

    out_dir = Path(out_dir)
    files: dict[str, Path] = {}
    notes: list[str] = []
    model.eval()
    with torch.no_grad():
        present = model.presence(batch["inputs"], batch["present"])
        encoded = model.encode(batch["inputs"], present)
        full = present.all(dim=1)
        b = int(full.float().argmax()) if bool(full.any()) else 0
        sample = batch["ids"][b]
        info: dict[str, Any] = {"sample": sample, "cross": [], "encoder": []}

        # cross-modal attention of the fusion, last layer
        params = inspect.signature(model.fusion.forward).parameters
        if "return_attention" in params:
            outputs = {m: encoded[m] for i, m in enumerate(model.modalities)
                       if m in encoded and bool(present[:, i].any())}
            fused = model.fusion(outputs, present, return_attention=True)
            cross = (fused.extras or {}).get("attention", {}).get("cross", {})
            for pair, layers in cross.items():
                q, k = pair.split("->")
                mq, mk = encoded[q].mask[b], encoded[k].mask[b]
                if not (bool(mq.any()) and bool(mk.any())):
                    continue
                a = layers[-1][b][mq][:, mk].float().cpu().numpy()  # (T_q, T_k) valid tokens
                times = [(encoded[m].extras or {}).get("timestamps") if isinstance(encoded[m].extras, Mapping)
                         else None for m in (q, k)]
                qt = kt = None
                if times[0] is not None and times[1] is not None:
                    qt, kt = times[0][b][mq].float().cpu().numpy(), times[1][b][mk].float().cpu().numpy()
                name = f"attention_cross_{_safe(q)}_{_safe(k)}.png"
                files[name] = out_dir / name
                _close(plot_cross_attention(a, files[name], query=q, key=k, query_times=qt, key_times=kt))
                info["cross"].append({"query": q, "key": k, "file": name, "shape": list(a.shape)})
            if not cross:
                notes.append(f"the fusion ({type(model.fusion).__name__}) returned no cross-modal attention "
                             f"(cross_layers = 0, or a single modality)")
        else:
            notes.append(f"no cross-modal attention map: the fusion ({type(model.fusion).__name__}) has none "
                         f"(only cross_attention does)")

        # attention computed inside an encoder (pose-driven / flow-driven spatio-temporal attention)
        for m, out in encoded.items():
            extras = out.extras if isinstance(out.extras, Mapping) else {}
            if "temporal_attention" not in extras and "spatial_attention" not in extras:
                continue
            inp = batch["inputs"][m]
            kw = "video" if "video" in inp else next((k for k, v in inp.items() if torch.is_tensor(v) and v.dim() >= 5),
                                                     None)
            frames = None
            if kw is not None:
                mask = inp.get(mask_name(kw))
                frames = _display_frames(inp[kw][b], None if mask is None else mask[b],
                                         *(frame_stats or {}).get((m, kw), (None, None)))
            if frames is None:
                notes.append(f"attention of encoder {m!r} not drawn: no RGB frames found in its inputs {list(inp)}")
                continue
            if "temporal_attention" in extras:
                valid = out.mask[b] if out.mask is not None else slice(None)
                w = extras["temporal_attention"][b][valid].float().cpu().numpy()
                pick = np.unique(np.linspace(0, len(frames) - 1, min(MAX_THUMBNAILS, len(frames))).round().astype(int))
                name = f"attention_temporal_{_safe(m)}.png"
                files[name] = out_dir / name
                _close(plot_temporal_attention(frames[pick], w, files[name],
                                               title=f"{m}: temporal attention ({sample})"))
                info["encoder"].append({"modality": m, "kind": "temporal", "file": name,
                                        "weights": w.tolist()})
            if "spatial_attention" in extras:
                a = extras["spatial_attention"][b].float().cpu().numpy()
                name = f"attention_spatial_{_safe(m)}.png"
                files[name] = out_dir / name
                _close(plot_spatial_attention(frames[len(frames) // 2], a, files[name],
                                              title=f"{m}: spatial attention ({sample})"))
                info["encoder"].append({"modality": m, "kind": "spatial", "file": name})
    return files, info, notes


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


# ---------------------------------------------------------------------------- the whole study
# report files whose values come from the subset table (the missing-modality paths)
SUBSET_VALUE_FILES = ("subsets.csv", "shapley.csv", "interactions.csv", "per_class.csv", "dropout.csv", "shapley.png",
                      "subset_lattice.png", "per_class.png", "interactions.png", "robustness.png", "confusion.png")


def _write_figures(result: AblationResult, data: SubsetLogits, out: Path, banner: Optional[str] = None
                   ) -> dict[str, Path]:
    """The figures of the analysis; ``banner``: the red warning title of each (they all show
    values of the subset table: ``robustness.png`` its dropping curve, ``confusion.png`` the
    single modalities)."""
    from . import ablation_plots as P

    figs: dict[str, Callable[[Path], Any]] = {
        "shapley": lambda p: P.plot_shapley(result, p, banner=banner),
        "subset_lattice": lambda p: P.plot_subset_lattice(result, p, banner=banner),
        "per_class": lambda p: P.plot_per_class(result, p, banner=banner),
        "robustness": lambda p: P.plot_robustness(result, path=p, banner=banner),
        "confusion": lambda p: P.plot_confusions(data, path=p, banner=banner),
    }
    if len(result.modalities) > 1:
        figs["interactions"] = lambda p: P.plot_interactions(result, p, banner=banner)
    files = {}
    for name, draw in figs.items():
        path = files[f"{name}.png"] = out / f"{name}.png"
        _close(draw(path))
    return files


def _swap_into_place(staging: Path, out: Path) -> None:
    """Replace ``out`` by the complete ``staging`` folder (two renames; the old one removed)."""
    old = out.with_name(f".{out.name}.old{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    if old.exists():
        shutil.rmtree(old)


def run_ablation(run_dir: Union[str, Path], *, split: str = "test", out_dir: Union[str, Path, None] = None,
                 checkpoint: str = "best", retrain: bool = False, robustness: bool = True,
                 strengths: Sequence[float] = STRENGTHS, n_resamples: int = 1000, seed: int = 0,
                 device: str = "auto", quiet: bool = False, batch_size: Optional[int] = None,
                 require_reliable: bool = False) -> AblationRun:
    """The modality ablation of a run of ``mhar train`` (see the module docstring).

    Args:
        run_dir: the run directory (``config.yaml`` and ``<checkpoint>.pt``).
        split: the split to evaluate on.
        out_dir: where the report goes (default ``RUN/ablation_<split>``); replaced as a whole,
            so it must be new, empty, or an earlier report (holding ``ablation.json``).
        checkpoint: ``best``, ``last`` or the path of a ``.pt`` file.
        retrain: also train one model per proper subset (slow).
        robustness: the corruption curves (the modality-dropping curve is always there: it is
            read from the subset table).
        strengths: corruption strengths in [0, 1].
        n_resamples: bootstrap resamples for the CIs (0: none).
        seed: of the bootstrap and the corruptions.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``...
        quiet: no progress lines on stderr (the warning of an unreliable ablation is printed
            all the same).
        batch_size: evaluation batch (default: the run's).
        require_reliable: raise :class:`UnreliableAblationError` (before any work, nothing
            written) instead of reporting values of subset paths the model never trained.

    Returns:
        :class:`AblationRun`.
    """
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)  # a clear error for a folder that is not a run
    reliability = subset_path_reliability(config, retrain)
    if require_reliable and not reliability["reliable"]:
        raise UnreliableAblationError(f"{run_dir}: not ablated (--require-reliable): {reliability['reason']} How to "
                                      f"fix: {reliability['how_to_fix']}.")
    checkpoint_file(run_dir, checkpoint)  # a missing checkpoint: a clear error before anything else
    out = Path(out_dir) if out_dir is not None else run_dir / f"ablation_{split}"
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / "ablation.json").is_file())):
        raise ValueError(f"{out} exists and is not a report of mhar ablate (no ablation.json); the report "
                         f"replaces its folder as a whole: choose a new or empty folder")
    strengths = [float(x) for x in strengths]
    if robustness and (not strengths or not all(0.0 <= x <= 1.0 for x in strengths)):
        raise ValueError(f"strengths must be values in [0, 1] (fraction of each sample corrupted), got {strengths}")
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be >= 0 (0: no confidence intervals), got {n_resamples}")
    notes: list[str] = []
    banner = reliability_banner(reliability)
    if banner is not None:
        notes.append(f"{'UNRELIABLE' if not reliability['reliable'] else 'missing-modality values UNRELIABLE'}: "
                     f"{reliability['reason']} How to fix: ablation.json 'reliability', RELIABILITY.txt.")

    run = load_run(run_dir, checkpoint=checkpoint, device=device)  # the one read of the checkpoint
    logits_path = subset_logits_of_run(run, split=split, quiet=quiet)
    data = load_subset_logits(logits_path)
    _say(quiet, f"analysing {len(data.modalities)} modalities ({(1 << len(data.modalities)) - 1} subsets), "
                f"{n_resamples} bootstrap resamples")
    result = analyze(data, n_resamples=n_resamples, seed=seed)

    # the model, for the corruption curves and the attention maps
    if run.classes != list(data.classes):
        raise ValueError(f"{logits_path} and {run.checkpoint_path} disagree on the classes: delete "
                         f"{logits_path.parent} and run again")
    model, dev, amp = run.model, run.device, run.amp
    ds = run.dataset(split)
    loader = run.loader(ds, batch_size)

    curves = corruption_targets(ds) if robustness else {}
    if robustness:
        if curves:
            def evaluate(name: str, strength: float) -> float:
                _say(quiet, f"robustness: {name} at strength {strength:g}")
                return accuracy_under(model, loader, dev, targets=curves[name], strength=strength, seed=seed, amp=amp)

            result.corruption = corruption_curve(evaluate, list(curves), strengths)
        else:
            from .data.kinds import get_kind, kind_names

            corruptible = [k for k in kind_names() if get_kind(k).corruption is not None]
            notes.append(f"no corruption curve: no input of a kind with a corruption ({', '.join(corruptible)}) "
                         f"(streams: {', '.join(f'{s.name} ({s.kind})' for s in ds.streams)})")
    else:
        notes.append("corruption curves skipped (robustness=False / --no-robustness)")

    retrained = None
    if retrain:
        retrained = retrain_subsets(run_dir, split=split, checkpoint=checkpoint, device=device, quiet=quiet)
        top1 = dict(zip(result.keys, result.top1))
        for row in retrained:
            row["missing_modality_top1"] = float(top1[row["subset"]])
        retrained = [{k: r[k] for k in ("subset", "size", "missing_modality_top1", "retrained_top1",
                                        "retrained_mean_class_accuracy", "run_dir")} for r in retrained]

    staging = out.with_name(f".{out.name}.tmp{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        files = {p.name: p for p in write_report(result, staging).values()}
        files.update(_write_figures(result, data, staging, banner))
        if retrained is not None:
            from .ablation import _csv

            files["retrained.csv"] = staging / "retrained.csv"
            files["retrained.csv"].write_text(_csv(retrained))
            files["retrained.png"] = staging / "retrained.png"
            _plot_retrained(result, retrained, files["retrained.png"])
        stats = {(s.input, s.cfg.kwarg): s.handler.frame_stats() for s in ds.streams
                 if s.handler is not None and s.handler.frame_stats() is not None}  # image kinds (rgb)
        first = next(iter(run.loader(ds, min(len(ds), 8))))
        att_files, att_info, att_notes = attention_figures(model, to_device(first, dev), staging, frame_stats=stats)
        files.update(att_files)
        notes += att_notes
        report = result.to_dict()
        report.update(_jsonable({
            "run": {"run_dir": str(run_dir), "split": split, "checkpoint": run.checkpoint, "epoch": run.epoch,
                    "logits": str(logits_path)},
            "robustness": {"strengths": strengths if curves else [],
                           "curves": {k: [list(t) for t in v] for k, v in curves.items()}},
            "retrained": None if retrained is None else {"subsets": retrained, **_retrained_game(result, retrained)},
            "attention": att_info, "notes": notes, "reliability": reliability}))
        if banner is not None:
            files["RELIABILITY.txt"] = staging / "RELIABILITY.txt"
            files["RELIABILITY.txt"].write_text(_reliability_text(
                reliability, [n for n in SUBSET_VALUE_FILES if n in files]))
        report["files"] = sorted(files)
        (staging / "ablation.json").write_text(json.dumps(report, indent=2))  # the folder moves when complete
        _swap_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = {name: out / name for name in sorted(files)}
    if not reliability["reliable"]:
        _warn_unreliable(run_dir, reliability, out)
    return AblationRun(result=result, out_dir=out, files=files, retrained=retrained, notes=notes,
                       reliability=reliability)


__all__ = ["AblationRun", "UnreliableAblationError", "accuracy_under", "attention_figures",
           "corrupt_input", "corruption_targets", "reliability_banner", "retrain_subsets", "run_ablation",
           "subset_config", "subset_logits_of_run", "subset_path_reliability"]
