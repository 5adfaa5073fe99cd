"""Training: ``mhar train --config CFG [--resume]``, on one device or under ``torchrun`` (DDP).

One epoch is: (stage 2) the fused model trained on every training batch with modality dropout,
AdamW, a per-step cosine schedule after a linear warm-up, gradient clipping and bf16 autocast
on CUDA; then validation (top-1, top-5, mean class accuracy), then checkpoints. Before it,
an optional stage 1 trains each encoder alone on its own modality with its own linear head
(``train.pretrain_epochs``); stage 2 then fuses, the encoders frozen or fine-tuned.

Checkpoints are atomic (a temporary file in the same folder, fsync, ``os.replace``):
``last.pt`` after every epoch (model, optimiser, schedule, scaler, epoch, the RNG states of
python / numpy / torch / CUDA of every process, best metric, early-stop counter) and
``best.pt`` whenever the validation top-1 improves (written before ``last.pt``, so that a
kill between the two loses nothing). ``--resume`` continues from ``last.pt``; the result is
the same as that of an uninterrupted run (on CUDA in deterministic mode), data-loader workers
included, since every draw of an epoch follows from the seed and the epoch (window sampling,
augmentation and shuffling, :mod:`multimodal_har.data.loader`) or from the RNG states saved at
the end of the previous one (modality dropout, dropout). A killed run loses at most the epoch
it was in. Starting, a run removes the checkpoint temporary files a killed one left; a fresh
start (no ``last.pt``) also removes a killed run's ``metrics.jsonl``, ``best.pt`` and events,
and ``--resume`` drops the metrics rows after its epoch, so no epoch is logged twice.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process takes ``batch_size / world_size``
samples of every global batch (a ``DistributedSampler`` through ``make_loader``); training
sums are all-reduced and validation predictions gathered (every sample counted once), and
only rank 0 writes checkpoints and logs. Batch norm is per process (no SyncBatchNorm: it
does not run on CPU), so results match one process with the same global batch to within
batch-norm statistics.

The process group, device transfer, prediction, RNG-state and checkpoint helpers are
:mod:`multimodal_har.engine`'s (shared with evaluation and the ablation); top-1 is
:func:`multimodal_har.metrics.correctness` (tie-aware), for ``train_top1`` and validation alike.

Logs: ``metrics.jsonl`` (one line per epoch), ``train.log``, and TensorBoard event files in
``RUN/tensorboard`` (``tensorboard`` is a dependency; an environment without it skips them
with one message).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .atomic import sweep_stale
from .engine import (all_reduce_sum, autocast, barrier, eval_loader, gather, load_checkpoint, per_video, predict,
                     rng_state, save_checkpoint, seed_everything, set_rng_state, setup_dist, to_device)
from .experiment import ExperimentConfig, build_model, save_config
from .metrics import classification_metrics, correctness
from .model import ModelOutput, MultimodalClassifier
from .recipes import (FusionWithHeads, encoder_param_groups, init_late_heads, load_trained_encoders, modality_heads,
                      modality_loss, modulate_gradients, ogm_coefficients)


class TrainingError(RuntimeError):
    """A run that cannot go on (non-finite loss, a run directory in the way...)."""


# -- schedule, losses ----------------------------------------------------------------------------------
def warmup_cosine(total_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """LR multiplier of step ``s``: ``(s + 1) / warmup`` during the warm-up, then a cosine from
    1 down to ``min_ratio`` at the last step."""
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return f


def modality_dropout(present: Tensor, p: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """``present (B, M)`` -> a copy where each sample with >= 2 modalities keeps, with
    probability ``p``, a uniformly drawn non-empty proper subset of its modalities."""
    if p <= 0:
        return present
    out = present.clone()
    cpu = present.cpu()
    hit = torch.rand(len(cpu), generator=generator) < p
    for b in hit.nonzero(as_tuple=True)[0].tolist():
        have = cpu[b].nonzero(as_tuple=True)[0]
        n = len(have)
        if n < 2:
            continue
        code = int(torch.randint(1, 2 ** n - 1, (1,), generator=generator))  # bits of the kept subset
        keep = torch.tensor([(code >> k) & 1 for k in range(n)], dtype=torch.bool)
        out[b, have.to(out.device)] = keep.to(out.device)
    return out


class PretrainModel(nn.Module):
    """Stage 1: every encoder of ``model`` with its own linear head on its modality alone.

    ``forward(inputs, present) -> {modality: logits (B, C)}`` (rows of samples missing the
    modality are zeros; :func:`pretrain_loss` skips them)."""

    def __init__(self, model: MultimodalClassifier) -> None:
        super().__init__()
        self.model = model
        self.heads = nn.ModuleDict({m: nn.Linear(e.out_dim, model.num_classes) for m, e in model.encoders.items()})

    def forward(self, inputs, present: Optional[Tensor] = None) -> dict[str, Tensor]:
        present = self.model.presence(inputs, present)
        encoded = self.model.encode(inputs, present)
        return {m: self.heads[m](o.pooled) for m, o in encoded.items()}, present


def pretrain_loss(out: tuple[dict[str, Tensor], Tensor], labels: Tensor, modalities, smoothing: float) -> Tensor:
    """Mean cross-entropy over every (sample, modality) pair present."""
    logits, present = out
    return modality_loss(logits, present, labels, modalities, smoothing)


# -- logging ---------------------------------------------------------------------------------------------
class RunLog:
    """``train.log`` + stdout (rank 0 only; nothing on the other ranks), ``metrics.jsonl``, TensorBoard.

    TensorBoard: the epoch records in ``RUN/tensorboard`` (step = epoch), the step losses in
    ``RUN/tensorboard/steps`` (step = optimiser step). After a resume each writer opens with
    ``purge_step`` at its first step to come, so TensorBoard hides what a killed run logged past
    the checkpoint (the partial epoch's step losses) instead of drawing those steps twice."""

    def __init__(self, run_dir: Path, *, enabled: bool, quiet: bool) -> None:
        self.enabled, self.quiet, self.run_dir = enabled, quiet, run_dir
        self._writer_class = None
        self._writers: dict[str, Any] = {}
        self._purge: dict[str, int] = {}  # writer -> its first step after a resume
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional (pip install tensorboard)
            self.info("tensorboard is not installed: TensorBoard logs skipped (metrics.jsonl has every "
                      "epoch; pip install tensorboard to get them)")
        else:
            self._writer_class = SummaryWriter

    def _tb(self, name: str):
        """The writer of ``RUN/tensorboard/<name>`` ("" the epochs, "steps"), opened on first use."""
        if self._writer_class is None:
            return None
        if name not in self._writers:
            self._writers[name] = self._writer_class(str(self.run_dir / "tensorboard" / name),
                                                     purge_step=self._purge.get(name))
        return self._writers[name]

    def info(self, msg: str) -> None:
        if not self.enabled:
            return
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        with open(self.run_dir / "train.log", "a") as f:
            f.write(line + "\n")
        if not self.quiet:
            print(line, flush=True)

    def metrics(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        tb = self._tb("")
        if tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    tb.add_scalar(k, v, record["epoch"])
            tb.flush()

    def scalar(self, name: str, value: float, step: int) -> None:
        tb = self._tb("steps")
        if tb is not None:
            tb.add_scalar(name, value, step)

    def truncate_metrics(self, epochs_done: int, steps_done: int) -> None:
        """Drop the lines of epochs after the checkpoint we resume from (and hide their
        TensorBoard events: the writers open with ``purge_step``)."""
        self._purge = {"": epochs_done + 1, "steps": steps_done + 1}
        path = self.run_dir / "metrics.jsonl"
        if not self.enabled or not path.is_file():
            return
        keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= epochs_done]
        path.write_text("".join(line + "\n" for line in keep))

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()


# -- the loop --------------------------------------------------------------------------------------------
def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def _make_datasets(config: ExperimentConfig):
    """``(train, val, notes)``: the datasets, checked (:func:`_check_training_data`), and what
    the run log should say about them."""
    from .data.dataset import StoreDataset

    train_ds = StoreDataset(config.data, config.data.train_split, train=True, classes=config.classes, seed=config.seed)
    val_ds = StoreDataset(config.data, config.data.val_split, train=False, classes=train_ds.classes, seed=config.seed)
    if list(val_ds.classes) != list(train_ds.classes):
        raise ValueError(f"the validation split's classes differ from the training split's: "
                         f"{list(val_ds.classes)} vs {list(train_ds.classes)}")
    return train_ds, val_ds, _check_training_data(config, train_ds)


def _check_training_data(config: ExperimentConfig, train_ds) -> list[str]:
    """Stop before training when the data cannot make a sound model: a class that videos of the
    validation or test split have (videos with a configured stream: the others are not
    evaluated) but no training sample has (it used to train to the end and fail at ``mhar
    evaluate``), or a configured stream that no training video has (it would train as always
    missing). A class of ``classes`` that no split has is only a warning (returned): e.g. the
    subset runs of ``mhar ablate --retrain`` keep the full run's class list."""
    from .data.dataset import split_videos
    from .data.store import FeatureStore

    manifest = FeatureStore(config.data.store).manifest
    counts = manifest.counts()
    for s in train_ds.streams:
        if not any(vid in s.videos for vid, _ in train_ds.videos):
            have = ", ".join(f"{n} {status}" for status, n in sorted(counts.get(s.source, {}).items())) or "none"
            raise ValueError(f"data.modalities.{s.name}: no training video has a usable {s.source!r} entry "
                             f"({len(train_ds.videos)} videos; the store's {s.source!r} entries: {have}); "
                             f"extract it again (`mhar manifest STORE` lists the failures) or remove the stream")
    trained = {train_ds.classes[label] for _, label in train_ds.videos if label >= 0}
    videos = manifest.videos()
    for split in dict.fromkeys((config.data.val_split, config.data.test_split)):
        labels = {v["label"] for v in split_videos(videos, config.data, split)
                  if v["label"] is not None and any(v["id"] in s.videos for s in train_ds.streams)}
        if labels - trained:
            raise ValueError(f"split {split!r} has classes with no training sample: {sorted(labels - trained)} "
                             f"(the training split has {sorted(trained)}); a model cannot learn them: move some "
                             f"of their videos to the training split, or leave these classes out of the store")
    unused = [c for c in train_ds.classes if c not in trained]
    return [f"warning: classes {unused} of `classes` have no training sample (nor any validation or test one): "
            f"the model will not predict them"] if unused else []


def _check_modalities(config: ExperimentConfig, dataset) -> None:
    model_m, data_m = list(config.model.encoders), list(dataset.modalities)
    if set(model_m) != set(data_m):
        raise ValueError(f"model.encoders are for modalities {model_m} but data.modalities gives {data_m}: "
                         f"use the same names in both sections")


class Trainer:
    """One run; :func:`train` is the entry point."""

    def __init__(self, config: ExperimentConfig, *, resume: bool = False, quiet: bool = False) -> None:
        self.config, self.cfg = config, config.train
        self.dist = setup_dist(self.cfg.device)
        self.run_dir = Path(config.run_dir)
        self.resume = resume
        if self.cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        seed_everything(config.seed)
        # the data first: a missing modality or mismatched classes stop the run here
        self.train_ds, self.val_ds, notes = _make_datasets(config)
        _check_modalities(config, self.train_ds)
        self.classes = list(self.train_ds.classes)
        config.classes = self.classes
        if self.cfg.batch_size % self.dist.world:
            raise ValueError(f"train.batch_size ({self.cfg.batch_size}) must be divisible by the number of "
                             f"processes ({self.dist.world})")
        self.model = build_model(config.model, len(self.classes)).to(self.dist.device)
        self.per_modality = (self.cfg.aux_loss_weight > 0 or self.cfg.ogm_alpha > 0) and len(self.model.modalities) > 1
        self.progress = not quiet and self.dist.main and sys.stderr.isatty()
        cleaned = []
        if self.dist.main:
            last = self.run_dir / "last.pt"
            if last.exists() and not resume:
                raise TrainingError(f"{self.run_dir} already holds a run (last.pt): continue it with --resume, or "
                                    f"choose another run_dir")
            if resume and not last.exists():
                raise FileNotFoundError(f"--resume: no {last} to continue from")
            self.run_dir.mkdir(parents=True, exist_ok=True)
            cleaned = self._clean_run_dir(fresh=not resume)
            save_config(config, self.run_dir / "config.yaml")
        barrier(self.dist)
        self.log = RunLog(self.run_dir, enabled=self.dist.main, quiet=quiet)
        for line in cleaned + notes:
            self.log.info(line)
        self.amp = self.cfg.amp and self.dist.device.type == "cuda"
        self.loader = self._train_loader()
        eval_bs = (self.cfg.eval_batch_size or self.cfg.batch_size) // self.dist.world or 1
        self.val_loader = eval_loader(self.val_ds, eval_bs, config.data.num_workers, self.dist) if len(self.val_ds) else None

    def _clean_run_dir(self, *, fresh: bool) -> list[str]:
        """What a killed run left: the temporary files of checkpoints it was writing (up to a
        model and optimiser each); on a fresh start (no ``last.pt``), also its ``metrics.jsonl``
        rows and ``best.pt``, which the new run writes again from epoch 1. Returns log lines."""
        lines = [f"removed {p.name}, left by a killed run" for p in sweep_stale(self.run_dir)]
        if fresh:
            old = [self.run_dir / n for n in ("metrics.jsonl", "best.pt")] + sorted(
                (self.run_dir / "tensorboard").rglob("events.out.tfevents.*"))
            for path in (p for p in old if p.exists()):
                path.unlink()
                lines.append(f"removed {path.relative_to(self.run_dir)} of a run killed before its first last.pt: "
                             f"starting over")
        return lines

    def _train_loader(self):
        from .data.dataset import make_loader

        return make_loader(self.train_ds, self.cfg.batch_size // self.dist.world, shuffle=True,
                           class_balanced=self.config.data.class_balanced, num_workers=self.config.data.num_workers,
                           seed=self.config.seed, distributed=self.dist.enabled)

    # -- stages
    def stage_of(self, epoch: int) -> int:
        return 1 if epoch < self.cfg.pretrain_epochs else 2

    def build_stage(self, stage: int) -> None:
        """The module to train, its optimiser, schedule and scaler for ``stage``."""
        cfg = self.cfg
        if stage == 1:
            if not hasattr(self, "pretrain"):
                self.pretrain = PretrainModel(self.model).to(self.dist.device)
            module, epochs, lr = self.pretrain, cfg.pretrain_epochs, cfg.pretrain_lr or cfg.lr
        else:
            module, epochs, lr = self.model, cfg.epochs, cfg.lr
            for p in self.model.encoders.parameters():
                p.requires_grad_(not cfg.freeze_encoders)
            if self.per_modality:  # the fused model plus per-modality predictions (recipes)
                heads = None
                if modality_heads(self.model) is None:
                    if not hasattr(self, "pretrain"):
                        self.pretrain = PretrainModel(self.model).to(self.dist.device)
                    heads = self.pretrain.heads
                module = FusionWithHeads(self.model, heads)
        params = [p for p in module.parameters() if p.requires_grad]
        groups = encoder_param_groups(self.model, params, lr=lr, scale=cfg.encoder_lr_scale if stage == 2 else 1.0,
                                      weight_decay=cfg.weight_decay)
        self.optimizer = torch.optim.AdamW(groups, lr=lr, betas=cfg.betas)
        steps = max(1, len(self.loader))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(epochs * steps, round(cfg.warmup_epochs * steps), cfg.min_lr_ratio))
        self.scaler = torch.amp.GradScaler("cuda", enabled=False)  # bf16 needs no loss scaling; kept for the format
        self.stage = stage
        self.module = module
        if self.dist.enabled:
            ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
            self.module = nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)

    def checkpoint(self, epoch: int) -> dict[str, Any]:
        rngs = gather(rng_state(), self.dist)
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "epoch": epoch,
                 "stage": self.stage, "rng": rngs, "best_metric": self.best, "best_epoch": self.best_epoch,
                 "bad_epochs": self.bad_epochs, "bad_batches": self.bad_batches, "classes": self.classes,
                 "world_size": self.dist.world}
        if hasattr(self, "pretrain"):
            state["pretrain_heads"] = self.pretrain.heads.state_dict()
        return state

    def restore(self) -> int:
        """Load ``last.pt``; returns the number of epochs already done."""
        ck = load_checkpoint(self.run_dir / "last.pt")
        if list(ck["classes"]) != self.classes:
            raise ValueError(f"the checkpoint's classes {ck['classes']} differ from the data's {self.classes}")
        self.model.load_state_dict(ck["model"])
        epoch = int(ck["epoch"])
        if "pretrain_heads" in ck:
            if not hasattr(self, "pretrain"):
                self.pretrain = PretrainModel(self.model).to(self.dist.device)
            self.pretrain.heads.load_state_dict(ck["pretrain_heads"])
        if ck["stage"] == 1 and self.stage_of(epoch) == 2:
            self._start_fusion_stage()
        self.build_stage(self.stage_of(epoch))
        if ck["stage"] == self.stage:  # else the saved optimiser belongs to the finished stage 1
            self.optimizer.load_state_dict(ck["optimizer"])
            self.scheduler.load_state_dict(ck["scheduler"])
            self.scaler.load_state_dict(ck["scaler"])
        self.best, self.best_epoch = ck["best_metric"], ck["best_epoch"]
        self.bad_epochs, self.bad_batches = ck["bad_epochs"], ck["bad_batches"]
        rngs = ck["rng"]
        if len(rngs) == self.dist.world:
            set_rng_state(rngs[self.dist.rank])
        else:
            self.log.info(f"the checkpoint was written by {len(rngs)} processes, this run has {self.dist.world}: "
                          f"random states re-seeded (the continuation is not bit-exact)")
            seed_everything(self.config.seed + 7919 * (epoch + 1) + self.dist.rank)
        self.log.truncate_metrics(epoch, epoch * len(self.loader))
        self.log.info(f"resumed from {self.run_dir / 'last.pt'} after epoch {epoch}")
        return epoch

    def _start_fusion_stage(self) -> None:
        """After stage 1: a ``late`` fusion starts from the stage-1 heads (the separately
        trained models' ensemble, :func:`~multimodal_har.recipes.init_late_heads`)."""
        if hasattr(self, "pretrain") and init_late_heads(self.model, self.pretrain.heads):
            self.log.info("the per-modality heads (late / ensemble) start from the stage-1 heads")

    def _init_from(self) -> None:
        """``train.init_from``: encoders and their heads from separately trained runs (stage 1 done)."""
        if not hasattr(self, "pretrain"):
            self.pretrain = PretrainModel(self.model).to(self.dist.device)
        for line in load_trained_encoders(self.model, self.pretrain.heads, self.cfg.init_from):
            self.log.info(f"init_from {line}")
        if self.cfg.pretrain_epochs == 0:
            self._start_fusion_stage()

    # -- epochs
    def train_epoch(self, epoch: int) -> dict[str, float]:
        from tqdm import tqdm

        cfg, dev = self.cfg, self.dist.device
        self.module.train()
        if self.stage == 2 and cfg.freeze_encoders:
            self.model.encoders.eval()  # frozen: batch-norm statistics stay as pre-trained
        if hasattr(self.train_ds, "set_epoch"):
            self.train_ds.set_epoch(epoch)
        if hasattr(self.loader.sampler, "set_epoch"):
            self.loader.sampler.set_epoch(epoch)
        sums = torch.zeros(3, dtype=torch.float64)  # loss * n, correct, n
        amp_context = autocast(dev, self.amp)
        bar = tqdm(self.loader, desc=f"epoch {epoch + 1}", disable=not self.progress, leave=False, file=sys.stderr)
        for step, batch in enumerate(bar):
            batch = to_device(batch, dev)
            labels = batch["label"]
            present = batch["present"]
            if self.stage == 2:
                present = modality_dropout(present, cfg.modality_dropout)
            with amp_context:
                out = self.module(batch["inputs"], present)
            coeffs = None
            if self.stage == 1:
                loss = pretrain_loss(out, labels, self.model.modalities, cfg.label_smoothing)
                logits = None
            else:
                per = None
                if not isinstance(out, ModelOutput):  # FusionWithHeads: (ModelOutput, per-modality logits, present)
                    out, per, used = out
                logits = out.logits.float()
                loss = F.cross_entropy(logits, labels, ignore_index=-1, label_smoothing=cfg.label_smoothing)
                if per is not None and cfg.aux_loss_weight > 0:
                    loss = loss + cfg.aux_loss_weight * modality_loss(per, used, labels, self.model.modalities,
                                                                      cfg.label_smoothing)
                if per is not None and cfg.ogm_alpha > 0 and not cfg.freeze_encoders:
                    coeffs = ogm_coefficients(per, used, labels, self.model.modalities, cfg.ogm_alpha)
            finite = all_reduce_sum(torch.tensor([float(torch.isfinite(loss))], device=dev), self.dist)
            if int(finite.item()) != self.dist.world:  # every process skips or none does
                self._bad_batch(epoch, step, batch, loss)
                continue
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if coeffs is not None:  # OGM-GE; under torchrun the same coefficients and noise on every process
                names = list(coeffs)
                k = all_reduce_sum(torch.tensor([coeffs[m] for m in names], device=dev), self.dist) / self.dist.world
                gen = torch.Generator(device=dev).manual_seed(self.config.seed * 1000003 + self.global_step)
                modulate_gradients(self.model, dict(zip(names, k.tolist())), generator=gen)
            if cfg.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            n = int((labels >= 0).sum())
            sums[0] += float(loss.detach()) * n
            sums[2] += n
            if logits is not None:  # tie-aware top-1 of the labelled samples (metrics.correctness)
                keep = labels >= 0
                sums[1] += float(correctness(logits.detach()[keep].cpu().numpy(), labels[keep].cpu().numpy()).sum())
            self.global_step += 1
            if self.dist.main and self.global_step % max(1, cfg.log_every) == 0:
                self.log.scalar("train/loss_step", float(loss.detach()), self.global_step)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        sums = all_reduce_sum(sums.to(dev), self.dist).cpu()
        n = max(1.0, float(sums[2]))
        res = {"train_loss": float(sums[0]) / n, "lr": max(g["lr"] for g in self.optimizer.param_groups)}
        if self.stage == 2:
            res["train_top1"] = float(sums[1]) / n
        return res

    def _bad_batch(self, epoch: int, step: int, batch, loss: Tensor) -> None:
        self.bad_batches += 1
        self.optimizer.zero_grad(set_to_none=True)
        ids = list(batch["ids"])
        msg = (f"non-finite loss ({float(loss.detach())}) at epoch {epoch + 1}, step {step + 1} (rank "
               f"{self.dist.rank}); samples of the batch: {ids[:16]}{' ...' if len(ids) > 16 else ''}")
        if self.bad_batches > self.cfg.max_bad_batches:
            raise TrainingError(f"{msg}. Check these samples' inputs, lower train.lr, or allow skipping with "
                                f"train.max_bad_batches (now {self.cfg.max_bad_batches})")
        self.log.info(f"skipped: {msg} ({self.bad_batches}/{self.cfg.max_bad_batches} allowed)")

    def validate(self) -> dict[str, float]:
        if self.val_loader is None:
            return {}
        self.model.eval()
        dev = self.dist.device
        amp_context = autocast(dev, self.amp)

        def fn(batch):
            batch = to_device(batch, dev)
            with amp_context:
                if self.stage == 1:
                    logits, _ = self.pretrain(batch["inputs"], batch["present"])
                    return logits
                return {"fused": self.model(batch["inputs"], batch["present"]).logits}

        ids, labels, _, outs = predict(fn, self.val_loader, self.dist, progress=self.progress, desc="val")
        _, labels, outs = per_video(ids, labels, outs)
        C = len(self.classes)
        if self.stage == 1:
            return {f"val_top1_{m}": classification_metrics(v, labels, C)["top1"] for m, v in outs.items()}
        met = classification_metrics(outs["fused"], labels, C)
        return {"val_top1": met["top1"], "val_top5": met["top5"], "val_mean_class_acc": met["mean_class_accuracy"],
                "val_loss": met["loss"]}

    def _save_ensemble(self, epoch: int) -> None:
        """A model that fuses without training (``train.epochs: 0``): validate the fused model,
        then write it as ``last.pt`` and ``best.pt`` (the checkpoint keeps its stage, whose
        optimiser it holds; a resume re-does this with the same result)."""
        stage, self.stage = self.stage, 2
        record = self.validate()
        self.stage = stage
        self.best, self.best_epoch = record.get("val_top1", -1.0), epoch
        if record:
            self.log.info("the ensemble: " + " ".join(f"{k}={v:.4g}" for k, v in record.items()))
        if self.dist.main:
            state = self.checkpoint(epoch)
            save_checkpoint(state, self.run_dir / "last.pt")
            save_checkpoint({"model": state["model"], "epoch": epoch, "classes": self.classes,
                         "metrics": {"epoch": epoch, **record}}, self.run_dir / "best.pt")
        barrier(self.dist)

    def fit(self, *, stop_after: Optional[int] = None) -> dict[str, Any]:
        cfg = self.cfg
        total = cfg.pretrain_epochs + cfg.epochs
        self.best, self.best_epoch, self.bad_epochs, self.bad_batches = -1.0, 0, 0, 0
        start = 0
        if self.resume:
            start = self.restore()
        else:
            if cfg.init_from:
                self._init_from()
            self.build_stage(self.stage_of(0))
            # each process its own stream of draws (modality dropout, dropout); the model's
            # initial weights were drawn before, from the common seed
            seed_everything(self.config.seed + 1000003 * self.dist.rank)
        self.global_step = start * len(self.loader)
        self.log.info(f"{len(self.train_ds)} training / {len(self.val_ds)} validation samples, {len(self.classes)} "
                      f"classes, modalities {list(self.model.modalities)}, {self.dist.world} process(es) on "
                      f"{self.dist.device.type}, epochs {start + 1}..{total}")
        stopped = "completed"
        if total == 0:  # epochs 0 with init_from: the ensemble of the runs as it is
            stopped = "nothing to train: the model is the ensemble of its init_from runs"
            self.log.info(stopped)
            self._save_ensemble(0)
        epoch = start - 1
        for epoch in range(start, total):
            if self.stage_of(epoch) != self.stage:
                self._start_fusion_stage()
                self.build_stage(self.stage_of(epoch))
                self.log.info(f"stage 2: fusion ({'frozen' if cfg.freeze_encoders else 'fine-tuned'} encoders)")
            t0 = time.time()
            every = cfg.validate_every
            check = epoch + 1 == total or (every > 0 and (epoch + 1) % every == 0)
            record = {"epoch": epoch + 1, "stage": self.stage, **self.train_epoch(epoch),
                      **(self.validate() if check else {})}
            record["time_s"] = round(time.time() - t0, 3)
            record["skipped_batches"] = self.bad_batches
            improved = check and self.stage == 2 and record.get("val_top1", -1.0) > self.best
            if check and self.stage == 2 and self.val_loader is None:
                improved = True  # nothing to validate on: the latest is the best
            if improved:
                self.best, self.best_epoch, self.bad_epochs = record.get("val_top1", -1.0), epoch + 1, 0
            elif check and self.stage == 2:
                self.bad_epochs += 1
            record["best_val_top1"] = self.best
            self.log.metrics(record)
            state = self.checkpoint(epoch + 1)
            if self.dist.main:
                if improved:
                    save_checkpoint({"model": state["model"], "epoch": epoch + 1, "classes": self.classes,
                                 "metrics": record}, self.run_dir / "best.pt")
                save_checkpoint(state, self.run_dir / "last.pt")
            barrier(self.dist)
            self.log.info(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
            if cfg.early_stop_patience and self.bad_epochs >= cfg.early_stop_patience:
                stopped = f"early stop: no better validation top-1 for {self.bad_epochs} epochs"
                self.log.info(stopped)
                break
            if stop_after is not None and epoch + 1 >= stop_after:
                stopped = f"stopped after epoch {epoch + 1} (stop_after)"
                break
        if cfg.epochs == 0 and cfg.pretrain_epochs > 0 and epoch + 1 == total and stopped == "completed":
            # no fusion epochs: the model is the ensemble of the stage-1 models as they are (the
            # checkpoint keeps stage 1, whose optimiser it holds; a resume re-does this, same result)
            self._start_fusion_stage()
            self._save_ensemble(total)
            self.log.info("no fusion epochs: the model is the ensemble of the stage-1 models (last.pt, best.pt)")
        self.log.close()
        return {"run_dir": str(self.run_dir), "best_val_top1": self.best, "best_epoch": self.best_epoch,
                "epochs_done": epoch + 1 if total > start else start, "status": stopped}


def train(config: ExperimentConfig, *, resume: bool = False, quiet: bool = False,
          stop_after: Optional[int] = None) -> dict[str, Any]:
    """Train ``config`` (see the module docstring); returns a summary dict.

    Args:
        resume: continue from ``RUN/last.pt``.
        quiet: no progress bars or console lines (``train.log`` is still written).
        stop_after: stop after this many epochs in total, as a killed run would (for tests and
            time-limited jobs; ``--resume`` continues).
    """
    owns_group = int(os.environ.get("WORLD_SIZE", 1)) > 1 and not torch.distributed.is_initialized()
    try:
        trainer = Trainer(config, resume=resume, quiet=quiet)
        try:
            return trainer.fit(stop_after=stop_after)
        finally:
            trainer.log.close()
    finally:
        if owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
