"""PYSKL / MMAction2 pickles: round trip of the real MSR Action3D data, the list form, split
protocols, atomic writes."""

import pickle

import numpy as np
import pytest

from multimodal_har.skeleton.datasets import MSR_ACTIONS, read_msr_action3d
from multimodal_har.skeleton.pyskl import read_pyskl, write_pyskl
from tests.conftest import SHARED


@pytest.fixture(scope="module")
def msr():
    return list(read_msr_action3d(SHARED / "skeleton" / "msr_action3d"))[::10]


def test_round_trip_on_real_msr_data(tmp_path, msr):
    path = tmp_path / "msr.pkl"
    assert write_pyskl(path, msr) == len(msr)
    raw = pickle.loads(path.read_bytes())
    ann = raw["annotations"][0]
    t = len(msr[0].keypoint)
    assert ann["keypoint"].shape == (1, t, 20, 3) and ann["keypoint"].dtype == np.float32  # (M, T, V, C)
    assert ann["keypoint_score"].shape == (1, t, 20) and ann["total_frames"] == t and ann["label"] == 0
    assert set(raw["split"]) == {"train", "test"} and "img_shape" not in ann
    back = read_pyskl(path, layout="kinect_v1_20")
    assert len(back) == len(msr)
    for a, b in zip(msr, back):
        np.testing.assert_array_equal(a.keypoint, b.keypoint)
        np.testing.assert_array_equal(a.score, b.score)
        assert (a.id, a.label, a.label_index, a.subject, a.split, a.layout) == \
            (b.id, b.label, b.label_index, b.subject, b.split, b.layout)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_mmaction2_list_form_without_scores(tmp_path, msr):
    x = msr[0].keypoint.transpose(1, 0, 2, 3)  # (M, T, V, C)
    x2 = np.concatenate([x, np.zeros_like(x)])  # a second, absent person
    anns = [{"frame_dir": "S001C001P007R001A003", "label": 2, "total_frames": x.shape[1], "keypoint": x2}]
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps(anns))
    (s,) = read_pyskl(path, layout="kinect_v1_20", labels=MSR_ACTIONS)
    assert s.keypoint.shape == (x.shape[1], 2, 20, 3) and s.label == "hammer" and s.subject == 7
    assert (s.score[:, 0] == 1).all() and (s.score[:, 1] == 0).all() and s.split is None


def test_pyskl_protocols(tmp_path, msr):
    path = tmp_path / "ntu_like.pkl"
    write_pyskl(path, msr[:4], img_shape=(1080, 1920))
    raw = pickle.loads(path.read_bytes())
    assert raw["annotations"][0]["img_shape"] == raw["annotations"][0]["original_shape"] == (1080, 1920)
    ids = [s.id for s in msr[:4]]
    raw["split"] = {"xsub_train": ids[:2], "xsub_val": ids[2:], "xview_train": ids[1:], "xview_val": ids[:1]}
    path.write_bytes(pickle.dumps(raw))
    seqs = read_pyskl(path, layout="kinect_v1_20", split=("xview_train", "xview_val"))
    assert [s.split for s in seqs] == ["test", "train", "train", "train"]
    with pytest.raises(ValueError, match=r"is in split lists 'xsub_train' and 'xview_train'; choose a protocol"):
        read_pyskl(path, layout="kinect_v1_20")
    with pytest.raises(ValueError, match=r"split lists \['xset_val'\] are not in the file"):
        read_pyskl(path, layout="kinect_v1_20", split=("xsub_train", "xset_val"))


def test_errors(tmp_path, msr):
    path = tmp_path / "msr.pkl"
    write_pyskl(path, msr[:2])
    with pytest.raises(ValueError, match=r"keypoint must be \(M, T, 17, C\) for layout coco_17"):
        read_pyskl(path, layout="coco_17")
    path.write_bytes(pickle.dumps({"videos": []}))
    with pytest.raises(ValueError, match="expected a dict with 'annotations'"):
        read_pyskl(path, layout="kinect_v1_20")


def test_a_failed_write_keeps_the_old_file(tmp_path, msr):
    path = tmp_path / "msr.pkl"
    write_pyskl(path, msr[:2])
    before = path.read_bytes()

    def broken():
        yield msr[0]
        raise RuntimeError("reader failed")

    with pytest.raises(RuntimeError):
        write_pyskl(path, broken())
    bad = type(msr[0])(**{**vars(msr[0]), "score": msr[0].score[:, :, :5]})
    with pytest.raises(ValueError, match="score must be"):
        write_pyskl(path, [bad])
    unpicklable = type(msr[0])(**{**vars(msr[0]), "meta": {"camera": lambda: 1}})
    with pytest.raises((pickle.PicklingError, AttributeError)):  # fails while writing the temporary file
        write_pyskl(path, [msr[1], unpicklable])
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


class _Command:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_crafted_pickle_is_refused_without_running(tmp_path, msr):
    from multimodal_har.safe_pickle import UnsafePickleError

    marker, path = tmp_path / "ran", tmp_path / "crafted.pkl"
    raw = {"split": {}, "annotations": [{"frame_dir": "x", "label": 0, "keypoint": _Command(marker)}]}
    path.write_bytes(pickle.dumps(raw))
    with pytest.raises(UnsafePickleError, match=rf"{path}: refused to unpickle (posix|nt)\.system"):
        read_pyskl(path, layout="kinect_v1_20")
    assert not marker.exists()


def test_reads_pyskl_files_as_mmcv_writes_them(tmp_path, msr):
    """PYSKL's files come from mmcv's ``dump``, pickle protocol 2 (bytes through ``_codecs``, Python 2
    module names), with numpy scalars among the values."""
    x = msr[0].keypoint.transpose(1, 0, 2, 3)  # (M, T, V, C)
    ann = {"frame_dir": "S001C001P003R001A001", "label": np.int64(4), "total_frames": np.int64(x.shape[1]),
           "keypoint": x, "keypoint_score": np.ones(x.shape[:3], np.float16)}
    path = tmp_path / "ntu60_3danno.pkl"
    path.write_bytes(pickle.dumps({"split": {"xsub_train": ["S001C001P003R001A001"], "xsub_val": []},
                                   "annotations": [ann]}, protocol=2))
    (s,) = read_pyskl(path, layout="kinect_v1_20", split=("xsub_train", "xsub_val"))
    np.testing.assert_array_equal(s.keypoint, msr[0].keypoint)
    assert (s.label_index, s.subject, s.split, s.score.dtype) == (4, 3, "train", np.float32)
