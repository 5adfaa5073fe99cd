"""Readers for labelled real skeleton datasets (Kinect v1, 20 joints, metres), and the sequence type.

Every skeleton reader of the package yields :class:`SkeletonSequence` objects: ``keypoint``
``(T, M, V, C)`` and ``score`` ``(T, M, V)`` float32 in a registered layout
(:mod:`.layouts`), an absent person or frame being all zeros with score 0, and ``split`` set
from a named protocol (:mod:`.splits`, ``split="cross_subject"`` by default, ``None`` for
none). They are ready for ``FeatureStore.add(..., modality="pose3d")`` via
:func:`add_to_store`. The readers here are for the Kinect v1 datasets (layout
``kinect_v1_20``, ``M = 1``); NTU RGB+D is read by :mod:`.ntu`, PYSKL / MMAction2 pickles by
:mod:`.pyskl`, UTD-MHAD by :mod:`.utd_mhad`; :data:`DATASETS` names them all (the names of
``mhar import``).

* MSR Action3D (Li, Zhang, Liu, CVPR-W 2010): ``aAA_sSS_eEE_skeleton3D.txt``, 20 lines of
  ``x y z c`` per frame, joints in MSR's own order (``MSR_ACTION3D_ORDER``; another release's
  order goes in ``joint_order``). ``score`` is the file's ``c``, which is not a tracking flag:
  it is 0 for most frames of the spine joints and feet although their coordinates are good, so
  treat MSR scores as informative only for the limbs.
* UTKinect-Action3D (Xia, Chen, Aggarwal, CVPR-W 2012): ``joints_sSS_eEE.txt`` (one line per
  frame: frame id + 60 coordinates, SDK order) cut into actions by ``actionLabel.txt``;
  ``score`` is 1.

Protocols: ``cross_subject`` for both (MSR Action3D subjects 1,3,5,7,9 train, 2,4,6,8,10
test; UTKinect odd subjects train, even test).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from ..registry import Registry
from .layouts import KINECT_V1_20, MSR_ACTION3D_ORDER
from .splits import get_split

MSR_ACTIONS = ("high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch",
               "high throw", "draw x", "draw tick", "draw circle", "hand clap", "two hand wave",
               "side-boxing", "bend", "forward kick", "side kick", "jogging", "tennis swing",
               "tennis serve", "golf swing", "pick up & throw")
UTKINECT_ACTIONS = ("walk", "sitDown", "standUp", "pickUp", "carry", "throw", "push", "pull",
                    "waveHands", "clapHands")


@dataclass
class SkeletonSequence:
    """One labelled skeleton sequence.

    Attributes:
        id: unique within its dataset (the file stem, plus the action for UTKinect).
        label, label_index: the action's name and its 0-based class index.
        subject: the performer's number (1-based, as in the file names).
        keypoint: ``(T, M, V, C)`` float32 coordinates (Kinect: metres, y up).
        score: ``(T, M, V)`` float32 confidence (0 where a person, joint or frame is missing).
        layout: the registered layout of the ``V`` joints.
        split: ``"train"``, ``"test"`` or ``None``.
        meta: other integer attributes of the sample (NTU: setup, camera, replication).
    """

    id: str
    label: str
    label_index: int
    subject: int
    keypoint: np.ndarray
    score: np.ndarray
    layout: str = KINECT_V1_20.name
    split: Optional[str] = None
    meta: dict[str, int] = field(default_factory=dict)


def _split_of(dataset: str, split: Optional[str]):
    """A function of a sample's attributes giving its split name (``None`` without a protocol)."""
    if split is None:
        return lambda **attrs: None
    return get_split(dataset, split).assign


def read_msr_action3d(root: str | Path, *, split: Optional[str] = "cross_subject",
                      joint_order: Sequence[str] = MSR_ACTION3D_ORDER,
                      protocol_files_only: bool = True) -> Iterator[SkeletonSequence]:
    """MSR Action3D sequences, labelled train/test by ``split`` (:mod:`.splits`).

    Args:
        split: a protocol of ``msr_action3d`` (``cross_subject``: subjects 1,3,5,7,9 train),
            or ``None`` to leave :attr:`SkeletonSequence.split` unset.
        joint_order: the ``kinect_v1_20`` joint names in the order the files store them
            (releases differ; the default is the order of the release in ../shared/data).
        protocol_files_only: keep only the 557 sequences of ``files_used_in_cvpr12_paper.txt``
            when that list is present (the common protocol); all readable files otherwise.

    All-zero frames (the tracker lost the person) are dropped; a file with no valid frame or
    a line count that is not a multiple of 20 raises ``ValueError`` naming it.
    """
    root = Path(root)
    split_of = _split_of("msr_action3d", split)
    files = sorted(root.glob("a*_s*_e*_skeleton3D.txt"))
    if not files:
        raise FileNotFoundError(f"no MSR Action3D files (aAA_sSS_eEE_skeleton3D.txt) in {root}")
    keep = None
    listing = root / "files_used_in_cvpr12_paper.txt"
    if protocol_files_only and listing.is_file():
        keep = {line.split()[0] for line in listing.read_text().splitlines() if line.strip()}
    for f in files:
        stem = f.name[: -len("_skeleton3D.txt")]
        if keep is not None and stem not in keep:
            continue
        a, s, _ = (int(x) for x in re.findall(r"\d+", stem))
        data = np.loadtxt(f, dtype=np.float32, ndmin=2)
        if data.size == 0 or data.shape[1] != 4 or len(data) % 20:
            raise ValueError(f"{f}: expected lines of 'x y z c', 20 per frame; got array of shape {data.shape}")
        frames = data.reshape(-1, 20, 4)
        frames = frames[np.abs(frames[..., :3]).sum(axis=(1, 2)) > 0]
        if len(frames) == 0:
            raise ValueError(f"{f}: every frame is all zeros")
        x = KINECT_V1_20.reorder(frames[..., :3], joint_order)  # (T, V, 3)
        c = KINECT_V1_20.reorder(frames[..., 3:], joint_order)[..., 0]  # (T, V)
        yield SkeletonSequence(id=stem, label=MSR_ACTIONS[a - 1], label_index=a - 1, subject=s,
                               keypoint=x[:, None], score=c[:, None],
                               split=split_of(subject=s))


