"""Experiment configs: YAML -> dataclasses (unknown keys rejected by name), overrides, the model built."""

import pytest
import yaml

from multimodal_har.experiment import (EncoderSpec, ExperimentConfig, ModelConfig, TrainConfig, apply_overrides,
                                       build_model, experiment_from_dict, load_experiment, save_config)
from multimodal_har.model import MultimodalClassifier
from tests.conftest import ROOT
from tests.multimodal_har.training_data import tiny_config

CONFIGS = ROOT / "configs"


def test_example_configs_load_and_build():
    msr = load_experiment(CONFIGS / "msr_action3d_skeleton_fusion.yaml")
    assert isinstance(msr, ExperimentConfig) and list(msr.model.encoders) == ["joint", "bone", "motion"]
    assert isinstance(msr.model.encoders["bone"], EncoderSpec) and msr.train.modality_dropout == 0.2
    assert msr.data.modalities["bone"].stream == "bone"
    model = build_model(msr.model, 20)
    assert isinstance(model, MultimodalClassifier) and model.modalities == ("joint", "bone", "motion")
    assert model.head is None and model.fusion.num_classes == 20  # late fusion got num_classes
    video = load_experiment(CONFIGS / "video_4modality.yaml")
    assert list(video.model.encoders) == ["rgb", "flow", "pose", "audio"]
    assert video.model.fusion.name == "cross_attention" and video.data.window == 4.0
    utd = load_experiment(CONFIGS / "utd_mhad_fusion.yaml")  # the recommended recipe
    assert list(utd.model.encoders) == ["pose", "imu"] and utd.model.fusion.name == "slow"
    t = utd.train
    assert (t.pretrain_epochs, t.encoder_lr_scale, t.aux_loss_weight, t.modality_dropout) == (60, 0.1, 1.0, 0.3)
    assert utd.data.id_splits["test"] == ["*_s7_*"]
    assert build_model(utd.model, 27).modalities == ("pose", "imu")
    four = load_experiment(CONFIGS / "utd_mhad_skeleton_4stream.yaml")  # the four-stream ensemble
    assert [m.stream for m in four.data.modalities.values()] == ["joint", "bone", "motion", "bone_motion"]
    assert four.data.modalities["bone_motion"].tilt_deg == four.data.modalities["joint"].tilt_deg
    assert (four.train.pretrain_epochs, four.train.epochs) == (120, 0)
    model = build_model(four.model, 27)
    assert {type(e).__name__ for e in model.encoders.values()} == {"CTRGCN"}
    assert model.fusion.fixed_weights.tolist() == pytest.approx([0.6, 0.6, 0.4, 0.4])


def test_unknown_keys_are_rejected_with_their_path(tmp_path):
    cfg = tiny_config("store", tmp_path)
    cfg["train"]["lr_max"] = 1
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['lr_max'\] in train for TrainConfig"):
        experiment_from_dict(cfg)
    cfg = tiny_config("store", tmp_path)
    cfg["model"]["encoders"]["joint"]["kwarg"] = {}
    with pytest.raises(ValueError, match=r"\['kwarg'\] in model.encoders.joint for EncoderSpec"):
        experiment_from_dict(cfg)
    cfg = tiny_config("store", tmp_path)
    cfg["data"]["modalities"]["joint"]["strem"] = "joint"
    with pytest.raises(ValueError, match=r"\['strem'\] in data.modalities.joint"):
        experiment_from_dict(cfg)
    cfg = tiny_config("store", tmp_path)
    cfg["extra"] = 1
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match=r"c.yaml: unknown key\(s\) \['extra'\] for ExperimentConfig"):
        load_experiment(path)
    with pytest.raises(ValueError, match="needs a 'model' section"):
        experiment_from_dict({"data": cfg["data"]})


def test_wrong_types_are_rejected_with_their_path(tmp_path):
    """Values YAML parsed into the wrong type stop at loading, naming the key (they used to give
    tracebacks mid-training)."""
    for path, value, message in [
            ("train.epochs", 1.5, r"train.epochs: Input should be a valid integer.*\(got 1.5\)"),
            ("data.modalities", ["rgb"], r"data.modalities: Input should be a valid dictionary"),
            ("data.modalities.joint", "pose3d", "data.modalities.joint: expected a mapping of stream config keys, "
                                                "got 'pose3d'"),
            ("model.encoders.bone", "skeleton_gcn", "model.encoders.bone: Input should be a dictionary or an "
                                                    "instance of EncoderSpec"),
            ("train.amp", "no", r"train.amp: Input should be a valid boolean \(got 'no'\)"),
            ("train.lr", "fast", r"train.lr: Input should be a valid number"),
            ("data.modalities.joint.frames", "32f", "data.modalities.joint.frames: Input should be a valid integer"),
            ("data.modalities.joint.stream", "bones", r"data.modalities.joint.stream: Input should be 'joint', 'bone', "
                                                      r"'motion' or 'bone_motion' \(got 'bones'\)"),
            ("data.modalities.joint.kind", "skeleton", "data.modalities.joint: unknown kind 'skeleton'; valid kinds: "
                                                       "'rgb', 'flow', 'pose', 'audio', 'signal'"),
            # a key of another kind: named, with the keys this kind has
            ("data.modalities.joint.crop", 112, r"unknown key\(s\) \['crop'\] in data.modalities.joint for "
                                                r"PoseStreamConfig; valid keys: \['augment', 'frames'")]:
        cfg = tiny_config("store", tmp_path)
        node, *keys = path.split(".")
        parent = cfg[node]
        for k in keys[:-1]:
            parent = parent[k]
        parent[keys[-1]] = value
        with pytest.raises(ValueError, match=message):
            experiment_from_dict(cfg)
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(tiny_config("store", tmp_path)))
    with pytest.raises(ValueError, match=r"c.yaml: train.epochs: Input should be a valid integer"):
        load_experiment(p, ["train.epochs=1.5"])


