"""UTD-MHAD reader on the real files: UTD's joint order checked on the data, one timeline for
skeleton, inertial and depth, the cross-subject split, and bad files named in the error."""

import shutil
import warnings

import numpy as np
import pytest

from multimodal_har.skeleton.layouts import KINECT_V1_20 as K
from multimodal_har.skeleton.splits import get_split
from multimodal_har.skeleton.utd_mhad import (INERTIAL_RATE_HZ, UTD_MHAD_ACTIONS, UTD_MHAD_ORDER, UTDFileError,
                                              load_skeleton, read_utd_mhad)
from tests.conftest import SHARED

UTD = SHARED / "utd_mhad_train"
# actions done with the right arm alone (the inertial sensor's arm), by name
RIGHT_ARM_ONLY = ("swipe_left", "swipe_right", "wave", "throw", "draw_x", "draw_circle_cw", "draw_circle_ccw",
                  "draw_triangle", "bowling", "tennis_swing", "knock", "catch")

pytestmark = pytest.mark.skipif(not UTD.is_dir(), reason=f"no UTD-MHAD data at {UTD}")


@pytest.fixture(scope="module")
def skeletons():
    """Every skeleton of the 431 samples (reading them all takes ~0.5 s)."""
    return list(read_utd_mhad(UTD, modalities=("skeleton",)))


def _joint(sample, name):
    return sample.skeleton.keypoint[:, 0, K.index(name)]  # (T, 3)


def test_reads_every_sample_with_labels_and_ids(skeletons):
    assert len(skeletons) == 431
    assert len(UTD_MHAD_ACTIONS) == 27 and sorted(UTD_MHAD_ORDER) == sorted(K.joints)
    s = skeletons[0]
    assert (s.id, s.label, s.label_index, s.subject, s.trial) == ("a1_s1_t1", "swipe_left", 0, 1, 1)
    assert s.skeleton.layout == "kinect_v1_20" and s.skeleton.keypoint.dtype == np.float32
    assert s.skeleton.keypoint.shape[1:] == (1, 20, 3) and (s.skeleton.score == 1).all()
    assert {x.label for x in skeletons} == set(UTD_MHAD_ACTIONS)
    assert {x.subject for x in skeletons} == {1, 3, 5, 7}


def test_joint_order_upright(skeletons):
    """Head and shoulder centre above the hip centre (y up) in virtually every frame."""
    for upper in ("head", "spine_shoulder", "spine_mid"):
        above = np.concatenate([_joint(s, upper)[:, 1] > _joint(s, "spine_base")[:, 1] for s in skeletons])
        assert above.mean() > 0.999, upper
    head = np.concatenate([_joint(s, "head")[:, 1] > _joint(s, "spine_shoulder")[:, 1] for s in skeletons])
    knee = np.concatenate([_joint(s, "knee_left")[:, 1] < _joint(s, "hip_left")[:, 1] for s in skeletons])
    assert head.mean() > 0.99 and knee.mean() > 0.95


def test_joint_order_left_right_bones_symmetric(skeletons):
    for child, parent in (("elbow", "shoulder"), ("wrist", "elbow"), ("knee", "hip"), ("ankle", "knee")):
        length = {side: np.median(np.concatenate([
            np.linalg.norm(_joint(s, f"{child}_{side}") - _joint(s, f"{parent}_{side}"), axis=-1)
            for s in skeletons])) for side in ("left", "right")}
        assert abs(length["left"] - length["right"]) < 0.1 * length["right"], (child, parent, length)
        assert 0.15 < length["right"] < 0.6


def test_joint_order_right_hand_moves_in_right_arm_actions(skeletons):
    """The inertial sensor is on the right wrist; one-armed actions move the right hand (data: 2.9-20x
    the left hand's path), the two-handed clap moves both alike."""
    def path(s, j):
        return np.linalg.norm(np.diff(_joint(s, j), axis=0), axis=-1).sum()

    for action in RIGHT_ARM_ONLY:
        group = [s for s in skeletons if s.label == action]
        right = np.mean([path(s, "hand_right") for s in group])
        left = np.mean([path(s, "hand_left") for s in group])
        assert right > 2.5 * left, (action, right, left)
    clap = [s for s in skeletons if s.label == "clap"]
    ratio = np.mean([path(s, "hand_right") for s in clap]) / np.mean([path(s, "hand_left") for s in clap])
    assert 0.7 < ratio < 1.4


