"""Every registered layout is a well-formed skeleton with its published joint order; conversion
between layouts maps every layout to common_13 and derives joints as documented."""

import numpy as np
import pytest

from multimodal_har.skeleton.datasets import read_utkinect
from multimodal_har.skeleton.layouts import LAYOUTS, Layout, convert, correspondence, get_layout
from tests.conftest import SHARED


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


C13 = get_layout("common_13")


def _random(name, lead=(5, 2)):
    L = get_layout(name)
    rng = np.random.default_rng(0)
    return L, rng.normal(size=(*lead, L.num_joints, 3)).astype(np.float32), \
        rng.uniform(0.1, 1, size=(*lead, L.num_joints)).astype(np.float32)


@pytest.mark.parametrize("name", LAYOUTS.names())
def test_every_layout_maps_to_common_13(name):
    L, x, s = _random(name)
    y, ys = convert(x, s, L, "common_13")
    assert y.shape == (5, 2, 13, 3) and ys.shape == (5, 2, 13) and y.dtype == x.dtype
    for j in C13.joints:  # joints of the same name are copied
        if j in L.joints:
            np.testing.assert_array_equal(y[..., C13.index(j), :], x[..., L.index(j), :])
            np.testing.assert_array_equal(ys[..., C13.index(j)], s[..., L.index(j)])
    z, zs = convert(x, s, L, L)  # to itself: the identity
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(zs, s)


@pytest.mark.parametrize("name", ["coco_17", "mediapipe_33"])
def test_derived_pelvis_is_the_hips_mean_with_the_lower_score(name):
    L, x, s = _random(name)
    y, ys = convert(x, s, L, C13)
    hips = L.indices(["hip_left", "hip_right"])
    np.testing.assert_allclose(y[..., 0, :], x[..., hips, :].mean(axis=-2))
    np.testing.assert_array_equal(ys[..., 0], s[..., hips].min(axis=-1))


def test_pelvis_of_layouts_that_have_one():
    for name, joint in [("kinect_v1_20", "spine_base"), ("ntu_25", "spine_base"), ("h36m_17", "pelvis")]:
        L, x, s = _random(name)
        y, _ = convert(x, s, L, C13)
        np.testing.assert_array_equal(y[..., 0, :], x[..., L.index(joint), :])


@pytest.mark.parametrize("src, via", [("ntu_25", "kinect_v1_20"), ("mediapipe_33", "coco_17")])
def test_conversions_compose(src, via):
    L, x, s = _random(src)
    direct = convert(x, s, L, C13)
    two_steps = convert(*convert(x, s, L, via), via, C13)
    for a, b in zip(direct, two_steps):
        np.testing.assert_array_equal(a, b)


def test_round_trip_through_the_joints_both_layouts_share():
    """ntu -> kinect -> common equals ntu -> common; kinect -> ntu is refused, not padded."""
    L, x, s = _random("ntu_25")
    k, ks = convert(x, s, L, "kinect_v1_20")
    np.testing.assert_array_equal(k, x[..., L.indices(get_layout("kinect_v1_20").joints), :])
    with pytest.raises(ValueError, match=r"kinect_v1_20 has no joint for \['neck', 'hand_tip_left', "
                                         r"'thumb_left', 'hand_tip_right', 'thumb_right'\]"):
        convert(k, ks, "kinect_v1_20", L)


@pytest.mark.parametrize("src, dst, missing", [
    ("common_13", "coco_17", ["nose", "eye_left", "eye_right", "ear_left", "ear_right"]),
    ("coco_17", "h36m_17", ["spine", "thorax", "neck", "head"]),
    ("h36m_17", "kinect_v1_20", ["spine_base", "spine_mid", "spine_shoulder", "hand_left"]),
])
def test_unmappable_targets_are_listed(src, dst, missing):
    with pytest.raises(ValueError, match="cannot convert") as err:
        correspondence(src, dst)
    for j in missing:
        assert repr(j) in str(err.value)


def test_missing_people_and_joints_stay_zero():
    L, x, s = _random("coco_17")
    x[1, 0], s[1, 0] = 0, 0  # person 0 missing in frame 1
    x[2, 1, L.index("hip_left")], s[2, 1, L.index("hip_left")] = 0, 0  # one hip missing
    y, ys = convert(x, s, L, C13)
    assert not y[1, 0].any() and not ys[1, 0].any()
    assert not y[2, 1, 0].any() and ys[2, 1, 0] == 0  # no pelvis from one hip
    assert y[2, 1, C13.index("hip_right")].any() and np.isfinite(y).all()
    y, ys = convert(x, None, L, C13)
    assert ys is None and not y[1, 0].any()


def test_shape_errors():
    L, x, s = _random("coco_17")
    with pytest.raises(ValueError, match=r"x must be \(\.\.\., 25, C\) for layout ntu_25"):
        convert(x, s, "ntu_25", C13)
    with pytest.raises(ValueError, match="score must be"):
        convert(x, s[..., :3], L, C13)


def test_real_kinect_data_to_common_13():
    seqs = list(read_utkinect(SHARED / "skeleton" / "utkinect"))[:10]
    K = get_layout("kinect_v1_20")
    for q in seqs:
        y, ys = convert(q.keypoint, q.score, K, C13)
        assert y.shape == (len(q.keypoint), 1, 13, 3) and (ys == 1).all()
        # the shared bones keep their lengths
        forearm = [np.linalg.norm(a[..., L.index("elbow_left"), :] - a[..., L.index("wrist_left"), :], axis=-1)
                   for a, L in ((y, C13), (q.keypoint, K))]
        np.testing.assert_allclose(*forearm)


def test_the_skeleton_package_imports_only_numpy():
    import subprocess
    import sys

    code = ("import sys, multimodal_har.skeleton as s; assert all(hasattr(s, n) for n in s.__all__);"
            "print([m for m in ('PIL', 'torch', 'cv2', 'h5py') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_streams_are_the_same_in_numpy_and_torch():
    """The dataset (numpy, (T, M, V, C)) and the encoders (torch, (B, T, M, V, C)) share one
    definition of the bone and motion streams."""
    import torch

    L = get_layout("kinect_v1_20")
    x = np.random.default_rng(0).normal(size=(2, 6, 1, 20, 3)).astype(np.float32)
    for name in ("joint", "bone", "motion"):
        a = L.stream(x[0], name)  # one sample, numpy
        b = L.stream(torch.from_numpy(x), name)[0].numpy()  # a batch, torch
        np.testing.assert_array_equal(a, b)
    e = L.edges
    np.testing.assert_allclose(L.stream(x, "bone")[..., e[0], :], x[..., e[0], :] - x[..., e[1], :])
    assert (L.stream(x, "bone")[..., L.index(L.center), :] == 0).all()
    np.testing.assert_allclose(L.stream(x, "motion")[:, :-1], x[:, 1:] - x[:, :-1])
    assert (L.stream(x, "motion")[:, -1] == 0).all()
    with pytest.raises(ValueError, match="unknown input stream 'speed'; valid choices: joint, bone, motion"):
        L.stream(x, "speed")
