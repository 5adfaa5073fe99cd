"""``mhar config schema`` and ``mhar config check``: the experiment config's JSON schema for
editors, and a config (with ``--set`` overrides) validated without training."""

import json

import pytest
import yaml

from multimodal_har.cli import main
from multimodal_har.config import adapter
from multimodal_har.data.kinds import kind_names
from tests.conftest import ROOT as REPO
from tests.multimodal_har.training_data import tiny_config


def test_config_schema_is_written_and_describes_the_experiment(tmp_path, capsys):
    out = tmp_path / "schema.json"
    assert main(["config", "schema", "--out", str(out)]) == 0
    assert f"wrote the experiment config's JSON schema to {out}" in capsys.readouterr().out
    schema = json.loads(out.read_text())
    assert schema["$schema"].startswith("https://json-schema.org/") and schema["required"] == ["data", "model"]
    defs = schema["$defs"]
    assert defs["TrainConfig"]["properties"]["amp"] == {"default": True, "title": "Amp", "type": "boolean"}
    assert defs["TrainConfig"]["additionalProperties"] is False  # unknown keys are errors in editors too
    # one schema per stream kind, told apart by the `kind` constant (null: read from the store)
    arms = [a["$ref"].split("/")[-1] for a in defs["DataConfig"]["properties"]["modalities"]["additionalProperties"]["oneOf"]]
    assert len(arms) == len(kind_names()) + 1
    kinds = [defs[a]["properties"]["kind"].get("const", defs[a]["properties"]["kind"].get("type")) for a in arms]
    assert kinds == [*kind_names(), "null"]
    assert "crop" in defs["RgbStreamConfig"]["properties"] and "crop" not in defs["PoseStreamConfig"]["properties"]
    # to standard output without --out; the same document
    assert main(["config", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == schema


def test_the_schema_accepts_the_example_configs():
    jsonschema = pytest.importorskip("jsonschema")
    from multimodal_har.experiment import experiment_schema

    schema = experiment_schema()
    for path in sorted((REPO / "configs").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    bad = yaml.safe_load((REPO / "configs" / "video_4modality.yaml").read_text())
    bad["data"]["modalities"]["pose"]["crop"] = 3  # a key pose streams do not have
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_config_check_validates_the_file_and_the_overrides(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(tiny_config("store", tmp_path)))
    assert main(["config", "check", str(p), "--set", "train.lr=1e-3"]) == 0
    assert "ok:" in capsys.readouterr().out
    assert main(["config", "check", str(p), "--set", "train.epochs=1.5", "--set", "train.lr_max=2"]) == 2
    err = capsys.readouterr().err
    assert "train.epochs: Input should be a valid integer" in err and "(from --set train.epochs=1.5)" in err
    assert "unknown key(s) ['lr_max'] in train for TrainConfig" in err and "(from --set train.lr_max=2)" in err
    cfg = tiny_config("store", tmp_path)
    cfg["model"]["encoders"]["joint"]["kwargs"]["chanels"] = [[8, 1]]
    p.write_text(yaml.safe_dump(cfg))
    assert main(["config", "check", str(p)]) == 2
    assert "unknown key(s) ['chanels'] in model.encoders.joint.kwargs for skeleton_gcn" in capsys.readouterr().err


def test_the_schema_is_the_validators_own():
    """The schema comes from the validator that loads configs (nothing to keep in step by hand)."""
    from multimodal_har.experiment import ExperimentConfig, experiment_schema

    assert experiment_schema()["$defs"] == adapter(ExperimentConfig).json_schema()["$defs"]
