"""The real Kinect v1 datasets: counts, splits, and the joint order checked on the data."""

import numpy as np
import pytest

from multimodal_har.data.store import FeatureStore
from multimodal_har.skeleton.datasets import add_to_store, read_msr_action3d, read_utkinect
from multimodal_har.skeleton.layouts import KINECT_V1_20 as L
from multimodal_har.skeleton.layouts import MSR_ACTION3D_ORDER
from tests.conftest import SHARED

MSR = SHARED / "skeleton" / "msr_action3d"
UTK = SHARED / "skeleton" / "utkinect"


@pytest.fixture(scope="module")
def msr():
    return list(read_msr_action3d(MSR))


@pytest.fixture(scope="module")
def utk():
    return list(read_utkinect(UTK))


def test_msr_action3d_protocol(msr):
    assert len(msr) == 557  # files_used_in_cvpr12_paper.txt
    assert {s.label_index for s in msr} == set(range(20))
    assert {s.subject for s in msr if s.split == "train"} == {1, 3, 5, 7, 9}
    assert {s.subject for s in msr if s.split == "test"} == {2, 4, 6, 8, 10}
    s = msr[0]
    assert s.id == "a01_s01_e01" and s.label == "high arm wave"
    assert s.keypoint.shape[1:] == (1, 20, 3) and s.score.shape == s.keypoint.shape[:3]


def test_utkinect_segments_and_split(utk):
    assert len(utk) == 199  # 10 subjects x 2 takes x 10 actions, one unannotated in the release
    assert {s.label for s in utk} == {"walk", "sitDown", "standUp", "pickUp", "carry", "throw", "push",
                                      "pull", "waveHands", "clapHands"}
    assert {s.split for s in utk if s.subject % 2} == {"train"}
    assert {s.split for s in utk if s.subject % 2 == 0} == {"test"}
    assert min(len(s.keypoint) for s in utk) >= 3


def _joint_order_checks(seqs):
    """(median left/right bone-length ratio spread, fraction of frames with head above hips)."""
    ratios, head_up = [], []
    for s in seqs:
        x = s.keypoint[:, 0]  # (T, V, 3)
        med = np.median(np.linalg.norm(L.bone_vectors(x), axis=-1), axis=0)
        bone = dict(zip((c for c, _ in L.bones), med))
        ratios += [bone[f"{j}_left"] / bone[f"{j}_right"] for j in ("elbow", "wrist", "knee", "ankle")]
        head_up.append(np.mean(x[:, L.index("head"), 1] > x[:, L.index("spine_base"), 1]))
    return np.percentile(ratios, [10, 90]), float(np.mean(head_up))


@pytest.mark.parametrize("dataset", ["msr", "utk"])
def test_kinect_joint_order_is_right_on_the_real_files(dataset, msr, utk):
    seqs = msr if dataset == "msr" else utk
    (lo, hi), head_up = _joint_order_checks(seqs[::5])
    assert 0.75 < lo and hi < 1.33, (lo, hi)  # left and right limbs have matching lengths
    assert head_up > 0.95  # y is up: the head is above the hips
    # every bone is a plausible human length (metres)
    x = np.concatenate([s.keypoint[:, 0] for s in seqs[::5]])
    med = np.median(np.linalg.norm(L.bone_vectors(x), axis=-1), axis=0)
    assert med.min() > 0.02 and med.max() < 0.6


def test_the_checks_reject_the_sdk_order_on_msr_files(msr):
    """Reading MSR's files in the SDK order (a common mistake) fails the head-above-hips check."""
    wrong = []
    file_order = [L.index(j) for j in MSR_ACTION3D_ORDER]
    for s in msr[::20]:
        raw = s.keypoint[..., file_order, :]  # the joints as the file stores them
        wrong.append(type(s)(id=s.id, label=s.label, label_index=s.label_index, subject=s.subject,
                             keypoint=raw, score=s.score))
    _, head_up = _joint_order_checks(wrong)
    assert head_up < 0.5


