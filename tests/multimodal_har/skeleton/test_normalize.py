"""Normalisation on the real Kinect data; known answers on synthetic rotations; zeros stay zeros."""

import dataclasses

import numpy as np
import pytest

from multimodal_har.skeleton.datasets import read_msr_action3d, read_utkinect
from multimodal_har.skeleton.layouts import get_layout
from multimodal_har.skeleton.normalize import (NormalizeConfig, align_view, center, normalize, present,
                                               resample, scale_by_torso)
from tests.conftest import SHARED

K = get_layout("kinect_v1_20")
HL, HR, BASE = (K.index(j) for j in ("hip_left", "hip_right", "spine_base"))


@pytest.fixture(scope="module")
def seqs():
    msr = list(read_msr_action3d(SHARED / "skeleton" / "msr_action3d"))[::40]
    utk = list(read_utkinect(SHARED / "skeleton" / "utkinect"))[::20]
    return msr + utk


def _with_gaps(s):
    """A second, absent person and two frames where the first person is lost."""
    x = np.concatenate([s.keypoint, np.zeros_like(s.keypoint)], axis=1)  # (T, 2, V, 3)
    sc = np.concatenate([s.score, np.zeros_like(s.score)], axis=1)
    x[[1, 4], 0], sc[[1, 4], 0] = 0, 0
    return x, sc


def test_center_per_frame_and_first(seqs):
    for s in seqs:
        x = s.keypoint
        c = center(x, K)
        np.testing.assert_allclose(c[:, 0, BASE], 0, atol=1e-6)
        f = center(x, K, mode="first")
        np.testing.assert_allclose(f[0, 0, BASE], 0, atol=1e-6)
        np.testing.assert_allclose(f - f[:1], x - x[:1], atol=1e-5)  # travel is kept


def test_align_view_puts_hips_on_x_and_spine_on_y(seqs):
    # kinect_v1_20's origin is spine_base, 5-20 cm from the hips' midpoint in these files; with
    # the midpoint as origin (as coco_17 and mediapipe_33 have) the hips land on the x axis
    by_hips = dataclasses.replace(K, name="kinect_hips", torso=(("hip_left", "hip_right"), ("spine_shoulder",)))
    for s in seqs:
        for layout in (K, by_hips):
            x = align_view(center(s.keypoint, layout), layout)
            lower, upper = layout.torso_points(x[0, 0])
            hips = x[0, 0, HL] - x[0, 0, HR]
            assert hips[0] > 0 and np.allclose(hips[1:], 0, atol=1e-5)  # right -> left hip along +x
            spine = upper - lower
            assert abs(spine[2]) < 1e-5 and spine[1] / np.linalg.norm(spine) > 0.95  # along +y
            # a rotation: bone lengths are kept in every frame
            np.testing.assert_allclose(np.linalg.norm(K.bone_vectors(x), axis=-1),
                                       np.linalg.norm(K.bone_vectors(s.keypoint), axis=-1), atol=1e-5)
        np.testing.assert_allclose(x[0, 0, [HL, HR], 1:], 0, atol=1e-5)  # both hips on the x axis
        np.testing.assert_allclose(x[0, 0, HL, 0], -x[0, 0, HR, 0], atol=1e-5)


def test_align_view_undoes_a_known_rotation():
    """A canonical skeleton turned by a known rotation comes back to canonical axes."""
    coco = get_layout("coco_17")
    x = np.zeros((3, 1, 17, 3))
    x[:, 0, coco.index("hip_left")], x[:, 0, coco.index("hip_right")] = [0.1, 0, 0], [-0.1, 0, 0]
    x[:, 0, coco.index("shoulder_left")], x[:, 0, coco.index("shoulder_right")] = [0.2, 0.5, 0], [-0.2, 0.5, 0]
    x[:, 0, coco.index("nose")] = [0, 0.7, -0.05]
    a, b = 0.7, -0.4
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    turned = x @ (ry @ rz).T
    np.testing.assert_allclose(align_view(turned, coco), x, atol=1e-12)


def test_align_view_uses_the_shoulders_when_a_hip_is_absent():
    coco = get_layout("coco_17")
    x = np.zeros((1, 1, 17, 3))
    x[0, 0, coco.index("shoulder_left")], x[0, 0, coco.index("shoulder_right")] = [0, 0.5, 0.2], [0, 0.5, -0.2]
    x[0, 0, coco.index("hip_left")] = [0, 0, 0.1]  # the right hip is lost (zeros); torso uses the hips' mean
    y = align_view(x, coco)
    line = y[0, 0, coco.index("shoulder_left")] - y[0, 0, coco.index("shoulder_right")]
    np.testing.assert_allclose(line, [0.4, 0, 0], atol=1e-12)


