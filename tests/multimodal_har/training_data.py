"""A tiny real store for the training tests: MSR Action3D skeletons (4 actions, 4 subjects,
2 episodes: 32 sequences; cross-subject split, validation carved from train) and a config of
three skeleton streams (joint, bone, motion) with tiny ST-GCN encoders."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from multimodal_har.data.store import FeatureStore
from multimodal_har.skeleton.datasets import add_to_store, read_msr_action3d
from tests.conftest import SHARED

MSR = SHARED / "skeleton" / "msr_action3d"
STREAMS = ("joint", "bone", "motion")


def make_msr_store(root: Path, *, actions=(1, 2, 3, 4), subjects=(1, 2, 3, 4), episodes=(1, 2)) -> Path:
    """A feature store with ``pose3d`` entries of the chosen MSR Action3D sequences."""
    files = root / "msr_files"
    files.mkdir(parents=True)
    for a in actions:
        for s in subjects:
            for e in episodes:
                name = f"a{a:02d}_s{s:02d}_e{e:02d}_skeleton3D.txt"
                if (MSR / name).is_file():
                    (files / name).symlink_to(MSR / name)
    store = FeatureStore(root / "store", create=True)
    add_to_store(store, read_msr_action3d(files), dataset="msr_action3d")
    return store.root


def tiny_config(store: Path, run_dir: Path, *, fusion: str = "late", streams=STREAMS, **train: Any) -> dict:
    """An experiment config mapping (as read from YAML)."""
    cfg = {
        "data": {"store": str(store), "num_workers": 0,
                 "modalities": {m: {"source": "pose3d", "kind": "pose", "stream": m, "rate_hz": 15.0, "frames": 32}
                                for m in streams}},
        "model": {"encoders": {m: {"name": "skeleton_gcn",
                                   "kwargs": {"layout": "kinect_v1_20", "channels": [[8, 1], [16, 2]]}}
                               for m in streams},
                  "fusion": {"name": fusion, "kwargs": {}}},
        "train": {"epochs": 3, "batch_size": 4, "lr": 0.01, "warmup_epochs": 0.5, "deterministic": True,
                  "device": "cpu", "modality_dropout": 0.5, "log_every": 1, **train},
        "seed": 0,
        "run_dir": str(run_dir),
    }
    return copy.deepcopy(cfg)
