import numpy as np
import pytest

from multimodal_har.skeleton.layouts import LAYOUTS, Layout, get_layout


def test_kinect_layout_is_a_tree_rooted_at_the_centre():
    L = get_layout("kinect_v1_20")
    assert L.num_joints == 20 and L.edges.shape == (2, 19)
    parent = {c: p for c, p in L.bones}
    for j in L.joints:  # every joint reaches the centre
        seen = 0
        while j != L.center:
            j = parent[j]
            seen += 1
            assert seen < 20
    assert sorted(sum((list(v) for v in L.parts.values()), [])) == sorted(L.joints)


def test_reorder_and_bone_vectors():
    L = Layout(name="t", joints=("a", "b", "c"), bones=(("b", "a"), ("c", "b")), center="a")
    x = np.array([[0.0, 0, 0], [1, 0, 0], [1, 2, 0]])
    np.testing.assert_array_equal(L.bone_vectors(x), [[1, 0, 0], [0, 2, 0]])
    stored = x[[2, 0, 1]]  # a file that stores c, a, b
    np.testing.assert_array_equal(L.reorder(stored, ["c", "a", "b"], axis=0), x)
    with pytest.raises(ValueError, match=r"missing \['b'\], unknown \['z'\]"):
        L.reorder(stored, ["c", "a", "z"], axis=0)


def test_layout_errors():
    with pytest.raises(ValueError, match="unknown joint"):
        Layout(name="t", joints=("a",), bones=(("b", "a"),), center="a")
    with pytest.raises(ValueError, match="unknown skeleton layout 'nope'; valid choices: .*kinect_v1_20"):
        get_layout("nope")
    assert "kinect_v1_20" in LAYOUTS
