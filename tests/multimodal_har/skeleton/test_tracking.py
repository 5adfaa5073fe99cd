import numpy as np
import pytest

from multimodal_har.skeleton.tracking import (arrange, assign_tracks, box_iou, boxes_from_keypoints,
                                              track_people)


def _person(cx, cy, size=40.0, v=5):
    """A 5-joint 'person' centred at (cx, cy) spanning a size x size box."""
    offs = np.array([[0, -0.5], [-0.5, 0], [0.5, 0], [-0.5, 0.5], [0.5, 0.5]])[:v]
    return np.array([cx, cy]) + size * offs


def test_boxes_and_iou():
    xy = np.stack([_person(50, 50), _person(200, 50)])
    s = np.ones((2, 5))
    s[1, 0] = 0.0  # an unconfident joint is ignored
    b = boxes_from_keypoints(xy, s)
    np.testing.assert_allclose(b[0], [30, 30, 70, 70])
    np.testing.assert_allclose(b[1], [180, 50, 220, 70])
    iou = box_iou(b, b)
    np.testing.assert_allclose(np.diag(iou), 1.0)
    assert iou[0, 1] == 0.0
    with pytest.raises(ValueError, match=r"expected xy \(N, V, 2\)"):
        boxes_from_keypoints(xy[0], s[0])


def test_people_keep_their_slot_across_shuffles_gaps_and_intruders():
    rng = np.random.default_rng(0)
    T = 30
    xy, score, truth = [], [], []
    for t in range(T):
        people = [(_person(40 + 3 * t, 100, size=60), np.full(5, 0.9), "big"),
                  (_person(300 - 3 * t, 100, size=30), np.full(5, 0.8), "small")]
        if 10 <= t < 13:
            people = people[1:]  # the big one is occluded for 3 frames
        if t in (20, 21):
            people.append((_person(150, 300, size=30), np.full(5, 0.4), "intruder"))
        order = rng.permutation(len(people))
        xy.append(np.stack([people[i][0] for i in order]))
        score.append(np.stack([people[i][1] for i in order]))
        truth.append([people[i][2] for i in order])
    index = track_people(xy, score, max_people=2)
    assert index.shape == (T, 2)
    for t in range(T):
        names = [truth[t][i] if i >= 0 else None for i in index[t]]
        assert names[0] == ("big" if not 10 <= t < 13 else None), t
        assert names[1] == "small", t
    kp = arrange(xy, index, shape=(5, 2))
    assert kp.shape == (T, 2, 5, 2)
    assert (kp[10:13, 0] == 0).all() and (kp[:10, 0] != 0).any()


def test_empty_frames_and_long_gaps():
    boxes = [np.array([[0, 0, 10, 10]]), np.zeros((0, 4)), np.array([[0, 0, 10, 10]]),
             np.zeros((0, 4)), np.zeros((0, 4)), np.zeros((0, 4)), np.array([[0, 0, 10, 10]])]
    ids = assign_tracks(boxes, max_gap=2)
    assert [list(i) for i in ids] == [[0], [], [0], [], [], [], [1]]  # gap of 3 > 2 starts a new track
    index = track_people([np.zeros((0, 5, 2))] * 3, [np.zeros((0, 5))] * 3, max_people=2)
    assert (index == -1).all()
    with pytest.raises(ValueError, match="max_people must be >= 1"):
        track_people([], [], max_people=0)
