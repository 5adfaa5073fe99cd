"""Named protocols: membership, errors that list choices, and the readers that use them."""

import pytest

from multimodal_har.skeleton.datasets import read_msr_action3d, read_utkinect
from multimodal_har.skeleton.splits import SPLITS, Split, get_split
from tests.conftest import SHARED


def test_protocol_membership():
    msr = get_split("msr_action3d", "cross_subject")
    assert [msr.assign(subject=s) for s in range(1, 11)] == ["train", "test"] * 5
    utk = get_split("utkinect", "cross_subject")
    assert utk.train == {1, 3, 5, 7, 9} and utk.test == {2, 4, 6, 8, 10}
    xsub = get_split("ntu60", "cross_subject")
    assert len(xsub.train) == 20 and len(xsub.test) == 20 and xsub.assign(subject=3) == "test"
    assert get_split("ntu60", "cross_view").assign(camera=1, subject=1) == "test"
    assert get_split("ntu60", "cross_view").assign(camera=3) == "train"
    xsub120 = get_split("ntu120", "cross_subject")
    assert len(xsub120.train) == 53 and xsub120.train | xsub120.test == set(range(1, 107))
    assert xsub.train <= xsub120.train
    xset = get_split("ntu120", "cross_setup")
    assert xset.assign(setup=2) == "train" and xset.assign(setup=17) == "test" and len(xset.test) == 16


@pytest.mark.parametrize("dataset", sorted(SPLITS))
def test_every_split_is_a_partition(dataset):
    for name in SPLITS[dataset]:
        s = get_split(dataset, name)
        assert s.train and s.test and not s.train & s.test and (s.dataset, s.name) == (dataset, name)


def test_errors_list_choices():
    with pytest.raises(ValueError, match="unknown ntu60 split 'cross_setup'; valid choices: cross_subject, cross_view"):
        get_split("ntu60", "cross_setup")
    with pytest.raises(ValueError, match="no splits for dataset 'kinetics'; datasets with splits: msr_action3d, ntu120"):
        get_split("kinetics", "cross_subject")
    with pytest.raises(ValueError, match="subject 11 is in neither"):
        get_split("msr_action3d", "cross_subject").assign(subject=11)
    with pytest.raises(ValueError, match="decided by 'camera'; got only"):
        get_split("ntu60", "cross_view").assign(subject=1)
    with pytest.raises(ValueError, match=r"\[2\] are both train and test"):
        Split(dataset="d", name="n", by="subject", train=frozenset({1, 2}), test=frozenset({2}))
    with pytest.raises(ValueError, match="unknown utkinect split 'cross_view'"):
        list(read_utkinect(SHARED / "skeleton" / "utkinect", split="cross_view"))


def test_readers_without_a_split():
    seqs = list(read_utkinect(SHARED / "skeleton" / "utkinect", split=None))
    assert len(seqs) == 199 and {s.split for s in seqs} == {None}
    msr = read_msr_action3d(SHARED / "skeleton" / "msr_action3d", split=None)
    assert next(msr).split is None