def _read_action_labels(path: Path) -> dict[str, list[tuple[str, int, int]]]:
    out: dict[str, list[tuple[str, int, int]]] = {}
    current = None
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if ":" not in line:
            current = line
            out[current] = []
            continue
        name, _, rng = line.partition(":")
        parts = rng.split()
        if current is None or len(parts) != 2 or name.strip() not in UTKINECT_ACTIONS:
            raise ValueError(f"{path}:{lineno}: expected 'action: start end' under a sequence name, got {line!r}")
        if parts[0].lower() == "nan" or parts[1].lower() == "nan":
            continue  # the release marks a few unannotated actions this way
        out[current].append((name.strip(), int(parts[0]), int(parts[1])))
    return out


def read_utkinect(root: str | Path, *, split: Optional[str] = "cross_subject",
                  joint_order: Sequence[str] = KINECT_V1_20.joints) -> Iterator[SkeletonSequence]:
    """UTKinect-Action3D action segments, labelled train/test by ``split`` (:mod:`.splits`).

    ``split`` is a protocol of ``utkinect`` (``cross_subject``: odd subjects train) or ``None``;
    ``joint_order`` names the ``kinect_v1_20`` joints in the order the files store them (the SDK's).

    Segments are the frames whose id (first column) lies in ``[start, end]`` of
    ``actionLabel.txt``; a segment with no frame raises ``ValueError`` naming it.
    """
    root = Path(root)
    split_of = _split_of("utkinect", split)
    labels = _read_action_labels(root / "actionLabel.txt")
    for seq, actions in sorted(labels.items()):
        f = root / f"joints_{seq}.txt"
        data = np.loadtxt(f, dtype=np.float32, ndmin=2)
        if data.shape[1] != 61:
            raise ValueError(f"{f}: expected a frame id and 60 coordinates per line, got {data.shape[1]} columns")
        ids, xyz = data[:, 0].astype(np.int64), data[:, 1:].reshape(-1, 20, 3)
        subject = int(re.match(r"s(\d+)_e\d+", seq).group(1))
        for name, start, end in actions:
            sel = (ids >= start) & (ids <= end)
            if not sel.any():
                raise ValueError(f"{f}: no frame with id in [{start}, {end}] for action {name}")
            x = KINECT_V1_20.reorder(xyz[sel], joint_order)  # (T, V, 3)
            yield SkeletonSequence(id=f"{seq}_{name}", label=name, label_index=UTKINECT_ACTIONS.index(name),
                                   subject=subject, keypoint=x[:, None],
                                   score=np.ones(x.shape[:2], np.float32)[:, None],
                                   split=split_of(subject=subject))


# Every dataset reader of the package, by the name `mhar import NAME` / api.import_dataset(NAME)
# takes (multimodal_har.data.importers.IMPORTERS has the same names; a test keeps them in step).
# ``reader(root_or_file, *, split=..., ...)`` yields the dataset's samples: SkeletonSequence,
# or for utd_mhad UTDSample (its ``skeleton`` a SkeletonSequence, plus inertial and depth).
# The readers of other modules are named lazily: they import this module.
DATASETS = Registry("dataset reader")
DATASETS.register("msr_action3d", read_msr_action3d)
DATASETS.register("utkinect", read_utkinect)
DATASETS.register("ntu", "multimodal_har.skeleton.ntu:read_ntu")
DATASETS.register("pyskl", "multimodal_har.skeleton.pyskl:read_pyskl")
DATASETS.register("utd_mhad", "multimodal_har.skeleton.utd_mhad:read_utd_mhad")


def store_entry(s: SkeletonSequence, dataset: str) -> tuple[str, dict[str, np.ndarray], dict[str, Any]]:
    """``(video id, arrays, attrs)`` of a sequence as a ``pose3d`` store entry: id
    ``<dataset>/<sequence id>``, ``keypoint`` / ``score``, and its layout, dataset, subject,
    class index and ``meta`` as attributes."""
    attrs = {"layout": s.layout, "dataset": dataset, "subject": s.subject, "label_index": s.label_index, **s.meta}
    return f"{dataset}/{s.id}", {"keypoint": s.keypoint, "score": s.score}, attrs


def add_to_store(store, sequences, *, dataset: str, modality: str = "pose3d") -> int:
    """Write sequences into a :class:`~multimodal_har.data.store.FeatureStore`; returns the count
    (``mhar import`` does the same, resumably and with a summary)."""
    n = 0
    for s in sequences:
        video_id, arrays, attrs = store_entry(s, dataset)
        store.add(video_id, modality, arrays, attrs=attrs, label=s.label, split=s.split)
        n += 1
    return n