def test_add_to_store(tmp_path, utk):
    store = FeatureStore(tmp_path, create=True)
    assert add_to_store(store, utk[:3], dataset="utkinect") == 3
    arrays, attrs = store.read(f"utkinect/{utk[0].id}", "pose3d")
    np.testing.assert_array_equal(arrays["keypoint"], utk[0].keypoint)
    assert attrs["layout"] == "kinect_v1_20" and attrs["subject"] == utk[0].subject
    v = store.manifest.video(f"utkinect/{utk[0].id}")
    assert (v["label"], v["split"]) == (utk[0].label, utk[0].split)


def test_bad_files_are_named(tmp_path):
    (tmp_path / "a01_s01_e01_skeleton3D.txt").write_text("1 2 3 1\n" * 19)
    with pytest.raises(ValueError, match="a01_s01_e01_skeleton3D.txt: expected lines"):
        list(read_msr_action3d(tmp_path))
    with pytest.raises(FileNotFoundError, match="no MSR Action3D files"):
        list(read_msr_action3d(tmp_path / "nothing"))


def test_readers_take_the_joint_order_of_other_releases(tmp_path, msr):
    """A release that stores the joints in another order is read with ``joint_order``."""
    import shutil

    shutil.copy(MSR / "a01_s01_e01_skeleton3D.txt", tmp_path)
    other = tuple(reversed(MSR_ACTION3D_ORDER))
    (s,) = read_msr_action3d(tmp_path, joint_order=other)
    stored = msr[0].keypoint[..., [L.index(j) for j in MSR_ACTION3D_ORDER], :]  # as in the file
    np.testing.assert_array_equal(s.keypoint, L.reorder(stored, other))
    with pytest.raises(ValueError, match=r"missing \['head'\]"):
        list(read_msr_action3d(tmp_path, joint_order=MSR_ACTION3D_ORDER[:-1]))


def test_one_registry_of_readers_in_step_with_the_importers():
    """Every reader is in DATASETS under the name `mhar import NAME` takes, and the reverse."""
    from multimodal_har.data.importers import IMPORTERS
    from multimodal_har.skeleton import DATASETS
    from multimodal_har.skeleton.ntu import read_ntu
    from multimodal_har.skeleton.pyskl import read_pyskl
    from multimodal_har.skeleton.utd_mhad import read_utd_mhad

    assert DATASETS.names() == IMPORTERS.names() == ["msr_action3d", "ntu", "pyskl", "utd_mhad", "utkinect"]
    assert DATASETS.get("ntu") is read_ntu and DATASETS.get("pyskl") is read_pyskl
    assert DATASETS.get("utd_mhad") is read_utd_mhad and DATASETS.get("msr_action3d") is read_msr_action3d
    with pytest.raises(ValueError, match="unknown dataset reader 'kinetics'; valid choices: msr_action3d, ntu, pyskl"):
        DATASETS.get("kinetics")


def test_a_registered_reader_feeds_the_store_as_the_importer_does(tmp_path, utk):
    """add_to_store (a reader's sequences) and `mhar import` write the same entry."""
    from multimodal_har.data.importers import import_dataset
    from multimodal_har.skeleton import DATASETS

    seqs = list(DATASETS.get("utkinect")(UTK))
    assert [s.id for s in seqs] == [s.id for s in utk]
    add_to_store(FeatureStore(tmp_path / "a", create=True), seqs[:1], dataset="utkinect")
    src = tmp_path / "utk"
    src.mkdir()
    (src / "actionLabel.txt").write_text((UTK / "actionLabel.txt").read_text().split("s01_e02")[0])
    (src / "joints_s01_e01.txt").symlink_to(UTK / "joints_s01_e01.txt")
    import_dataset("utkinect", src, tmp_path / "b")
    a, b = FeatureStore(tmp_path / "a"), FeatureStore(tmp_path / "b")
    vid = f"utkinect/{seqs[0].id}"
    (xa, attrs_a), (xb, attrs_b) = a.read(vid, "pose3d"), b.read(vid, "pose3d")
    np.testing.assert_array_equal(xa["keypoint"], xb["keypoint"])
    assert {k: attrs_a[k] for k in ("layout", "dataset", "subject", "label_index")} == \
        {k: attrs_b[k] for k in ("layout", "dataset", "subject", "label_index")}
