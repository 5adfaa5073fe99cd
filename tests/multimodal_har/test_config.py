from dataclasses import dataclass, field
from typing import Optional

import pytest

import typing

from multimodal_har.config import (ConfigError, coerce_types, config_dataclass, config_hash, from_dict, load_yaml,
                                   to_dict)


@dataclass
class Inner:
    depth: int = 2

    def __post_init__(self) -> None:
        if self.depth < 0:
            raise ValueError(f"depth must be >= 0, got {self.depth}")


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


@config_dataclass
class Typed:
    count: int = 1
    rate: float = 1.0
    flag: bool = False
    maybe: Optional[bool] = None
    sizes: Optional[list[int]] = None
    pair: tuple[float, float] = (0.0, 1.0)
    parts: dict[str, Inner] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}")


def test_from_dict_converts_to_the_declared_types():
    """YAML reads ``1e-3`` as a string and ``3`` as an int: both become what the field says."""
    cfg = from_dict(Typed, {"count": "3", "rate": "1e-3", "sizes": [1, 2], "pair": [1, "2.5"],
                            "parts": {"a": {"depth": 4}}})
    assert cfg.count == 3 and cfg.rate == 0.001 and cfg.pair == (1.0, 2.5)
    assert cfg.parts == {"a": Inner(depth=4)} and isinstance(cfg.parts["a"], Inner)
    assert isinstance(from_dict(Typed, {"rate": 2}).rate, float)


@pytest.mark.parametrize("data, message", [
    ({"count": 1.5}, r"cfg.count: Input should be a valid integer, got a number with a fractional part \(got 1.5\)"),
    ({"count": True}, r"cfg.count: .*expected a number, not True"),
    ({"rate": "fast"}, r"cfg.rate: Input should be a valid number.*\(got 'fast'\)"),
    ({"rate": float("nan")}, r"cfg.rate: Input should be a finite number"),
    ({"flag": "no"}, r"cfg.flag: Input should be a valid boolean \(got 'no'\)"),  # strict: YAML's "no" is no bool
    ({"flag": "yes"}, r"cfg.flag: Input should be a valid boolean"),
    ({"flag": 1}, r"cfg.flag: Input should be a valid boolean"),
    ({"maybe": "true"}, r"cfg.maybe: Input should be a valid boolean"),
    ({"sizes": 3}, r"cfg.sizes: Input should be a valid list \(got 3\)"),
    ({"sizes": [1, "x"]}, r"cfg.sizes\[1\]: Input should be a valid integer"),
    ({"pair": [0, None]}, r"cfg.pair\[1\]: Input should be a valid number \(got None\)"),
    ({"parts": ["a"]}, r"cfg.parts: Input should be a valid dictionary"),
    ({"parts": {"a": 3}}, r"cfg.parts.a: Input should be a dictionary or an instance of Inner \(got 3\)"),
    ({"parts": {"a": {"depht": 3}}}, r"unknown key\(s\) \['depht'\] in cfg.parts.a for Inner; valid keys: \['depth'\]"),
    ({"inner": {"depth": 2.5}}, r"cfg.inner.depth: Input should be a valid integer"),
    ({"count": -1}, r"^count must be >= 0, got -1$"),  # the object's own check, at the top: its message
    ({"parts": {"a": {"depth": 2}}, "inner": {"depth": -3}}, r"^cfg.inner: depth must be >= 0, got -3$"),  # nested
])
def test_from_dict_names_the_key_path_of_a_bad_value(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Typed, data, where="cfg")


def test_from_dict_reports_every_problem_at_once():
    with pytest.raises(ConfigError) as e:
        from_dict(Typed, {"colour": 1, "count": "x", "inner": {"depth": "y", "deep": 2}})
    assert e.value.problems[:2] == [
        "unknown key(s) ['colour'] for Typed; valid keys: ['count', 'flag', 'inner', 'maybe', 'pair', 'parts', "
        "'rate', 'sizes']",
        "unknown key(s) ['deep'] in inner for Inner; valid keys: ['depth']"]
    assert {p.split(":")[0] for p in e.value.problems[2:]} == {"count", "inner.depth"}
    assert isinstance(e.value, ValueError)  # callers catching ValueError keep working


def test_config_dataclass_stays_a_plain_dataclass():
    import dataclasses

    t = Typed(count=2)
    assert dataclasses.replace(t, rate=3.0).rate == 3.0 and dataclasses.asdict(t)["count"] == 2
    assert typing.get_type_hints(Typed)["flag"] is bool  # StrictBool is a bool with a marker


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


