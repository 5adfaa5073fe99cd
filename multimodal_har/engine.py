"""The engine: processes, devices, prediction, checkpoints and loading a trained run.

What training (:mod:`multimodal_har.train`), evaluation (:mod:`multimodal_har.evaluate`), the
ablation (:mod:`multimodal_har.ablation_run`) and the notebooks share, in one module, so that
none of them imports another for it:

* **processes**: :class:`Dist` (rank, world size, device), :func:`setup_dist` (joins the
  ``torchrun`` process group), :func:`all_reduce_sum`, :func:`gather`, :func:`barrier`;
* **devices**: :func:`resolve_device` (``"auto"``), :func:`to_device` (a collated batch on a
  device, frames normalised there), :func:`autocast` (bf16 on CUDA);
* **prediction**: :func:`eval_loader` (every sample in exactly one process, in order),
  :func:`predict` (logits gathered in dataset order), :func:`per_video` (windows -> videos);
* **random state**: :func:`seed_everything`, :func:`rng_state`, :func:`set_rng_state`;
* **checkpoints**: :func:`save_checkpoint` (atomic) and :func:`load_checkpoint`, which reads
  with ``torch.load(weights_only=True)``: tensors, containers and plain numbers, plus the few
  numpy globals the saved RNG states need (:func:`checkpoint_safe_globals`). A file that names
  anything else is refused with :class:`UnsafeCheckpointError` before any of it runs;
* **runs**: :func:`checkpoint_file` (``best``, ``last`` or a path) and :func:`load_run`, a
  run directory of ``mhar train`` as a :class:`Run`: its config, its model with the
  checkpoint's weights, classes and epoch, loaded once.
"""

from __future__ import annotations

import os
import pickle
import random
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from torch import Tensor

from .atomic import atomic_path
from .devices import resolve_device
from .experiment import CHECKPOINTS, ExperimentConfig, build_model, load_run_config


# -- processes ------------------------------------------------------------------------------------
@dataclass
class Dist:
    """Where this process stands: ``rank`` of ``world`` (1 without torchrun) and its device."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @classmethod
    def local(cls, device: Union[str, torch.device]) -> "Dist":
        """One process on ``device`` (evaluation, the ablation, notebooks)."""
        return cls(rank=0, world=1, local_rank=0, device=torch.device(device))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup_dist(device: str = "auto") -> Dist:
    """Join the process group of ``torchrun`` (NCCL on CUDA, gloo on CPU) when ``WORLD_SIZE`` > 1."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank, local = int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0))
    dev = resolve_device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"train.device is {device!r} but CUDA is not available")
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank=rank, world=world, local_rank=local, device=dev)


def all_reduce_sum(x: Tensor, dist: Dist) -> Tensor:
    """``x`` summed over the processes, in place (unchanged with one process)."""
    if dist.enabled:
        torch.distributed.all_reduce(x)
    return x


