"""Loading :class:`~multimodal_har.data.dataset.StoreDataset` items: the epoch sampler (exact
resume, class balance, sharding over ranks) and the DataLoader around it.

Exact resume with worker processes: every random draw of an epoch follows from ``(seed,
epoch)``, wherever the epoch starts. The sampler's order is a function of them
(:class:`EpochSampler`); the DataLoader draws its workers' base seed from its own generator
(seeded with ``seed``), not from the global torch RNG, whose state the trainer saves; and each
worker re-seeds python's, numpy's and torch's global RNGs from ``(seed, epoch, worker id)``
when it meets a new epoch (:func:`seed_worker`), so code that draws from them in a worker (a
user's augmentation) repeats too, although persistent workers live across epochs. (The
dataset's own draws use generators of ``(seed, epoch, index)`` and need none of this.)
"""

from __future__ import annotations

import random
import sys
from typing import TYPE_CHECKING, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, get_worker_info

if TYPE_CHECKING:
    from .dataset import StoreDataset


class EpochSampler(Sampler):
    """Indices for one epoch as ``(epoch, index)`` pairs, a function of ``(seed, epoch)`` only.

    ``labels`` given: class-balanced draws with replacement (each class equally likely, then a
    uniform sample of it), ``num_samples`` per epoch (default: the dataset's length). Otherwise
    a permutation (``shuffle``) or the identity. With ``world_size > 1`` the epoch's list is
    padded to a multiple of ``world_size`` and rank ``r`` takes ``r::world_size`` (as
    ``DistributedSampler``). The epoch is read from ``dataset.epoch`` when iteration starts, so
    ``dataset.set_epoch`` and ``sampler.set_epoch`` are the same thing.
    """

    def __init__(self, dataset: StoreDataset, *, shuffle: bool, seed: int, balanced: bool = False,
                 rank: int = 0, world_size: int = 1, num_samples: Optional[int] = None) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank {rank}, world_size {world_size}")
        self.dataset, self.shuffle, self.seed, self.balanced = dataset, shuffle, seed, balanced
        self.rank, self.world_size = rank, world_size
        total = num_samples or len(dataset)
        self.total = -(-total // world_size) * world_size

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return self.total // self.world_size

    def epoch_indices(self, epoch: int) -> np.ndarray:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        n = len(self.dataset)
        if self.balanced:
            labels = torch.as_tensor(self.dataset.labels)
            counts = torch.bincount(labels.clamp(min=0))
            weights = 1.0 / counts[labels.clamp(min=0)].double()
            idx = torch.multinomial(weights, self.total, replacement=True, generator=g)
        else:
            idx = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
            idx = torch.cat([idx, idx[: self.total - n]]) if self.total > n else idx[: self.total]
        return idx.numpy()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.dataset.epoch
        for i in self.epoch_indices(epoch)[self.rank::self.world_size]:
            yield epoch, int(i)


_seeded: Optional[tuple[int, int]] = None  # (seed, epoch) this worker process was last seeded for


def seed_worker(seed: int, epoch: int) -> None:
    """In a DataLoader worker, seed python's, numpy's and torch's global RNGs from ``(seed,
    epoch, worker id)`` the first time ``epoch`` comes (nothing in the main process, whose
    states the trainer saves and restores). Items call it with the epoch they travel with."""
    global _seeded
    info = get_worker_info()
    if info is None or _seeded == (seed, epoch):
        return
    _seeded = (seed, epoch)
    state = np.random.SeedSequence([seed, epoch, info.id]).generate_state(2, dtype=np.uint64)
    random.seed(int(state[0]))
    np.random.seed(int(state[0]) % 2**32)
    torch.manual_seed(int(state[1]) % 2**63)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # parallelism comes from the workers
    if "cv2" in sys.modules:
        # OpenCV came with the fork, its thread pool's threads did not: setNumThreads would
        # wait for them for ever (OpenCV 4.11) once the parent had used the pool. Its parallel
        # functions themselves still work in the worker.
        return
    try:  # OpenCV's own thread pool (colour conversion) would also take every core in every worker
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def make_loader(dataset: StoreDataset, batch_size: int, *, shuffle: bool, class_balanced: bool = False,
                num_workers: int = 0, seed: int = 0, distributed: bool = False, drop_last: bool = False
                ) -> DataLoader:
    """A DataLoader over ``dataset`` with :class:`EpochSampler` (balanced and/or sharded over
    ``torch.distributed`` ranks when ``distributed``), ``persistent_workers`` when
    ``num_workers > 0`` and ``pin_memory`` when CUDA is available. Call
    ``dataset.set_epoch(e)`` (or ``loader.sampler.set_epoch(e)``) before each epoch."""
    if class_balanced and min(dataset.labels) < 0:
        raise ValueError("class_balanced sampling needs every video labelled; this split has unlabelled ones")
    rank, world = 0, 1
    if distributed:
        import torch.distributed as dist

        if not dist.is_initialized():
            raise ValueError("distributed=True needs torch.distributed initialised (run under torchrun)")
        rank, world = dist.get_rank(), dist.get_world_size()
    sampler = EpochSampler(dataset, shuffle=shuffle, seed=seed, balanced=class_balanced, rank=rank,
                           world_size=world)
    # the workers' base seed from a generator of our own: creating the iterator (once, with
    # persistent workers, in whichever epoch the run starts) must not draw from the global RNG
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=dataset.collate, pin_memory=torch.cuda.is_available(),
                      persistent_workers=num_workers > 0, drop_last=drop_last, generator=generator,
                      worker_init_fn=_worker_init if num_workers > 0 else None)


__all__ = ["EpochSampler", "make_loader", "seed_worker"]