def test_config_hash_is_canonical_for_numbers():
    """``--fps 4`` and ``--fps 4.0`` (or YAML ``fps: 4``) are one config: one hash, no redo."""
    from multimodal_har.extractors import build_extractor

    assert config_hash("rgb", 1, Outer(rate=4)) == config_hash("rgb", 1, Outer(rate=4.0))
    assert build_extractor("rgb", fps=4).config_hash == build_extractor("rgb", fps=4.0).config_hash
    assert build_extractor("audio", win_ms=25).config_hash == build_extractor("audio").config_hash


def test_coerce_types_checks_values_against_the_field_types():
    from multimodal_har.extractors import build_extractor

    assert coerce_types(Outer, {"rate": 4, "name": "a"}) == {"rate": 4.0, "name": "a"}
    assert coerce_types(Inner, {"depth": 3.0}) == {"depth": 3}
    for data, match in [({"depth": 2.5}, "depth must be an integer, got 2.5"),
                        ({"depth": "abc"}, "depth must be an integer, got 'abc'"),
                        ({"depth": True}, "depth must be an integer, got True"),
                        ({"depth": None}, "depth must be an integer, got None")]:
        with pytest.raises(ValueError, match=match):
            coerce_types(Inner, data, where="inner")
    with pytest.raises(ValueError, match="rate must be a finite number or None, got 'fast'"):
        coerce_types(Outer, {"rate": "fast"})
    with pytest.raises(ValueError, match="rate must be a finite number or None, got nan"):
        coerce_types(Outer, {"rate": float("nan")})
    # what the extractors are built from (YAML files, the command line, Python keywords)
    with pytest.raises(ValueError, match="stride must be an integer, got 2.5"):
        build_extractor("rgb", stride=2.5)
    with pytest.raises(ValueError, match="short_side must be an integer or None, got 'abc'"):
        build_extractor("rgb", {"short_side": "abc"})


# the stores' provenance: an extractor's config hash decides whether a resumed extraction redoes
# an entry, so a change in how configs are read or canonicalised must not move these
PINNED_HASHES = {"audio": "d03c0d846977e8da", "dis": "93d2d62aafe3bc4d", "farneback": "26ca43a7e6ebdc24",
                 "mediapipe": "45c015f3654d6ec0", "mmpose": "9c72e02e7bba28db", "ptlflow": "b75c9199dfd64857",
                 "raft": "58e1671079b6b446", "rgb": "cbecc02b26eb6da3", "tvl1": "76a3934a2102dd95"}


@pytest.mark.parametrize("name", sorted(PINNED_HASHES))
def test_extractor_config_hashes_are_pinned(name):
    from multimodal_har.extractors import build_extractor

    assert build_extractor(name).config_hash == PINNED_HASHES[name]
    assert build_extractor(name, {}).config_hash == PINNED_HASHES[name]


class Net:
    def __init__(self, *, width: int, depth: int = 2, act: str = "relu", bias: bool = True,
                 sizes: tuple[int, ...] = (1,), dims: Optional[dict] = None) -> None:
        self.args = dict(width=width, depth=depth, act=act, bias=bias, sizes=sizes, dims=dims)


def test_check_kwargs_against_the_constructor():
    from multimodal_har.config import check_kwargs

    assert check_kwargs(Net, {"width": "8", "sizes": [1, 2]}, where="m.kwargs") == {"width": 8, "sizes": (1, 2)}
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['widht'\] in m.kwargs for net \(Net\); valid keys: "
                                          r"\['act', 'bias', 'depth', 'dims', 'sizes', 'width'\]"):
        check_kwargs(Net, {"widht": 8, "width": 8}, where="m.kwargs", name="net")
    with pytest.raises(ConfigError) as e:
        check_kwargs(Net, {"width": 1.5, "bias": "no", "sizes": [1, "x"]}, where="m.kwargs")
    assert [p.split(":")[0] for p in e.value.problems] == ["m.kwargs.width", "m.kwargs.bias", "m.kwargs.sizes[1]"]
    with pytest.raises(ConfigError, match=r"m.kwargs: Net needs \['width'\] \(no default\)"):
        check_kwargs(Net, {}, where="m.kwargs")
    with pytest.raises(ConfigError, match=r"m.kwargs: \['dims'\] of Net are set by the model"):
        check_kwargs(Net, {"width": 1, "dims": {}}, where="m.kwargs", provided=["dims"])

    def anything(*, a: int = 0, **rest):
        return a

    assert check_kwargs(anything, {"a": "3", "b": object}, where="f") == {"a": 3, "b": object}
