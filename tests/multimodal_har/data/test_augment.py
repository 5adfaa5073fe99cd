"""Skeleton augmentations of data/augment.py: rotations, shear, masking, temporal resampling."""

import numpy as np
import pytest

from multimodal_har.data import augment as A


def test_rotation_xyz_is_a_rotation_and_reduces_to_rotation_y():
    R = A.rotation_xyz(0.3, -0.5, 0.2)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-6)
    assert np.isclose(np.linalg.det(R), 1.0, atol=1e-6)
    np.testing.assert_allclose(A.rotation_xyz(0.0, 0.4, 0.0), A.rotation_y(0.4), atol=1e-7)


def pose(T=6, M=2):
    x = np.random.default_rng(0).normal(size=(T, M, 20, 3)).astype(np.float32)
    present = np.ones((T, M), bool)
    if M > 1:
        x[:, 1] = 0
        present[:, 1] = False
    return x, present


def test_rotation_and_tilt_keep_bone_lengths():
    x, present = pose()
    y = A.augment_pose(x, present, np.random.default_rng(1), rotate_deg=30, scale=0, jitter=0, tilt_deg=20)
    assert not np.allclose(x, y)
    np.testing.assert_allclose(np.linalg.norm(y[:, 0, 1] - y[:, 0, 0], axis=-1),
                               np.linalg.norm(x[:, 0, 1] - x[:, 0, 0], axis=-1), rtol=1e-5)
    assert not y[:, 1].any()  # the absent person stays zero


def test_shear_is_linear_with_unit_diagonal():
    x, present = pose()
    y = A.augment_pose(x, present, np.random.default_rng(2), rotate_deg=0, scale=0, jitter=0, shear=0.3)
    assert y.dtype == np.float32
    S, *_ = np.linalg.lstsq(x[:, 0].reshape(-1, 3), y[:, 0].reshape(-1, 3), rcond=None)  # y = x @ S
    np.testing.assert_allclose(np.diag(S), 1.0, atol=1e-5)
    assert np.abs(S - np.eye(3)).max() <= 0.3 + 1e-6 and np.abs(S - np.eye(3)).max() > 0.01


def test_joint_masking_zeroes_whole_joints():
    x, present = pose(T=5, M=1)
    y = A.augment_pose(x, present, np.random.default_rng(3), rotate_deg=0, scale=0, jitter=0, mask_joints=0.5)
    gone = ~y.any(axis=(0, 1, 3))  # (V,)
    assert 0 < gone.sum() < 20
    np.testing.assert_array_equal(y[:, :, ~gone], x[:, :, ~gone])


@pytest.mark.parametrize("rng", [None, np.random.default_rng(0)])
def test_resample_positions_and_interpolation(rng):
    pos = A.resample_positions(50, 32, rng, min_crop=0.8)
    assert pos.shape == (32,) and pos.min() >= 0 and pos.max() <= 49 and np.all(np.diff(pos) > 0)
    if rng is None:
        np.testing.assert_allclose(pos[[0, -1]], [0, 49])
    else:
        assert pos[-1] - pos[0] >= 0.8 * 49 - 1e-9
    x = np.arange(50, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    np.testing.assert_allclose(A.interpolate_frames(x, pos)[:, 0], pos, rtol=1e-6)
