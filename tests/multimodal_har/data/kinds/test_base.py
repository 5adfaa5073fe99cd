"""Stream configs discriminated by ``kind``, the inferred config and its resolution, and the
built-in kinds' registry entries."""

import dataclasses
import pickle

import pytest

from multimodal_har.config import ConfigError
from multimodal_har.data.kinds import (AudioStreamConfig, FlowStreamConfig, PoseStreamConfig, RgbStreamConfig,
                                       SignalStreamConfig, get_kind, inferred_config, kind_names, resolve_config,
                                       stream_config)
from multimodal_har.skeleton.normalize import NormalizeConfig


def test_builtin_kinds_their_configs_and_corruptions():
    assert kind_names()[:5] == ["rgb", "flow", "pose", "audio", "signal"]
    classes = [RgbStreamConfig, FlowStreamConfig, PoseStreamConfig, AudioStreamConfig, SignalStreamConfig]
    assert [get_kind(k).config_class for k in kind_names()[:5]] == classes
    assert [get_kind(k).corruption for k in kind_names()[:5]] == [
        "frozen_frames", "frozen_frames", "pose_noise", "audio_silence", None]


@pytest.mark.parametrize("data, cls", [
    ({"kind": "rgb", "crop": 112, "layout": "3d", "clip_length": 4}, RgbStreamConfig),
    ({"kind": "flow", "flow_length": "3"}, FlowStreamConfig),
    ({"kind": "pose", "stream": "bone", "normalize": {}}, PoseStreamConfig),
    ({"kind": "audio", "frames": 100}, AudioStreamConfig),
    ({"kind": "signal", "key": "acc", "rate_hz": "50"}, SignalStreamConfig)])
def test_a_mapping_becomes_the_config_of_its_kind(data, cls):
    cfg = stream_config(data)
    assert type(cfg) is cls and cfg.kind == data["kind"]
    for k, v in data.items():
        if k not in ("kind", "normalize"):
            assert str(getattr(cfg, k)) == str(v) or getattr(cfg, k) == type(getattr(cfg, k))(v)
    if data["kind"] == "pose":
        assert cfg.normalize == NormalizeConfig()  # {} -> the defaults, typed


@pytest.mark.parametrize("data, message", [
    ({"kind": "pose", "crop": 3}, r"unknown key\(s\) \['crop'\] in s for PoseStreamConfig; valid keys: \["),
    ({"kind": "rgb", "frames": 3}, r"unknown key\(s\) \['frames'\] in s for RgbStreamConfig"),
    ({"kind": "rgb", "layout": "4d"}, r"s.layout: Input should be '2d' or '3d' \(got '4d'\)"),
    ({"kind": "rgb", "clip_length": 2}, r"clip_length = 2 needs layout '3d'"),
    ({"kind": "pose", "normalize": {"center": "hips"}}, r"unknown centring mode 'hips'"),
    ({"kind": "pose", "normalize": {"align": "no"}}, r"s.normalize.align: Input should be a valid boolean"),
    ({"kind": "signal", "augment": "yes"}, r"s.augment: Input should be a valid boolean"),
    ({"kind": "video"}, r"s: unknown kind 'video'; valid kinds: 'rgb', 'flow', 'pose', 'audio', 'signal'"),
    ("rgb", r"s: expected a mapping of stream config keys, got 'rgb'"),
    ({"crop": 64, "resize": 32}, r"crop \(64\) must not exceed resize \(32\)"),  # inferred: checked as a frame kind
    ({"rate_hz": 0}, r"rate_hz must be > 0")])
def test_stream_config_errors_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        stream_config(data, where="s")


def test_an_inferred_config_resolves_to_its_kind_once_the_entry_tells():
    cfg = stream_config({"source": "pose3d", "frames": 16, "stream": "motion"})
    assert cfg.kind is None and type(cfg) is inferred_config()
    pose = resolve_config(cfg, "pose")
    assert type(pose) is PoseStreamConfig and (pose.frames, pose.stream, pose.source) == (16, "motion", "pose3d")
    sig = resolve_config(stream_config({"frames": 16}), "signal")
    assert type(sig) is SignalStreamConfig and sig.frames == 16
    with pytest.raises(ConfigError, match=r"data.modalities.x: key\(s\) \['stream'\] do not apply to kind 'signal' "
                                          r"\(read from the store entry\)"):
        resolve_config(cfg, "signal", where="data.modalities.x")
    assert resolve_config(pose, "pose") is pose
    # an inferred config survives pickling (data loader workers, copies)
    assert pickle.loads(pickle.dumps(cfg)) == cfg


def test_kind_configs_stay_dataclasses():
    cfg = stream_config({"kind": "pose", "stream": "bone"})
    assert dataclasses.replace(cfg, stream="joint").stream == "joint"
    assert dataclasses.asdict(cfg)["kind"] == "pose" and cfg.mask_name == "mask"