def gather(obj: Any, dist: Dist) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process (``[obj]`` with one process)."""
    if not dist.enabled:
        return [obj]
    out: list[Any] = [None] * dist.world
    torch.distributed.all_gather_object(out, obj)
    return out


def barrier(dist: Dist) -> None:
    if dist.enabled:
        torch.distributed.barrier()


# -- random state --------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The states of python's, numpy's, torch's and (when initialised) CUDA's generators."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- devices and batches --------------------------------------------------------------------------
def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch's tensors on ``device``, uint8 frames normalised there (``data.batch.finish_batch``);
    the batch given is left as it was."""
    from .data.batch import finish_batch

    out = dict(batch)
    out["label"] = batch["label"].to(device, non_blocking=True)
    out["present"] = batch["present"].to(device, non_blocking=True)
    out["inputs"] = {m: {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in kw.items()}
                     for m, kw in batch["inputs"].items()}
    if "affine" in batch:
        out["affine"] = {m: {k: tuple(t.to(device, non_blocking=True) for t in v) for k, v in kw.items()}
                         for m, kw in batch["affine"].items()}
    return finish_batch(out)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when ``enabled`` (``train.amp``); a no-op context otherwise."""
    if enabled and torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


# -- prediction ------------------------------------------------------------------------------------
def eval_loader(dataset, batch_size: int, num_workers: int, dist: Dist):
    """Samples ``rank, rank + world, ...`` in order, each sample in exactly one process."""
    from torch.utils.data import DataLoader

    indices = list(range(dist.rank, len(dataset), dist.world))
    return DataLoader(dataset, batch_size=batch_size, sampler=indices, num_workers=num_workers,
                      collate_fn=dataset.collate, pin_memory=dist.device.type == "cuda")


@torch.no_grad()
def predict(fn: Callable[[dict], dict[str, Tensor]], loader, dist: Dist, *, progress: bool = False,
            desc: str = "eval") -> tuple[list[str], np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Run ``fn(batch) -> {key: (B, C) logits}`` over ``loader`` (of :func:`eval_loader`) in
    every process; returns ``(ids, labels (N,), starts (N,), {key: (N, C) float32})`` gathered
    in dataset order (every sample once, whatever the number of processes)."""
    from tqdm import tqdm

    ids, labels, starts, idx, outs = [], [], [], [], {}
    pos, sampler = 0, list(loader.sampler)
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, file=sys.stderr):
        res = fn(batch)
        B = len(batch["ids"])
        ids += list(batch["ids"])
        labels.append(batch["label"].cpu().numpy())
        starts.append(np.asarray(batch.get("start", np.zeros(B)), dtype=np.float64).reshape(-1)[:B])
        idx += sampler[pos:pos + B]
        pos += B
        for k, v in res.items():
            outs.setdefault(k, []).append(v.float().cpu().numpy())
    local = (idx, ids, np.concatenate(labels) if labels else np.zeros(0, np.int64),
             np.concatenate(starts) if starts else np.zeros(0),
             {k: np.concatenate(v) for k, v in outs.items()})
    parts = gather(local, dist)
    order = np.argsort(np.concatenate([np.asarray(p[0], dtype=np.int64) for p in parts]), kind="stable")
    all_ids = [i for p in parts for i in p[1]]
    keys = list(dict.fromkeys(k for p in parts for k in p[4]))
    return ([all_ids[k] for k in order], np.concatenate([p[2] for p in parts])[order],
            np.concatenate([p[3] for p in parts])[order],
            {k: np.concatenate([p[4][k] for p in parts if k in p[4]])[order] for k in keys})


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


# -- checkpoints ------------------------------------------------------------------------------------
class UnsafeCheckpointError(ValueError):
    """A checkpoint that names objects outside what :func:`load_checkpoint` allows (tensors,
    containers, numbers, strings and numpy arrays / scalars / dtypes): it is not read, since
    unpickling such a file can run code it names."""


def checkpoint_safe_globals() -> list[Any]:
    """What a checkpoint of ``mhar train`` holds beyond ``torch.load(weights_only=True)``'s
    defaults: numpy's RNG state (an ``ndarray`` of ``uint32``) and numpy scalars and dtypes
    (numpy 1 and 2 spell the array reconstructor's module differently)."""
    core = getattr(np, "_core", None)
    multiarray = core.multiarray if core is not None and hasattr(core, "multiarray") else np.core.multiarray
    dtype_classes = {type(np.dtype(c)) for c in "?bBhHiIlLqQefdgFDG"}
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *sorted(dtype_classes, key=str)]


