"""NTU .skeleton reader and writer: round trips of real (UTKinect) motion, people kept by bodyID,
names, splits, and files that are truncated or garbled."""

import numpy as np
import pytest

from multimodal_har.skeleton.datasets import read_utkinect
from multimodal_har.skeleton.layouts import KINECT_V1_20, NTU_25
from multimodal_har.skeleton.ntu import NTU_ACTIONS, parse_name, read_ntu, read_ntu_file, write_ntu_file
from tests.conftest import SHARED


def _as_ntu(x):
    """Real Kinect v1 motion ``(T, 20, 3)`` in the ntu_25 layout (the five v2-only joints made up)."""
    k = KINECT_V1_20
    out = np.zeros((len(x), 25, 3), np.float32)
    for j in k.joints:
        out[:, NTU_25.index(j)] = x[:, k.index(j)]
    out[:, NTU_25.index("neck")] = (x[:, k.index("spine_shoulder")] + x[:, k.index("head")]) / 2
    for side in ("left", "right"):
        for extra in ("hand_tip", "thumb"):
            out[:, NTU_25.index(f"{extra}_{side}")] = x[:, k.index(f"hand_{side}")]
    return out


@pytest.fixture(scope="module")
def people():
    """Two real people, 30 frames: A everywhere, B (1 m to the side) from frame 5 on."""
    utk = list(read_utkinect(SHARED / "skeleton" / "utkinect"))
    a = _as_ntu(next(s for s in utk if len(s.keypoint) >= 30).keypoint[:30, 0])
    b = _as_ntu(next(s for s in utk[5:] if len(s.keypoint) >= 30).keypoint[:30, 0]) + [1, 0, 0]
    b[:5] = 0
    score = np.ones((30, 2, 25), np.float32)
    score[:, 0, NTU_25.index("hand_tip_left")] = 0.5  # inferred
    score[3, 0, NTU_25.index("foot_right")] = 0  # not tracked
    score[:5, 1] = 0
    return np.stack([a, b], axis=1).astype(np.float32), score


def test_round_trip_keeps_people_by_presence(tmp_path, people):
    x, s = people
    path = tmp_path / "S001C002P003R001A010.skeleton"
    write_ntu_file(path, x[:, ::-1], s[:, ::-1])  # B first in the file: the reader puts A first
    k, ks = read_ntu_file(path)
    assert k.shape == (30, 2, 25, 3) and ks.shape == (30, 2, 25) and k.dtype == np.float32
    np.testing.assert_array_equal(k, x)
    np.testing.assert_array_equal(ks, s)
    (seq,) = read_ntu(tmp_path)
    assert (seq.id, seq.label, seq.label_index, seq.subject, seq.layout) == \
        ("S001C002P003R001A010", "clapping", 9, 3, "ntu_25")
    assert seq.split == "test" and seq.meta == {"setup": 1, "camera": 2, "replication": 1}
    assert next(read_ntu(tmp_path, split="cross_view")).split == "train"
    assert next(read_ntu(tmp_path, split=None)).split is None
    k2, _ = read_ntu_file(path, coords="color")
    assert k2.shape == (30, 2, 25, 2)


def test_a_reidentified_body_continues_its_slot_and_extras_are_dropped(tmp_path, people):
    x, s = people
    # A is split between two body ids (frames 0-9, 10-29); a spurious body appears for 2 frames
    ghost = np.zeros_like(x[:, :1])
    ghost[12:14] = x[12:14, :1] + 3
    parts = np.zeros((30, 4, 25, 3), np.float32)
    parts[:10, 0], parts[10:, 1], parts[:, 2], parts[:, 3] = x[:10, 0], x[10:, 0], x[:, 1], ghost[:, 0]
    scores = (np.abs(parts).sum(-1) > 0).astype(np.float32)
    path = tmp_path / "S002C001P001R002A050.skeleton"
    write_ntu_file(path, parts, scores, body_ids=["11", "12", "13", "14"])
    k, _ = read_ntu_file(path)
    np.testing.assert_array_equal(k[:, 0], x[:, 1])  # B: 25 frames, the most present body
    np.testing.assert_array_equal(k[:, 1], x[:, 0])  # A: its two ids merged in one slot
    k3, _ = read_ntu_file(path, max_people=3)
    np.testing.assert_array_equal(k3[:, 2], ghost[:, 0])