def test_timelines_share_the_inertial_duration():
    samples = list(read_utd_mhad(UTD, subjects=[3], actions=["throw", "jog"], trials=[2]))
    assert [s.id for s in samples] == ["a5_s3_t2", "a22_s3_t2"]
    for s in samples:
        n, t = len(s.inertial), len(s.skeleton.keypoint)
        assert s.inertial.shape == (n, 6) and s.inertial.dtype == np.float32
        assert s.duration == pytest.approx(n / INERTIAL_RATE_HZ) and s.timeline == "inertial"
        assert s.inertial_timestamps[0] == 0 and s.inertial_timestamps[-1] == pytest.approx((n - 1) / 50)
        assert s.skeleton_timestamps.shape == (t,) and s.skeleton_timestamps[0] == 0
        assert s.skeleton_timestamps[-1] == pytest.approx(s.duration * (t - 1) / t)
        assert np.allclose(np.diff(s.skeleton_timestamps), s.duration / t)
        assert 2.4 < n / t < 4.5  # the README's ratio
        depth = s.load_depth()
        assert depth.shape == (t, 240, 320) and depth.dtype == np.uint16
        assert np.array_equal(s.depth_timestamps(len(depth)), s.skeleton_timestamps)
        assert 500 < np.median(depth[depth > 0]) < 4500  # millimetres
        assert abs(s.inertial[:, :3]).max() < 16 and abs(s.inertial[:, 3:]).max() > 20  # g, deg/s


def test_cross_subject_split():
    sp = get_split("utd_mhad", "cross_subject")
    assert sp.train == {1, 3, 5, 7} and sp.test == {2, 4, 6, 8}
    assert all(s.split == "train" for s in read_utd_mhad(UTD, modalities=("skeleton",), limit=3))
    assert next(read_utd_mhad(UTD, modalities=("inertial",), split=None)).split is None
    with pytest.raises(ValueError, match="valid choices: cross_subject"):
        next(read_utd_mhad(UTD, split="cross_view"))


def test_filters_and_bad_arguments():
    assert len(list(read_utd_mhad(UTD, modalities=("inertial",), subjects=[1], actions=[1, "wave"]))) == 8
    assert len(list(read_utd_mhad(UTD, modalities=("inertial",), limit=2))) == 2
    with pytest.raises(ValueError, match="unknown action 'fly'; valid choices: swipe_left"):
        list(read_utd_mhad(UTD, actions=["fly"]))
    with pytest.raises(ValueError, match=r"unknown UTD-MHAD modalities \['rgb'\]"):
        list(read_utd_mhad(UTD, modalities=("rgb",)))
    with pytest.raises(NotADirectoryError):
        list(read_utd_mhad(UTD / "nope"))


@pytest.fixture
def small_copy(tmp_path):
    """Two samples' files copied, to be damaged."""
    for folder, suffix in (("Skeleton", "skeleton"), ("Inertial", "inertial"), ("Depth", "depth")):
        (tmp_path / folder).mkdir()
        for sid in ("a1_s1_t1", "a1_s1_t2"):
            shutil.copy(UTD / folder / f"{sid}_{suffix}.mat", tmp_path / folder)
    return tmp_path


@pytest.mark.parametrize("damage", [b"not a mat file at all", "truncate"])
def test_corrupt_file_is_named_not_a_scipy_traceback(small_copy, damage):
    bad = small_copy / "Skeleton" / "a1_s1_t2_skeleton.mat"
    bad.write_bytes(bad.read_bytes()[:200] if damage == "truncate" else damage)
    with pytest.raises(UTDFileError, match=f"{bad}: not a readable MATLAB .mat file"):
        list(read_utd_mhad(small_copy))
    with pytest.raises(UTDFileError, match=str(bad)):
        load_skeleton(bad)
    with pytest.warns(UserWarning, match="skipping UTD-MHAD sample a1_s1_t2"):
        ok = list(read_utd_mhad(small_copy, on_error="warn"))
    assert [s.id for s in ok] == ["a1_s1_t1"]


def test_missing_file_is_named(small_copy):
    missing = small_copy / "Inertial" / "a1_s1_t1_inertial.mat"
    missing.unlink()
    with pytest.raises(UTDFileError, match=f"{missing}: no such file"):
        list(read_utd_mhad(small_copy))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        only = list(read_utd_mhad(small_copy, modalities=("skeleton",)))  # not requested: no error
    assert only[0].timeline == "nominal_30fps" and only[0].duration == pytest.approx(len(only[0].skeleton.keypoint) / 30)
    assert only[1].timeline == "inertial"


def test_wrong_array_shape_is_named(small_copy):
    import scipy.io

    bad = small_copy / "Skeleton" / "a1_s1_t1_skeleton.mat"
    scipy.io.savemat(bad, {"d_skel": np.zeros((25, 3, 10))})
    with pytest.raises(UTDFileError, match=r"a1_s1_t1_skeleton.mat: expected d_skel of shape \(20, 3, T>0\)"):
        list(read_utd_mhad(small_copy))
    scipy.io.savemat(bad, {"other": np.zeros(3)})
    with pytest.raises(UTDFileError, match="has no variable 'd_skel'"):
        list(read_utd_mhad(small_copy))
