"""The training DataLoader (``make_loader``) on a real MSR Action3D store: an epoch's batches,
drawn by persistent worker processes, are the same whether the loader started at epoch 0 or
at that epoch (a resumed run), global RNG draws in the workers included."""

import numpy as np
import pytest
import torch

from multimodal_har.data.dataset import DataConfig, StoreDataset, make_loader
from tests.multimodal_har.training_data import make_msr_store


class NoisyDataset(StoreDataset):
    """Adds draws from the worker's global RNGs to each sample, as a user's augmentation might."""

    def __getitem__(self, item):
        sample = super().__getitem__(item)
        sample["inputs"]["joint"]["x"] = sample["inputs"]["joint"]["x"] + torch.rand(1).item() + np.random.rand()
        return sample


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_msr_store(tmp_path_factory.mktemp("msr"), actions=(1, 2), subjects=(1, 3))


def _epoch(loader, ds, epoch):
    ds.set_epoch(epoch)
    return [(b["ids"], b["inputs"]["joint"]["x"]) for b in loader]


def test_resumed_epoch_repeats_with_persistent_workers(store):
    cfg = DataConfig(store=str(store), val_fraction=0, num_workers=2,
                     modalities={"joint": {"source": "pose3d", "rate_hz": 15.0, "frames": 8}})
    ds = NoisyDataset(cfg, "train", train=True, seed=3)
    torch.manual_seed(0)
    loader = make_loader(ds, 3, shuffle=True, num_workers=2, seed=3)
    state = torch.get_rng_state()
    epochs = [_epoch(loader, ds, e) for e in range(3)]
    assert torch.equal(torch.get_rng_state(), state)  # the loader draws nothing from the global RNG
    assert epochs[1][0][0] != epochs[2][0][0]  # a new order every epoch
    resumed = make_loader(ds, 3, shuffle=True, num_workers=2, seed=3)
    again = _epoch(resumed, ds, 2)  # starts at epoch 2: fresh workers, as after a kill
    assert [ids for ids, _ in again] == [ids for ids, _ in epochs[2]]
    for (_, a), (_, b) in zip(again, epochs[2]):
        assert torch.equal(a, b)


def test_workers_start_after_opencv_ran_its_thread_pool(store):
    """A process that used OpenCV's thread pool (extraction, decoding in the dataset's probe)
    then forks workers: cv2.setNumThreads in a worker waited for ever on the pool's threads,
    which a fork does not copy."""
    cv2 = pytest.importorskip("cv2")
    frame = np.random.default_rng(0).integers(0, 255, (1500, 1500, 3), dtype=np.uint8)
    for _ in range(3):  # the pool's threads start and wait for work
        cv2.GaussianBlur(frame, (31, 31), 5)
    cfg = DataConfig(store=str(store), val_fraction=0, modalities={"joint": {"source": "pose3d", "rate_hz": 15.0}})
    ds = StoreDataset(cfg, "train", train=True)
    loader = make_loader(ds, 4, shuffle=True, num_workers=2)
    loader.timeout = 60  # a hung worker fails the test instead of the suite
    assert sum(len(b["ids"]) for b in loader) == len(ds)
