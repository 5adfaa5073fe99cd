import pytest

from fusion import FUSION, build_fusion


def test_unknown_fusion_method_lists_choices():
    with pytest.raises(ValueError, match=r"unknown fusion method 'nope'; valid choices: "):
        build_fusion("nope")
    assert "nope" not in FUSION