def save_checkpoint(obj: Any, path: Union[str, Path]) -> Path:
    """``torch.save`` to a temporary name in the same folder, fsync, ``os.replace``: the file
    at ``path`` is always either the old one or the complete new one."""
    with atomic_path(path, durable=True) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_checkpoint(path: Union[str, Path]) -> dict[str, Any]:
    """A checkpoint of ``mhar train`` (or any file :func:`save_checkpoint` wrote), on the CPU.

    Read with ``weights_only=True`` and :func:`checkpoint_safe_globals`; a file naming any
    other object raises :class:`UnsafeCheckpointError` (naming them) without running it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # noqa: BLE001 - a file torch cannot even list: say what torch said
            names = []
        allowed = {f"{g.__module__}.{g.__qualname__}" for g in checkpoint_safe_globals()}
        names = [n for n in names if n not in allowed]
        what = f"it names {', '.join(names)}" if names else str(e).splitlines()[-1][:300]
        raise UnsafeCheckpointError(
            f"{path} is not read: {what}, which a checkpoint of mhar train never holds (tensors, numbers, strings, "
            f"containers and numpy arrays only); unpickling it could run code. If you wrote it yourself and trust "
            f"it, save its state dict with torch.save(model.state_dict(), ...) instead") from None


def checkpoint_file(run_dir: Union[str, Path], checkpoint: Union[str, Path] = "best") -> tuple[str, Path]:
    """``(name, path)`` of a run's checkpoint: ``best`` / ``last`` (``RUN/<name>.pt``), or the
    path of a ``.pt`` file (its name is its stem: ``RUN/epoch5.pt`` -> ``epoch5``)."""
    run_dir = Path(run_dir)
    if isinstance(checkpoint, str) and checkpoint in CHECKPOINTS:
        name, path = checkpoint, run_dir / f"{checkpoint}.pt"
    else:
        path = Path(checkpoint)
        if path.suffix != ".pt":
            raise ValueError(f"checkpoint must be one of {', '.join(CHECKPOINTS)} or the path of a .pt file, "
                             f"got {str(checkpoint)!r}")
        name = path.stem
    if not path.is_file():
        have = [p.name for p in sorted(run_dir.glob("*.pt"))]
        raise FileNotFoundError(f"{run_dir} has no checkpoint {path.name} (it has: {', '.join(have) or 'none'}): "
                                f"train the run first (mhar train) or choose another --checkpoint")
    return name, path


# -- runs -----------------------------------------------------------------------------------------------
@dataclass
class Run:
    """A trained run, loaded by :func:`load_run`.

    Attributes:
        run_dir: the run directory.
        config: its resolved config (``RUN/config.yaml``).
        model: the :class:`~multimodal_har.model.MultimodalClassifier` with the checkpoint's
            weights, on ``device``, in eval mode.
        classes: the class names, index = label.
        checkpoint: the checkpoint's name (``best``, ``last``, or a file's stem).
        checkpoint_path: its file.
        epoch: the epoch it was written after (``None`` if it does not say).
        device: where the model is.
        metrics: the validation record saved with it (``best.pt``), else ``{}``.
    """

    run_dir: Path
    config: ExperimentConfig
    model: Any
    classes: list[str]
    checkpoint: str
    checkpoint_path: Path
    epoch: Optional[int]
    device: torch.device
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def modalities(self) -> list[str]:
        return list(self.model.modalities)

    @property
    def amp(self) -> bool:
        """bf16 autocast in evaluation, as in training (``train.amp``, CUDA only)."""
        return bool(self.config.train.amp) and self.device.type == "cuda"

    def dataset(self, split: str):
        """The evaluation :class:`~multimodal_har.data.dataset.StoreDataset` of ``split``
        (evenly spaced windows, the run's classes)."""
        from .data.dataset import StoreDataset

        ds = StoreDataset(self.config.data, split, train=False, classes=self.classes, seed=self.config.seed)
        if len(ds) == 0:
            raise ValueError(f"split {split!r} of {self.config.data.store} has no sample")
        return ds

    def loader(self, dataset, batch_size: Optional[int] = None):
        """:func:`eval_loader` of ``dataset`` in this process (default batch: the run's)."""
        cfg = self.config.train
        return eval_loader(dataset, batch_size or cfg.eval_batch_size or cfg.batch_size,
                           self.config.data.num_workers, Dist.local(self.device))


def load_run(run_dir: Union[str, Path], *, checkpoint: Union[str, Path] = "best",
             device: Union[str, torch.device] = "auto") -> Run:
    """Load a run of ``mhar train``: its config, and its model with the weights of
    ``checkpoint`` (``best``, ``last`` or a ``.pt`` path; see :func:`checkpoint_file`), on
    ``device``, in eval mode. The checkpoint file is read once."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)  # a clear error for a folder that is not a run
    name, path = checkpoint_file(run_dir, checkpoint)
    ck = load_checkpoint(path)
    classes = list(ck["classes"])
    if config.classes is not None and list(config.classes) != classes:
        raise ValueError(f"{run_dir}: config.yaml and {path.name} disagree on the classes")
    dev = resolve_device(device)
    model = build_model(config.model, len(classes))
    model.load_state_dict(ck["model"])
    model.to(dev).eval()
    epoch = ck.get("epoch")
    return Run(run_dir=run_dir, config=config, model=model, classes=classes, checkpoint=name, checkpoint_path=path,
               epoch=None if epoch is None else int(epoch), device=dev, metrics=dict(ck.get("metrics") or {}))


__all__ = ["Dist", "Run", "UnsafeCheckpointError", "all_reduce_sum", "autocast", "barrier", "checkpoint_file",
           "checkpoint_safe_globals", "eval_loader", "gather", "load_checkpoint", "load_run", "per_video", "predict",
           "resolve_device", "rng_state", "save_checkpoint", "seed_everything", "set_rng_state", "setup_dist",
           "to_device"]
