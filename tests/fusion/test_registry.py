"""The fusion registry: every method registered by name, lazily; unknown names list the choices."""

import pytest

from multimodal_har.fusion import FUSION, build_fusion
from multimodal_har.fusion.base import Fusion

from .common import DIMS, TINY

NAMES = ["concat", "cross_attention", "early", "late", "slow"]


def test_unknown_fusion_method_lists_choices():
    with pytest.raises(ValueError, match=r"unknown fusion method 'nope'; valid choices: "
                                         r"concat, cross_attention, early, late, slow$"):
        build_fusion("nope")
    assert "nope" not in FUSION


def test_every_method_is_registered_and_builds():
    assert FUSION.names() == NAMES == sorted(TINY)
    for name in NAMES:
        f = build_fusion(name, dims=DIMS, **TINY[name])
        assert isinstance(f, Fusion) and isinstance(f.out_dim, int) and f.out_dim > 0
        assert f.modalities == ("a", "b", "c")
        assert f.produces_logits == (name == "late")


def test_duplicate_name_raises():
    with pytest.raises(ValueError, match="fusion method 'late' is already registered"):
        FUSION.register("late", "multimodal_har.fusion.late:LateFusion")


@pytest.mark.parametrize("name", NAMES)
def test_bad_dims_are_named(name):
    with pytest.raises(ValueError, match="dims must be a non-empty dict"):
        build_fusion(name, **{**TINY[name], "dims": {}})
    with pytest.raises(ValueError, match=r"dims\['b'\] must be a positive int"):
        build_fusion(name, **{**TINY[name], "dims": {"a": 4, "b": 0}})
    with pytest.raises(ValueError, match="without '.'"):
        build_fusion(name, **{**TINY[name], "dims": {"rgb.left": 4}})