def test_benchmarks_and_empty_files(tmp_path, people):
    x, s = people
    write_ntu_file(tmp_path / "S018C001P050R001A061.skeleton", x, s)
    write_ntu_file(tmp_path / "S001C001P001R001A001.skeleton", np.zeros_like(x), np.zeros_like(s))
    assert list(read_ntu(tmp_path)) == []  # ntu60 has no setup 18 / action 61; the other is empty
    (seq,) = read_ntu(tmp_path, benchmark="ntu120", split="cross_setup")
    assert seq.label == "put on headphone" and seq.split == "train" and seq.subject == 50
    k, ks = read_ntu_file(tmp_path / "S001C001P001R001A001.skeleton")
    assert k.shape == (30, 2, 25, 3) and not k.any() and not ks.any()
    with pytest.raises(ValueError, match="unknown NTU benchmark 'ntu90'; valid choices: ntu60, ntu120"):
        list(read_ntu(tmp_path, benchmark="ntu90"))
    with pytest.raises(ValueError, match="unknown ntu120 split 'cross_view'"):
        list(read_ntu(tmp_path, benchmark="ntu120", split="cross_view"))
    with pytest.raises(FileNotFoundError, match="no NTU .skeleton files"):
        list(read_ntu(tmp_path / "none"))


def test_names_and_actions():
    assert len(NTU_ACTIONS) == 120 and len(set(NTU_ACTIONS)) == 120
    assert NTU_ACTIONS[0] == "drink water" and NTU_ACTIONS[59] == "walking apart from each other"
    assert NTU_ACTIONS[119] == "finger-guessing game (playing rock-paper-scissors)"
    assert parse_name("/d/S017C003P040R002A060.skeleton") == \
        dict(setup=17, camera=3, subject=40, replication=2, action=60)
    with pytest.raises(ValueError, match="expected a name like S001C002P003R001A010"):
        parse_name("clip.skeleton")


def _broken(tmp_path, people, edit):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    write_ntu_file(path, *people)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda ls: ls[:100], r"S001C001P001R001A001.skeleton:101: file ends early; expected a joint line"),
    (lambda ls: ls[:4] + ["0.1 oops 0.3 0 0 0 0 0 0 0 0 2"] + ls[5:], r":5: expected a joint line .* non-numbers"),
    (lambda ls: ls[:3] + ["20"] + ls[4:], r":4: expected 25 joints"),
    (lambda ls: ls[:2] + ["1 2 3"] + ls[3:], r":3: expected a body line of 10 values .* got 3"),
    (lambda ls: ["2.5"] + ls[1:], r":1: expected the frame count \(a count\), got 2.5"),
    (lambda ls: ls + ["1"], r"unexpected text after the last of 30 frames"),
])
def test_garbled_files_name_file_and_line(tmp_path, people, edit, message):
    with pytest.raises(ValueError, match=message):
        read_ntu_file(_broken(tmp_path, people, edit))


def test_argument_errors(tmp_path, people):
    x, s = people
    with pytest.raises(ValueError, match=r"expected keypoint \(T, M, 25, 3\)"):
        write_ntu_file(tmp_path / "a.skeleton", x[..., :20, :], s)
    with pytest.raises(ValueError, match="body_ids must name the 2 people"):
        write_ntu_file(tmp_path / "a.skeleton", x, s, body_ids=["1"])
    write_ntu_file(tmp_path / "a.skeleton", x, s)
    with pytest.raises(ValueError, match="unknown coords 'world'; valid choices: camera, depth, color"):
        read_ntu_file(tmp_path / "a.skeleton", coords="world")
