"""The public Python API: what ``mhar`` does, as functions (the CLI, the demo and the notebooks call these).

::

    from multimodal_har import api

    api.extract("rgb", videos="clips/", store="store", config={"short_side": 96, "fps": 6})
    api.import_dataset("utd_mhad", src="UTD-MHAD/", store="store", modalities="skeleton,inertial")
    summary = api.train("configs/utd_mhad_fusion.yaml", overrides=["train.epochs=5"])
    metrics = api.evaluate(summary["run_dir"], split="test", checkpoint="best")
    report = api.ablate(summary["run_dir"], n_resamples=1000)
    run = api.load_run(summary["run_dir"], checkpoint="last")   # config, model, classes, epoch

Every function takes its options by keyword and returns plain data (dicts, dataclasses of the
modules that do the work); errors are ``ValueError`` / ``FileNotFoundError`` whose message
says what to do, as on the command line. The modules behind it stay usable directly
(:mod:`multimodal_har.extractors`, :mod:`.data.importers`, :mod:`.train`, :mod:`.evaluate`,
:mod:`.ablation_run`, :mod:`.engine`).

Datasets: :func:`dataset_names` lists what :func:`import_dataset` (``mhar import NAME``)
reads; :data:`multimodal_har.skeleton.DATASETS` holds the same names' readers.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

if TYPE_CHECKING:  # torch is imported only by the functions that need it (`mhar extract` stays light)
    from .engine import Run

PathLike = Union[str, os.PathLike]
SAMPLE_VIDEOS = Path(__file__).resolve().parent / "sample_data" / "videos"
TRAIN_SUMMARY = "train_summary.json"  # written into the run directory when train() returns


class RunSettingsError(ValueError):
    """``train(..., resume="auto")`` on a run directory that holds a run of other settings."""


# -- videos and extraction ------------------------------------------------------------------------
def video_records(videos: PathLike) -> list:
    """The videos of a folder as :class:`~multimodal_har.data.ingest.VideoRecord` (id, path,
    label from the class folder); a video outside any class folder is its own class (its id)."""
    from dataclasses import replace

    from .data.ingest import scan_videos

    return [r if r.label else replace(r, label=r.id) for r in scan_videos(videos)]


def extract(extractor: Any, *, videos: PathLike, store: Any, config: Any = None,
            annotations: Optional[PathLike] = None, records: Optional[Sequence] = None,
            store_as: Optional[str] = None, workers: Optional[int] = None, progress: bool = False,
            rank: int = 0, world_size: int = 1):
    """Extract one modality of every video of ``videos`` into ``store`` (``mhar extract``).

    Args:
        extractor: a registered extractor's name (``rgb``, ``audio``, ``raft``, ``dis``,
            ``mediapipe``...: :data:`multimodal_har.extractors.EXTRACTORS`) or an extractor
            already built (``config`` must then be None).
        videos: the video folder; store: the feature store folder (created) or a
            :class:`~multimodal_har.data.store.FeatureStore`.
        config: the extractor's config: its dataclass or a mapping (unknown keys are refused
            by name).
        annotations: CSV ``path,label[,split]``; records: the videos to do (default: every
            video of the folder, :func:`video_records` style labels from folders).
        store_as: store under this modality name (``rgb`` of depth videos as ``depth``).
        workers: processes (default: all cores; 1: this process).
        rank, world_size: this process's share of the videos (``rank::world_size``).

    Returns:
        the :class:`~multimodal_har.extractors.runner.ExtractionSummary` (``.format()`` prints it).
    """
    from multimodal_har.extractors import build_extractor
    from multimodal_har.extractors.runner import run_extraction

    if isinstance(extractor, str):
        extractor = build_extractor(extractor, config)
    elif config is not None:
        raise ValueError("config is for an extractor given by name; this one is already built")
    if store_as:
        extractor.store_as(store_as)
    if not Path(videos).is_dir():
        raise NotADirectoryError(f"videos {videos} is not a directory")
    return run_extraction(extractor, videos_root=videos, store=store, annotations=annotations, records=records,
                          workers=workers, progress=progress, rank=rank, world_size=world_size)


# -- datasets ----------------------------------------------------------------------------------------
def dataset_names() -> list[str]:
    """The datasets :func:`import_dataset` reads (``mhar import NAME``)."""
    from .data.importers import IMPORTERS

    return IMPORTERS.names()


def import_dataset(name: str, *, src: PathLike, store: Any, **options: Any) -> dict[str, Any]:
    """Import dataset ``name`` (:func:`dataset_names`) from its folder (or file) ``src`` into
    ``store`` (created): :func:`multimodal_har.data.importers.import_dataset`, whose options
    are the importer's (``split``, ``modalities``, ``layout``...; an unknown one is refused
    with the list). Returns its summary (``format_summary`` of that module prints it)."""
    from .data.importers import import_dataset as run_import

    return run_import(name, src, store, **options)


# -- training ------------------------------------------------------------------------------------------
def experiment(config: Any, *, overrides: Sequence[str] = ()):
    """An :class:`~multimodal_har.experiment.ExperimentConfig` from a config object, a mapping
    (as in YAML) or a YAML file, with ``KEY.PATH=VALUE`` overrides applied; checked."""
    from .experiment import ExperimentConfig, apply_overrides, config_to_dict, experiment_from_dict, load_experiment

    if isinstance(config, (str, os.PathLike)):
        return load_experiment(config, list(overrides))
    if isinstance(config, ExperimentConfig):
        config = config_to_dict(config)
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be an ExperimentConfig, a mapping or a YAML path, got {type(config).__name__}")
    return experiment_from_dict(apply_overrides(copy.deepcopy(dict(config)), list(overrides)))


def _settings(config) -> dict[str, Any]:
    """A run's settings without what depends on where it was started from (the store and run
    paths) or what training fills in (the classes): what ``resume="auto"`` compares."""
    from .experiment import config_to_dict

    d = config_to_dict(config)
    out = {k: v for k, v in d.items() if k not in ("classes", "run_dir")}
    out["data"] = {k: v for k, v in d["data"].items() if k != "store"}
    return out


def train(config: Any, *, resume: Union[bool, str] = False, overrides: Sequence[str] = (),
          quiet: bool = False, stop_after: Optional[int] = None) -> dict[str, Any]:
    """Train an experiment (``mhar train``): :func:`multimodal_har.train.train`.

    Args:
        config: an ``ExperimentConfig``, a mapping as in YAML, or a YAML file (:func:`experiment`).
        resume: ``False``: a new run (a run directory holding ``last.pt`` is an error);
            ``True``: continue from ``RUN/last.pt``; ``"auto"``: return the summary of a run
            that finished (``RUN/train_summary.json``), continue one that did not, start one
            that is not there; a run of other settings in the folder raises
            :class:`RunSettingsError` (nothing is overwritten).
        overrides: ``KEY.PATH=VALUE`` strings (values as YAML).
        quiet: no progress bars or console lines (``train.log`` is still written).
        stop_after: stop after this many epochs in total (as a killed run would).

    Returns:
        the summary (``run_dir``, ``best_val_top1``, ``best_epoch``, ``epochs_done``,
        ``status``) plus ``how`` (``trained``, ``resumed from last.pt`` or ``already trained:
        skipped``); written to ``RUN/train_summary.json`` (without ``how``) by the main process.
    """
    from .atomic import atomic_write_text
    from .experiment import load_run_config
    from .train import train as run_training

    config = experiment(config, overrides=overrides)
    run_dir = Path(config.run_dir)
    done = run_dir / TRAIN_SUMMARY
    if resume not in (True, False, "auto"):
        raise ValueError(f"resume must be True, False or 'auto', got {resume!r}")
    how = "resumed from last.pt" if resume is True else "trained"
    if resume == "auto":
        resume = (run_dir / "last.pt").exists()
        if resume:
            if _settings(load_run_config(run_dir)) != _settings(config):
                raise RunSettingsError(f"{run_dir} holds a run with other settings: choose another run_dir, or "
                                       f"delete {run_dir} to train again")
            if done.is_file():
                return {**json.loads(done.read_text()), "how": "already trained: skipped"}
            how = "resumed from last.pt"
    summary = run_training(config, resume=bool(resume), quiet=quiet, stop_after=stop_after)
    if int(os.environ.get("RANK", 0)) == 0 and stop_after is None:
        atomic_write_text(done, json.dumps(summary, indent=2))
    return {**summary, "how": how}


# -- evaluation and ablation --------------------------------------------------------------------------
def load_run(run_dir: PathLike, *, checkpoint: Union[str, PathLike] = "best", device: str = "auto") -> "Run":
    """A trained run: its config, its model with the weights of ``checkpoint`` (``best``,
    ``last`` or a ``.pt`` path) on ``device`` in eval mode, its classes and epoch (a
    :class:`multimodal_har.engine.Run`; :func:`multimodal_har.engine.load_run`)."""
    from .engine import load_run as load

    return load(run_dir, checkpoint=checkpoint, device=device)


def evaluate(run: Union[PathLike, "Run"], *, split: str = "test", checkpoint: Union[str, PathLike] = "best",
             batch_size: Optional[int] = None, device: str = "auto", quiet: bool = True) -> dict[str, Any]:
    """Evaluate a trained run (``mhar evaluate``): :func:`multimodal_har.evaluate.evaluate_run`.

    Writes ``RUN/eval_<split>_<checkpoint>/`` (metrics, per-class report, confusion matrix,
    every modality subset's logits) and returns the metrics (``top1``, ``top5``,
    ``mean_class_accuracy``, ``subsets``, ``out_dir``...). ``run``: a run directory or a
    :class:`~multimodal_har.engine.Run` of :func:`load_run` (not read again)."""
    from .evaluate import evaluate_run

    return evaluate_run(run, split=split, checkpoint=checkpoint, batch_size=batch_size, device=device, quiet=quiet)


def ablate(run: PathLike, *, split: str = "test", checkpoint: Union[str, PathLike] = "best",
           out_dir: Optional[PathLike] = None, retrain: bool = False, robustness: bool = True,
           strengths: Optional[Sequence[float]] = None, n_resamples: int = 1000, seed: int = 0,
           device: str = "auto", quiet: bool = True, batch_size: Optional[int] = None,
           require_reliable: bool = False):
    """The modality ablation of a trained run (``mhar ablate``):
    :func:`multimodal_har.ablation_run.run_ablation` (Shapley values with intervals,
    robustness, figures in ``RUN/ablation_<split>/`` or ``out_dir``). Returns its
    :class:`~multimodal_har.ablation_run.AblationRun` (``.format()``, ``.files``, ``.result``).
    ``strengths``: of the corruption curves (default :data:`multimodal_har.ablation.STRENGTHS`)."""
    from .ablation import STRENGTHS
    from .ablation_run import run_ablation

    return run_ablation(run, split=split, out_dir=out_dir, checkpoint=checkpoint, retrain=retrain,
                        robustness=robustness, strengths=STRENGTHS if strengths is None else strengths,
                        n_resamples=n_resamples, seed=seed, device=device, quiet=quiet, batch_size=batch_size, require_reliable=require_reliable)


__all__ = ["RunSettingsError", "SAMPLE_VIDEOS", "TRAIN_SUMMARY", "ablate", "dataset_names", "evaluate",
           "experiment", "extract", "import_dataset", "load_run", "train", "video_records"]