def test_yaml_strings_become_numbers_and_bools_stay_strict(tmp_path):
    """PyYAML reads ``1e-3`` (no dot) as a string: it is a float here; ``amp: "no"`` is refused
    (pydantic alone would take it as False, and the old loader as true)."""
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(tiny_config("store", tmp_path)).replace("lr: 0.01", "lr: 1e-3"))
    assert yaml.safe_load(p.read_text())["train"]["lr"] == "1e-3"
    exp = load_experiment(p)
    assert exp.train.lr == 0.001 and isinstance(exp.train.lr, float)
    with pytest.raises(ValueError, match="train.amp: Input should be a valid boolean"):
        load_experiment(p, ["train.amp='no'"])


def test_overrides_and_value_checks(tmp_path):
    cfg = tiny_config("store", tmp_path)
    apply_overrides(cfg, ["train.epochs=7", "model.fusion.kwargs.mode=gate", "train.betas=[0.8, 0.9]"])
    exp = experiment_from_dict(cfg)
    assert exp.train.epochs == 7 and exp.model.fusion.kwargs == {"mode": "gate"} and exp.train.betas == (0.8, 0.9)
    with pytest.raises(ValueError, match="expected KEY.PATH=VALUE"):
        apply_overrides(cfg, ["train.epochs"])
    with pytest.raises(ValueError, match="train.modality_dropout must be in \\[0, 1\\], got 2"):
        TrainConfig(modality_dropout=2)
    with pytest.raises(ValueError, match="train.epochs must be >= 1"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="model.encoders must be a non-empty mapping"):
        ModelConfig(encoders={})


def test_resolved_config_round_trips(tmp_path):
    exp = experiment_from_dict(tiny_config("store", tmp_path / "run"))
    exp.classes = ["a", "b"]
    path = save_config(exp, tmp_path / "config.yaml")
    again = load_experiment(path)
    assert again == exp and again.classes == ["a", "b"]
    assert "lr: 0.01" in path.read_text() and "warmup_epochs" in path.read_text()  # defaults filled in


def test_build_model_errors_name_the_component(tmp_path):
    cfg = experiment_from_dict(tiny_config("store", tmp_path))
    cfg.model.encoders["bone"].kwargs["chanels"] = [[8, 1]]
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['chanels'\] in model.encoders.bone.kwargs for "
                                         r"skeleton_gcn \(STGCN\); valid keys: \['channels', 'dropout'"):
        build_model(cfg.model, 4)
    cfg = experiment_from_dict(tiny_config("store", tmp_path))
    cfg.model.encoders["bone"].kwargs.update(dropout="high", edge_importance="no")
    with pytest.raises(ValueError) as e:
        build_model(cfg.model, 4)
    assert [p.split(":")[0] for p in e.value.problems] == ["model.encoders.bone.kwargs.dropout",
                                                           "model.encoders.bone.kwargs.edge_importance"]
    cfg = experiment_from_dict(tiny_config("store", tmp_path))
    cfg.model.encoders["bone"].kwargs.update(dropout="0.25", channels=[[8, 1]])  # converted, as YAML gives them
    assert build_model(cfg.model, 4).encoders["bone"] is not None
    cfg.model.fusion.kwargs = {"mode": "poe", "dims": {"a": 1}}
    with pytest.raises(ValueError, match=r"model.fusion.kwargs: \['dims'\] of late \(LateFusion\) are set by the "
                                         r"model"):
        build_model(cfg.model, 4)
    cfg.model.fusion.kwargs = {"mode": "sum"}
    with pytest.raises(ValueError, match=r"model.fusion.kwargs.mode|unknown late fusion mode"):
        build_model(cfg.model, 4)
    cfg = experiment_from_dict(tiny_config("store", tmp_path))
    cfg.model.fusion.name = "nope"
    with pytest.raises(ValueError, match="unknown fusion method 'nope'; valid choices"):
        build_model(cfg.model, 4)


def test_a_run_config_written_before_kind_configs_still_loads(tmp_path):
    """Runs saved every stream with every kind's keys (at their defaults): they still evaluate."""
    import dataclasses

    from multimodal_har.data.kinds import inferred_config
    from multimodal_har.experiment import load_run_config

    cfg = tiny_config("store", tmp_path)
    old_stream = dataclasses.asdict(inferred_config()())  # every key of every kind, at its default
    for m, stream in cfg["data"]["modalities"].items():
        cfg["data"]["modalities"][m] = {**old_stream, **stream}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['clip_length', 'crop'"):
        load_experiment(tmp_path / "config.yaml")  # a user's config: keys of other kinds are errors
    exp = load_run_config(tmp_path)
    assert exp.data.modalities["joint"] == experiment_from_dict(tiny_config("store", tmp_path)).data.modalities["joint"]
    cfg["data"]["modalities"]["joint"]["crop"] = 112  # set, not a default: still named
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['crop'\] in data.modalities.joint"):
        load_run_config(tmp_path)
