"""Layout conversion: every layout reaches common_13, derived joints are the documented means."""

import numpy as np
import pytest

from multimodal_har.skeleton.datasets import read_utkinect
from multimodal_har.skeleton.layouts import LAYOUTS, get_layout
from multimodal_har.skeleton.mapping import convert, correspondence
from tests.conftest import SHARED

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
        np.testing.assert_allclose(np.linalg.norm(y[..., C13.index("elbow_left"), :] - y[..., C13.index("wrist_left"), :], axis=-1),
                                   np.linalg.norm(q.keypoint[..., K.index("elbow_left"), :] - q.keypoint[..., K.index("wrist_left"), :], axis=-1))
