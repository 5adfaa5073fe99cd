"""``DataConfig.time_splits``: every video cut in time into train / val / test ranges.

A "clock" signal whose values are its own timestamps shows exactly which times a sample read."""

import numpy as np
import pytest

from multimodal_har.data.dataset import DataConfig, StoreDataset
from multimodal_har.data.store import FeatureStore

SPLITS = {"train": [0.0, 0.6], "val": [0.6, 0.8], "test": [0.8, 1.0]}
DURATION = {"a": 10.0, "b": 4.0, "c": 2.0}  # seconds


@pytest.fixture(scope="module")
def clock_store(tmp_path_factory):
    store = FeatureStore(tmp_path_factory.mktemp("clock") / "store", create=True)
    for vid, dur in DURATION.items():
        t = np.arange(0.0, dur, 0.05)
        # the manifest's splits must be ignored under time_splits: give them misleading ones
        store.add(vid, "clock", {"data": t[:, None].astype(np.float32), "timestamps": t}, label=vid,
                  split="test" if vid == "a" else None)
    return store.root


def config(root, **kw):
    return DataConfig(store=str(root), modalities={"clock": {"augment": False}},
                      **{"window": 1.0, "windows_per_video": 4, "time_splits": SPLITS, **kw})


@pytest.mark.parametrize("split,train", [("train", True), ("val", False), ("test", False)])
def test_windows_stay_inside_their_range(clock_store, split, train):
    ds = StoreDataset(config(clock_store), split, train=train)
    assert ds.classes == ["a", "b", "c"]
    assert sorted({v for v, _ in ds.videos}) == ["a", "b", "c"]  # every video in every split
    lo_f, hi_f = SPLITS[split]
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            s = ds[i]
            span = DURATION[s["id"]] - 0.05  # the last timestamp
            lo, hi = lo_f * span, hi_f * span
            times = s["inputs"]["clock"]["x"][:, 0]
            assert len(times) > 0
            assert lo - 1e-6 <= s["start"] and s["stop"] <= hi + 1e-6
            assert times.min() >= lo - 1e-6 and times.max() < hi  # half-open: the boundary frame is the next range's
            assert s["stop"] - s["start"] <= 1.0 + 1e-9  # cut to the range when it is shorter (video c)


def test_ranges_are_disjoint_in_the_samples(clock_store):
    read = {}
    for split in SPLITS:
        ds = StoreDataset(config(clock_store, windows_per_video=8), split, train=split == "train")
        read[split] = {(s["id"], round(float(t), 3)) for s in (ds[i] for i in range(len(ds)))
                       for t in s["inputs"]["clock"]["x"][:, 0]}
    assert not read["train"] & read["test"] and not read["train"] & read["val"] and not read["val"] & read["test"]


def test_whole_range_without_window(clock_store):
    ds = StoreDataset(config(clock_store, window=None, windows_per_video=1), "test", train=False)
    s = next(ds[i] for i in range(len(ds)) if ds[i]["id"] == "a")
    times = s["inputs"]["clock"]["x"][:, 0]
    assert times.min() == pytest.approx(7.95, abs=0.051) and times.max() == pytest.approx(9.95)


def test_errors(clock_store):
    with pytest.raises(ValueError, match="overlap"):
        DataConfig(store=str(clock_store), modalities={"clock": {}}, time_splits={"train": [0, 0.7], "test": [0.6, 1]})
    with pytest.raises(ValueError, match=r"0 <= lo < hi <= 1"):
        DataConfig(store=str(clock_store), modalities={"clock": {}}, time_splits={"train": [0.5, 0.2]})
    with pytest.raises(ValueError, match=r"\[lo, hi\]"):
        DataConfig(store=str(clock_store), modalities={"clock": {}}, time_splits={"train": 0.5})
    with pytest.raises(ValueError, match="not one of time_splits"):
        StoreDataset(config(clock_store, time_splits={"train": [0, 0.8], "val": [0.8, 1]}), "test", train=False)
