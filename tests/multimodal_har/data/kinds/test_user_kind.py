"""A user-defined stream kind, exactly as docs/kinds.md writes it: one file registers it, and
the dataset, the experiment config, the schema and the corruptions pick it up."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from multimodal_har.config import ConfigError
from multimodal_har.corruptions import corruption_of_kind
from multimodal_har.data.dataset import DataConfig, StoreDataset
from multimodal_har.data.kinds import get_kind, infer_kind, kind_names, unregister_kind
from multimodal_har.data.store import FeatureStore

DOC = Path(__file__).resolve().parents[4] / "docs" / "kinds.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture
def events_kind():
    """The docs' kind module, imported (as a module of its own) and unregistered afterwards."""
    module = types.ModuleType("docs_event_kind")
    sys.modules[module.__name__] = module
    try:
        exec(compile(_blocks("python")[0], str(DOC), "exec"), module.__dict__)  # noqa: S102 (our own docs)
        yield module
    finally:
        if "events" in kind_names():
            unregister_kind("events")
        del sys.modules[module.__name__]


def _store(root: Path) -> Path:
    store = FeatureStore(root, create=True)
    for i in range(4):
        store.add(f"v{i}", "events", {"counts": np.full((20, 4, 5), i, np.uint16),
                                      "timestamps": np.arange(20) / 10.0}, label="ab"[i % 2], split="train")
    return store.root


def test_the_docs_test_passes_on_the_docs_kind(events_kind, tmp_path):
    namespace = {"FeatureStore": FeatureStore, "DataConfig": DataConfig, "StoreDataset": StoreDataset, "np": np}
    exec(compile(_blocks("python")[1], str(DOC), "exec"), namespace)  # noqa: S102
    namespace["test_events_kind"](tmp_path)


def test_a_user_kind_is_read_inferred_typed_and_corrupted(events_kind, tmp_path):
    root = _store(tmp_path)
    cfg = DataConfig(store=str(root), val_fraction=0, modalities={"events": {"kind": "events", "frames": 8, "gain": "0.5"}})
    s_cfg = cfg.modalities["events"]
    assert type(s_cfg).__name__ == "EventStreamConfig" and s_cfg.gain == 0.5  # typed, converted
    train = StoreDataset(cfg, "train", train=True, seed=1)
    x = train[(0, 3)]["inputs"]["events"]["x"]
    assert x.shape == (8, 4, 5) and x.dtype == np.float32
    assert not np.allclose(x, np.log1p(3.0))  # the training gain
    plain = StoreDataset(cfg, "train", train=False)[3]["inputs"]["events"]["x"]
    assert np.allclose(plain, np.log1p(3.0))
    # inferred from the entry's datasets when the config names no kind
    inferred = StoreDataset(DataConfig(store=str(root), val_fraction=0, modalities={"events": {"frames": 4}}),
                            "train", train=False)
    assert inferred.streams[0].kind == "events" and type(inferred.streams[0].cfg).__name__ == "EventStreamConfig"
    assert corruption_of_kind("events") == "frozen_frames"
    assert get_kind("events").corruption == "frozen_frames"


def test_a_user_kind_config_is_validated_with_key_paths(events_kind, tmp_path):
    with pytest.raises(ConfigError, match=r"data.modalities.ev: gain must be in \[0, 1\), got 2.0"):
        _experiment({"ev": {"kind": "events", "gain": 2}})
    with pytest.raises(ConfigError, match=r"data.modalities.ev.log_scale: Input should be a valid boolean"):
        _experiment({"ev": {"kind": "events", "log_scale": "no"}})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['crop'\] in data.modalities.ev for EventStreamConfig"):
        _experiment({"ev": {"kind": "events", "crop": 3}})


def test_registering_twice_or_a_bad_kind_raises(events_kind):
    from multimodal_har.data.kinds import Kind, register_kind

    with pytest.raises(ValueError, match="stream kind 'events' is already registered"):
        register_kind("events")(events_kind.EventKind)
    with pytest.raises(ValueError, match="EventStreamConfig.kind must default to 'other'"):
        register_kind("other")(type("Other", (Kind,), {"config_class": events_kind.EventStreamConfig}))
    with pytest.raises(ValueError, match="unknown stream kind 'nope'; valid kinds: rgb, flow, pose, audio, signal, "
                                         "events"):
        get_kind("nope")


def test_kind_inference_order_and_fallback():
    class Entry(dict):
        pass

    assert [infer_kind(Entry({k: 0})) for k in ("frames", "pairs", "keypoint", "logmel", "acc")] == [
        "rgb", "flow", "pose", "audio", "signal"]


def _experiment(modalities):
    from multimodal_har.experiment import experiment_from_dict

    return experiment_from_dict({"data": {"store": "s", "modalities": modalities},
                                 "model": {"encoders": {m: {"name": "signal_tcn"} for m in modalities}}})
