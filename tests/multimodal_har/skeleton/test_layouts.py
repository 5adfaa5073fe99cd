"""Every registered layout is a well-formed skeleton; the published joint orders are kept."""

import numpy as np
import pytest

from multimodal_har.skeleton.layouts import LAYOUTS, Layout, get_layout


def _tiny(**kw):
    spec = dict(name="t", joints=("a", "b", "c"), bones=(("b", "a"), ("c", "b")), center="a",
                parts={"all": ("a", "b", "c")}, torso=(("a",), ("c",)))
    return Layout(**{**spec, **kw})


@pytest.mark.parametrize("name", LAYOUTS.names())
def test_every_layout_is_a_tree_rooted_at_its_centre(name):
    L = get_layout(name)
    assert L.edges.shape == (2, L.num_joints - 1)
    parent = dict(L.bones)
    for j in L.joints:  # every joint reaches the centre
        for _ in range(L.num_joints):
            if j == L.center:
                break
            j = parent[j]
        assert j == L.center
    assert sorted(j for names in L.parts.values() for j in names) == sorted(L.joints)
    x = np.random.default_rng(0).normal(size=(4, L.num_joints, 3))
    lower, upper = L.torso_points(x)
    assert lower.shape == upper.shape == (4, 3)


@pytest.mark.parametrize("name", LAYOUTS.names())
def test_one_naming_convention(name):
    """Sides come last (``shoulder_left``) and every left joint has its right twin."""
    joints = set(get_layout(name).joints)
    assert not any(j.startswith(("left_", "right_")) for j in joints)
    assert {j[: -len("_left")] for j in joints if j.endswith("_left")} == \
        {j[: -len("_right")] for j in joints if j.endswith("_right")}
    assert {"shoulder_left", "elbow_left", "wrist_left", "hip_left", "knee_left", "ankle_left"} <= joints


@pytest.mark.parametrize("name, checks", [
    ("kinect_v1_20", {0: "spine_base", 2: "spine_shoulder", 3: "head", 7: "hand_left", 12: "hip_left", 19: "foot_right"}),
    ("ntu_25", {0: "spine_base", 1: "spine_mid", 2: "neck", 3: "head", 4: "shoulder_left", 11: "hand_right",
                16: "hip_right", 20: "spine_shoulder", 21: "hand_tip_left", 22: "thumb_left", 24: "thumb_right"}),
    ("coco_17", {0: "nose", 1: "eye_left", 4: "ear_right", 5: "shoulder_left", 10: "wrist_right",
                 11: "hip_left", 16: "ankle_right"}),
    ("mediapipe_33", {0: "nose", 1: "eye_inner_left", 3: "eye_outer_left", 4: "eye_inner_right", 7: "ear_left",
                      9: "mouth_left", 11: "shoulder_left", 12: "shoulder_right", 17: "pinky_left",
                      19: "index_left", 22: "thumb_right", 23: "hip_left", 28: "ankle_right",
                      29: "heel_left", 31: "foot_index_left", 32: "foot_index_right"}),
    ("h36m_17", {0: "pelvis", 1: "hip_right", 3: "ankle_right", 4: "hip_left", 7: "spine", 8: "thorax",
                 9: "neck", 10: "head", 11: "shoulder_left", 13: "wrist_left", 16: "wrist_right"}),
])
def test_published_joint_orders(name, checks):
    L = get_layout(name)
    assert L.num_joints == int(name.rsplit("_", 1)[1])
    assert {i: L.joints[i] for i in checks} == checks


def test_reorder_and_bone_vectors():
    L = _tiny()
    x = np.array([[0.0, 0, 0], [1, 0, 0], [1, 2, 0]])
    np.testing.assert_array_equal(L.bone_vectors(x), [[1, 0, 0], [0, 2, 0]])
    stored = x[[2, 0, 1]]  # a file that stores c, a, b
    np.testing.assert_array_equal(L.reorder(stored, ["c", "a", "b"], axis=0), x)
    with pytest.raises(ValueError, match=r"missing \['b'\], unknown \['z'\]"):
        L.reorder(stored, ["c", "a", "z"], axis=0)
    np.testing.assert_array_equal(L.point(x, ["a", "c"]), [0.5, 1, 0])


@pytest.mark.parametrize("kw, message", [
    (dict(bones=(("b", "z"), ("c", "b"))), "names an unknown joint"),
    (dict(center="z"), "centre 'z' is not a joint"),
    (dict(bones=(("b", "a"), ("b", "c"))), "joint 'b' has two parents"),
    (dict(bones=(("b", "a"), ("a", "c"))), "centre 'a' must not have a parent"),
    (dict(bones=(("b", "a"),)), "joint 'c' does not reach the centre"),
    (dict(bones=(("b", "c"), ("c", "b"))), "cycle"),
    (dict(parts={"x": ("a", "b", "b", "z")}), r"unknown \['z'\], in several parts \['b'\], in none \['c'\]"),
    (dict(torso=(("a",), ("q",))), "torso joint 'q'"),
    (dict(torso=(("a",),)), "torso must be"),
])
def test_layout_errors(kw, message):
    with pytest.raises(ValueError, match=message):
        _tiny(**kw)


def test_registry_lists_choices():
    with pytest.raises(ValueError, match="unknown skeleton layout 'nope'; valid choices: .*kinect_v1_20"):
        get_layout("nope")
    assert get_layout(get_layout("coco_17")) is get_layout("coco_17")
    with pytest.raises(TypeError):
        Layout("t", ("a",), (), "a", {"x": ("a",)}, (("a",), ("a",)))  # keyword-only
