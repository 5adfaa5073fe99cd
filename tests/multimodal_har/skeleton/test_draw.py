"""Drawing: pixels appear where bones and joints are, in their part's colour, and nowhere else."""

import numpy as np
import pytest

from multimodal_har.skeleton.datasets import read_utkinect
from multimodal_har.skeleton.draw import SIDE_COLORS, draw_sequence, draw_skeleton, part_colors
from multimodal_har.skeleton.layouts import LAYOUTS, get_layout
from tests.conftest import SHARED

COCO = get_layout("coco_17")


def _arm():
    """One COCO person with only the left arm visible: shoulder (20, 20) -> elbow (60, 20) -> wrist (60, 70)."""
    xy = np.zeros((1, 17, 2))
    score = np.zeros((1, 17))
    for j, p in [("shoulder_left", (20, 20)), ("elbow_left", (60, 20)), ("wrist_left", (60, 70))]:
        xy[0, COCO.index(j)], score[0, COCO.index(j)] = p, 0.9
    return xy, score


def test_bones_and_joints_are_drawn_in_their_part_colour():
    image = np.zeros((100, 120, 3), np.uint8)
    xy, score = _arm()
    out = draw_skeleton(image, xy, score, COCO, thickness=3)
    assert out.shape == image.shape and out.dtype == np.uint8 and not image.any()  # input untouched
    green = SIDE_COLORS["left"]
    assert tuple(out[20, 40]) == green  # middle of the upper arm
    assert tuple(out[45, 60]) == green  # middle of the forearm
    assert tuple(out[70, 60]) == green  # the wrist's dot
    drawn = out.any(axis=-1)
    assert not drawn[80:].any() and not drawn[:, 80:].any() and not drawn[40:, :40].any()  # nothing else


def test_nothing_is_drawn_without_confidence_or_people():
    image = np.full((64, 64, 3), 7, np.uint8)
    xy, score = _arm()
    np.testing.assert_array_equal(draw_skeleton(image, xy, np.zeros_like(score), COCO), image)
    np.testing.assert_array_equal(draw_skeleton(image, xy, score * 0.2, COCO, min_score=0.3), image)
    np.testing.assert_array_equal(draw_skeleton(image, np.zeros_like(xy), np.ones_like(score), COCO), image)
    # one low-confidence end: the joint and its bones go, the rest stays
    s = score.copy()
    s[0, COCO.index("wrist_left")] = 0.1
    out = draw_skeleton(np.zeros((100, 120, 3), np.uint8), xy, s, COCO, thickness=3)
    assert out[20, 40].any() and not out[45:75, 55:65].any()


def test_people_get_different_shades():
    xy, score = _arm()
    two = np.concatenate([xy, xy + [0, 5]]), np.concatenate([score, score])
    out = draw_skeleton(np.zeros((100, 120, 3), np.uint8), *two, COCO, thickness=2, radius=1)
    assert tuple(out[20, 40]) == SIDE_COLORS["left"] and tuple(out[25, 40]) != SIDE_COLORS["left"]
    assert out[25, 40].any()


@pytest.mark.parametrize("name", LAYOUTS.names())
def test_every_part_has_a_colour(name):
    layout = get_layout(name)
    colors = part_colors(layout)
    assert set(colors) == set(layout.parts)
    assert colors.get("left_arm", SIDE_COLORS["left"]) == SIDE_COLORS["left"]


def test_draw_sequence_of_real_skeletons():
    """UTKinect's real 3D motion, projected front-on into 160x120 frames."""
    s = next(iter(read_utkinect(SHARED / "skeleton" / "utkinect")))
    x = s.keypoint[:8]  # (T, 1, 20, 3), metres, y up
    mid = x[..., :2].reshape(-1, 2).mean(axis=0)
    xy = (x[..., :2] - mid) * [60, -60] + [80, 60]  # pixels, y down
    frames = np.zeros((8, 120, 160, 3), np.uint8)
    out = draw_sequence(frames, xy, s.score[:8], "kinect_v1_20")
    assert out.shape == frames.shape and all(f.any() for f in out)
    head = np.rint(xy[0, 0, get_layout("kinect_v1_20").index("head")]).astype(int)
    assert out[0, head[1], head[0]].any()
    with pytest.raises(ValueError, match="same T"):
        draw_sequence(frames[:3], xy, s.score[:8], "kinect_v1_20")


def test_errors():
    xy, score = _arm()
    with pytest.raises(ValueError, match=r"image must be \(H, W, 3\) uint8"):
        draw_skeleton(np.zeros((10, 10, 3)), xy, score, COCO)
    with pytest.raises(ValueError, match=r"xy must be \(M, 25, 2\) and score \(M, 25\) for layout ntu_25"):
        draw_skeleton(np.zeros((10, 10, 3), np.uint8), xy, score, "ntu_25")
