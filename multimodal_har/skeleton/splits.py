"""Named train/test protocols of the skeleton datasets, in one registry per dataset.

A :class:`Split` decides from one attribute of a sample (its subject, camera or setup)
whether the sample is ``"train"`` or ``"test"``. The readers take ``split="cross_subject"``
(the default) and set :attr:`SkeletonSequence.split` from it; :func:`get_split` gives the
protocol itself, and an unknown dataset or split name lists the valid choices.

Protocols (the lists used by the datasets' papers and by ST-GCN / 2s-AGCN / CTR-GCN):

* ``msr_action3d``: ``cross_subject``, subjects 1,3,5,7,9 train, 2,4,6,8,10 test
  (Li, Zhang, Liu, CVPR-W 2010).
* ``utkinect``: ``cross_subject``, odd subjects train, even test (of 1..10).
* ``utd_mhad``: ``cross_subject``, subjects 1,3,5,7 train, 2,4,6,8 test (Chen, Jafari,
  Kehtarnavaz, ICIP 2015).
* ``ntu60`` (Shahroudy et al., CVPR 2016): ``cross_subject``, the 20 training subjects of
  :data:`NTU60_TRAIN_SUBJECTS` (of 1..40); ``cross_view``, cameras 2 and 3 train, 1 test.
* ``ntu120`` (Liu et al., TPAMI 2019): ``cross_subject``, the 53 training subjects of
  :data:`NTU120_TRAIN_SUBJECTS` (of 1..106); ``cross_setup``, even setups train, odd test (of 1..32).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry

NTU60_TRAIN_SUBJECTS = frozenset({1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38})
NTU120_TRAIN_SUBJECTS = NTU60_TRAIN_SUBJECTS | {
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89,
    91, 92, 93, 94, 95, 97, 98, 100, 103}


@dataclass(frozen=True, kw_only=True)
class Split:
    """A train/test protocol decided by one attribute of each sample.

    Attributes:
        dataset: the dataset it belongs to (``"ntu60"``...).
        name: its name within the dataset (``"cross_subject"``...).
        by: the deciding attribute: ``"subject"``, ``"camera"`` or ``"setup"``.
        train: attribute values of the training samples.
        test: attribute values of the test samples (disjoint from ``train``).
    """

    dataset: str
    name: str
    by: str
    train: frozenset[int]
    test: frozenset[int]

    def __post_init__(self) -> None:
        if self.train & self.test:
            raise ValueError(f"split {self.dataset}/{self.name}: {sorted(self.train & self.test)} "
                             f"are both train and test")

    def assign(self, **attrs: int) -> str:
        """``"train"`` or ``"test"`` for a sample with these attributes (``subject=3, camera=1``)."""
        if self.by not in attrs:
            raise ValueError(f"split {self.dataset}/{self.name} is decided by {self.by!r}; "
                             f"got only {sorted(attrs)}")
        value = attrs[self.by]
        if value in self.train:
            return "train"
        if value in self.test:
            return "test"
        raise ValueError(f"{self.by} {value} is in neither the train nor the test set of "
                         f"{self.dataset}/{self.name} (train {sorted(self.train)}, test {sorted(self.test)})")


SPLITS: dict[str, Registry] = {}


def _register(dataset: str, name: str, by: str, train, every) -> None:
    train = frozenset(train)
    split = Split(dataset=dataset, name=name, by=by, train=train, test=frozenset(every) - train)
    SPLITS.setdefault(dataset, Registry(f"{dataset} split")).register(name, split)


def get_split(dataset: str, name: str) -> Split:
    """The protocol ``name`` of ``dataset``; unknown names raise ``ValueError`` listing the choices."""
    if dataset not in SPLITS:
        raise ValueError(f"no splits for dataset {dataset!r}; datasets with splits: {', '.join(sorted(SPLITS))}")
    return SPLITS[dataset].get(name)


_register("msr_action3d", "cross_subject", "subject", {1, 3, 5, 7, 9}, range(1, 11))
_register("utkinect", "cross_subject", "subject", range(1, 11, 2), range(1, 11))
_register("utd_mhad", "cross_subject", "subject", {1, 3, 5, 7}, range(1, 9))
_register("ntu60", "cross_subject", "subject", NTU60_TRAIN_SUBJECTS, range(1, 41))
_register("ntu60", "cross_view", "camera", {2, 3}, {1, 2, 3})
_register("ntu120", "cross_subject", "subject", NTU120_TRAIN_SUBJECTS, range(1, 107))
_register("ntu120", "cross_setup", "setup", range(2, 33, 2), range(1, 33))
