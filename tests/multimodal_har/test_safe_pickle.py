"""The restricted unpickler: numpy and builtin data of every protocol come back equal; a pickle
that names anything else (a crafted file that would run a command) is refused before it runs."""

import os
import pickle
import sys

import numpy as np
import pytest

from multimodal_har import safe_pickle
from multimodal_har.safe_pickle import SafeUnpickler, UnsafePickleError
from multimodal_har.skeleton.datasets import SkeletonSequence, read_msr_action3d
from tests.conftest import SHARED


class _RunsCode:
    """Unpickling this calls ``os.system``: what a crafted PYSKL file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _data():
    return {"split": {"xsub_train": ["a"], "xsub_val": []},
            "annotations": [{"frame_dir": "a", "label": 3, "img_shape": (1080, 1920), "total_frames": 2,
                             "keypoint": np.arange(1 * 2 * 17 * 2, dtype=np.float32).reshape(1, 2, 17, 2),
                             "keypoint_score": np.ones((1, 2, 17), np.float16),
                             "view": np.arange(12.0).reshape(3, 4)[:, ::2],  # not contiguous
                             "record": np.zeros(2, dtype=[("a", "<f4"), ("b", "i8")]),
                             "objects": np.array([1, "x", None], dtype=object),
                             "scalars": (np.float32(1.5), np.int64(-3), np.bool_(True)),
                             "builtins": ({1, 2}, frozenset("ab"), b"\x00\xff", b"", bytearray(b"z"), 1 + 2j,
                                          slice(1, 5, 2), range(3), None, True, 2.5)}]}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_and_builtin_data_of_every_protocol(protocol):
    want = _data()
    got = safe_pickle.loads(pickle.dumps(want, protocol=protocol))
    assert got["split"] == want["split"]
    a, b = got["annotations"][0], want["annotations"][0]
    assert a.keys() == b.keys()
    for key in ("keypoint", "keypoint_score", "view", "record"):
        assert a[key].dtype == b[key].dtype
        np.testing.assert_array_equal(a[key], b[key])
    assert list(a["objects"]) == list(b["objects"])
    assert [type(x) for x in a["scalars"]] == [type(x) for x in b["scalars"]] and a["scalars"] == b["scalars"]
    assert a["builtins"] == b["builtins"] and a["img_shape"] == (1080, 1920)


def test_a_pickle_that_would_run_code_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "crafted.pkl"
    path.write_bytes(pickle.dumps({"annotations": [_RunsCode(marker)]}, protocol=2))
    with pytest.raises(UnsafePickleError, match=rf"{path}: refused to unpickle (posix|nt)\.system"):
        safe_pickle.load_file(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the plain unpickler runs it: the test's crafted file is real
    assert marker.exists()


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("builtins", "getattr"), ("os", "system"),
                                          ("subprocess", "Popen"), ("numpy", "load"), ("__builtin__", "eval"),
                                          ("copyreg", "_reconstructor"), ("torch", "load")])
def test_anything_but_data_is_refused(module, name):
    with pytest.raises(UnsafePickleError, match=rf"refused to unpickle .*{name}"):
        SafeUnpickler(open(os.devnull, "rb")).find_class(module, name)


def test_codecs_encode_only_as_protocol_2_writes_bytes():
    with pytest.raises(UnsafePickleError, match="only as"):
        safe_pickle.loads(b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.")
    assert safe_pickle.loads(pickle.dumps(b"\x80abc", protocol=2)) == b"\x80abc"


def test_numpy_2_module_names_resolve_to_this_numpy():
    u = SafeUnpickler(open(os.devnull, "rb"))
    for core in ("numpy.core", "numpy._core"):
        assert u.find_class(f"{core}.multiarray", "_reconstruct") is np.zeros(1).__reduce__()[0]
        assert u.find_class(f"{core}.numeric", "_frombuffer") is np.zeros(1).__reduce_ex__(5)[0]


def test_allowed_classes_are_rebuilt_and_only_those(tmp_path):
    seqs = list(read_msr_action3d(SHARED / "skeleton" / "msr_action3d"))[:2]
    path = tmp_path / "sequences.pkl"
    path.write_bytes(pickle.dumps({"msr_action3d": seqs}))  # what skeleton_accuracy --save-sequences writes
    with pytest.raises(UnsafePickleError, match="SkeletonSequence"):
        safe_pickle.load_file(path)
    back = safe_pickle.load_file(path, allow=(SkeletonSequence,))["msr_action3d"]
    assert [s.id for s in back] == [s.id for s in seqs]
    np.testing.assert_array_equal(back[1].keypoint, seqs[1].keypoint)
    with pytest.raises(TypeError, match="allow takes classes"):
        safe_pickle.loads(b"", allow=("multimodal_har.skeleton.datasets.SkeletonSequence",))


def test_the_refusal_names_the_file_object(tmp_path):
    path = tmp_path / "f.pkl"
    path.write_bytes(pickle.dumps(sys.exit, protocol=4))
    with open(path, "rb") as f, pytest.raises(UnsafePickleError, match=rf"^{path}: refused to unpickle sys\.exit"):
        safe_pickle.load(f)