def test_scale_by_torso_gives_unit_median_torso(seqs):
    for s in seqs:
        x = scale_by_torso(center(s.keypoint, K), K)
        lower, upper = K.torso_points(x[:, 0])
        assert np.median(np.linalg.norm(upper - lower, axis=-1)) == pytest.approx(1, abs=1e-5)


def test_resample_lengths_and_round_trip(seqs):
    for s in seqs[:6]:
        x, sc = s.keypoint, s.score
        t = len(x)
        up, up_s = resample(x, sc, src_fps=15, dst_fps=30)
        assert up.shape == (2 * t, *x.shape[1:]) and up_s.shape == (2 * t, *sc.shape[1:]) and up.dtype == x.dtype
        np.testing.assert_allclose(up[1:-1:2], (x[:-1] + x[1:]) / 2, atol=1e-6)  # midpoints
        back, back_s = resample(up, up_s, src_fps=30, dst_fps=15)
        np.testing.assert_allclose(back, x, atol=1e-6)
        np.testing.assert_allclose(back_s, sc, atol=1e-6)
        assert len(resample(x, sc, src_fps=30, dst_fps=10)[0]) == round(t / 3)
    with pytest.raises(ValueError, match="frame rates must be positive"):
        resample(x, sc, src_fps=0, dst_fps=30)


def test_resample_never_blends_an_absent_person(seqs):
    x, sc = _with_gaps(seqs[0])
    up, up_s = resample(x, sc, src_fps=10, dst_fps=20)
    np.testing.assert_array_equal(up[1, 0], x[0, 0])  # between present 0 and absent 1: nearest (0)
    assert not up[3, 0].any() and not up_s[3, 0].any()  # between absent 1 and present 2: nearest (1)
    assert not up[:, 1].any() and not up_s[:, 1].any()
    np.testing.assert_allclose(up[5, 0], (x[2, 0] + x[3, 0]) / 2, atol=1e-6)  # both present: blended


def test_zeros_stay_zeros_and_no_nan(seqs):
    for s in seqs[:5]:
        x, sc = _with_gaps(s)
        for y in (center(x, K, score=sc), center(x, K, mode="first", score=sc), align_view(x, K, score=sc),
                  scale_by_torso(x, K, score=sc), normalize(x, sc, K)[0]):
            assert np.isfinite(y).all()
            assert not y[[1, 4], 0].any() and not y[:, 1].any()
            assert (present(y, sc) == present(x, sc)).all()
    empty = np.zeros((4, 2, 20, 3), np.float32)
    for y in (center(empty, K), align_view(empty, K), scale_by_torso(empty, K),
              normalize(empty, empty[..., 0], K, NormalizeConfig(fps=10), src_fps=30)[0]):
        assert y.dtype == np.float32 and not y.any()


def test_normalize_composes_the_steps(seqs):
    s = seqs[1]
    x, sc = normalize(s.keypoint, s.score, "kinect_v1_20", NormalizeConfig(center="first", fps=60), src_fps=30)
    r, rs = resample(s.keypoint, s.score, src_fps=30, dst_fps=60)
    np.testing.assert_allclose(x, scale_by_torso(align_view(center(r, K, mode="first"), K), K), atol=1e-6)
    np.testing.assert_array_equal(sc, rs)
    y, _ = normalize(s.keypoint, s.score, K, NormalizeConfig(center=None, align=False, scale=False))
    np.testing.assert_array_equal(y, s.keypoint)


def test_errors():
    x = np.zeros((2, 1, 20, 3))
    with pytest.raises(ValueError, match="unknown centring mode 'mid'; valid choices: frame, first"):
        center(x, K, mode="mid")
    with pytest.raises(ValueError, match="unknown centring mode"):
        NormalizeConfig(center="mid")
    with pytest.raises(ValueError, match=r"x must be \(T, M, 17, C\) for layout coco_17"):
        center(x, "coco_17")
    with pytest.raises(ValueError, match="align_view needs 3D coordinates"):
        align_view(x[..., :2], K)
    with pytest.raises(ValueError, match=r"score must be \(T, M, V\)"):
        scale_by_torso(x, K, score=np.zeros((2, 20)))
    with pytest.raises(ValueError, match="needs src_fps"):
        normalize(x, x[..., 0], K, NormalizeConfig(fps=30))
