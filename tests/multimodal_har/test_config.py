from dataclasses import dataclass, field
from typing import Optional

import pytest

from multimodal_har.config import config_hash, from_dict, load_yaml, to_dict


@dataclass
class Inner:
    depth: int = 2


@dataclass
class Outer:
    name: str = "x"
    rate: Optional[float] = None
    inner: Inner = field(default_factory=Inner)


def test_from_dict_builds_nested_and_rejects_unknown_keys_by_name():
    cfg = from_dict(Outer, {"name": "y", "inner": {"depth": 5}})
    assert cfg == Outer(name="y", inner=Inner(depth=5))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['colour'\] for Outer; valid keys: \['inner', 'name', 'rate'\]"):
        from_dict(Outer, {"colour": "red"})
    with pytest.raises(ValueError, match=r"\['deep'\] in inner for Inner"):
        from_dict(Outer, {"inner": {"deep": 1}})


def test_config_hash_is_stable_and_sensitive():
    a = config_hash("rgb", 1, Outer())
    assert a == config_hash("rgb", 1, from_dict(Outer, to_dict(Outer())))
    assert len(a) == 16
    assert a != config_hash("rgb", 2, Outer())  # algorithm version
    assert a != config_hash("rgb", 1, Outer(rate=5.0))
    assert a != config_hash("audio", 1, Outer())


def test_load_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: z\nrate: 2.5\n")
    assert from_dict(Outer, load_yaml(p)) == Outer(name="z", rate=2.5)
    p.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="expected a YAML mapping"):
        load_yaml(p)
    p.write_text("")
    assert load_yaml(p) == {}
