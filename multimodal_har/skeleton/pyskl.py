"""PYSKL / MMAction2 skeleton annotation pickles: read and write.

PYSKL (Duan et al., "PYSKL: Towards Good Practices for Skeleton Action Recognition", ACM MM 2022)
and MMAction2's skeleton datasets store a whole dataset in one pickle::

    {"split": {name: [frame_dir, ...]},
     "annotations": [{"frame_dir": str, "label": int, "total_frames": T,
                      "img_shape": (h, w), "original_shape": (h, w),      # 2D data
                      "keypoint": (M, T, V, C) float32,
                      "keypoint_score": (M, T, V) float32}, ...]}

MMAction2 also uses a plain list of those annotations (no split), which :func:`read_pyskl`
accepts. Note the person-first ``(M, T, ...)`` order there against this project's ``(T, M, ...)``.
PYSKL's 3D files (NTU) carry no ``keypoint_score``; the reader then scores present people 1.

A pickle names the functions that rebuild it, so :func:`read_pyskl` reads through
:mod:`multimodal_har.safe_pickle`: numpy arrays and builtin values only; a file naming anything
else (a crafted pickle that would run code) is refused with
:class:`~multimodal_har.safe_pickle.UnsafePickleError` before anything in it runs.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from multimodal_har import safe_pickle
from multimodal_har.atomic import atomic_path

from .datasets import SkeletonSequence
from .layouts import Layout, get_layout
from .normalize import present

def write_pyskl(path: str | Path, sequences: Iterable[SkeletonSequence], *,
                img_shape: Optional[tuple[int, int] | Mapping[str, tuple[int, int]]] = None) -> int:
    """Write ``sequences`` as a PYSKL pickle, atomically; returns the number written.

    ``split`` lists each sequence under its :attr:`SkeletonSequence.split` (``"train"``,
    ``"test"``; sequences without one are in no list). Beyond PYSKL's keys each annotation
    keeps ``subject``, ``layout``, ``label_name`` and ``meta`` (PYSKL ignores unknown keys).
    ``img_shape`` ``(h, w)`` is written as ``img_shape`` and ``original_shape`` for 2D pixel
    data (PYSKL needs it to crop and resize), or a mapping ``id -> (h, w)`` where videos
    differ; leave it ``None`` for 3D data. The file is written to a temporary name in the
    same folder and renamed over ``path``, so readers never see half a file.
    """
    annotations, split = [], {}
    for s in sequences:
        t, m, v, c = s.keypoint.shape
        if s.score.shape != (t, m, v):
            raise ValueError(f"{s.id}: score must be (T, M, V) = {(t, m, v)}, got {s.score.shape}")
        ann = {"frame_dir": s.id, "label": int(s.label_index), "total_frames": t,
               "keypoint": np.ascontiguousarray(s.keypoint.transpose(1, 0, 2, 3), dtype=np.float32),  # (M, T, V, C)
               "keypoint_score": np.ascontiguousarray(s.score.transpose(1, 0, 2), dtype=np.float32),  # (M, T, V)
               "subject": int(s.subject), "layout": s.layout, "label_name": s.label, "meta": dict(s.meta)}
        shape = img_shape.get(s.id) if isinstance(img_shape, Mapping) else img_shape
        if shape is not None:
            ann["img_shape"] = ann["original_shape"] = tuple(int(n) for n in shape)
        annotations.append(ann)
        if s.split is not None:
            split.setdefault(s.split, []).append(s.id)
    path = Path(path)
    with atomic_path(path, durable=True) as tmp, open(tmp, "wb") as f:
        pickle.dump({"split": split, "annotations": annotations}, f, protocol=pickle.HIGHEST_PROTOCOL)
    return len(annotations)


def _membership(split: dict[str, list[str]], protocol: Optional[tuple[str, str]]) -> dict[str, str]:
    """frame_dir -> our split name, from the file's split lists."""
    if protocol is not None:
        missing = [name for name in protocol if name not in split]
        if missing:
            raise ValueError(f"split lists {missing} are not in the file; it has {sorted(split)}")
        train, test = protocol
        out = {d: "test" for d in split[test]}
        out.update({d: "train" for d in split[train]})
        return out
    out: dict[str, str] = {}
    for name, dirs in split.items():
        for d in dirs:
            if d in out:
                raise ValueError(f"{d!r} is in split lists {out[d]!r} and {name!r}; choose a protocol with "
                                 f"split=(train_list, test_list) from {sorted(split)}")
            out[d] = name
    return out


def _subject(ann: dict) -> int:
    if "subject" in ann:
        return int(ann["subject"])
    m = re.search(r"P(\d{3})", str(ann["frame_dir"]))  # NTU-style names carry the performer
    return int(m.group(1)) if m else 0


def read_pyskl(path: str | Path, *, layout: str | Layout, split: Optional[tuple[str, str]] = None,
               labels: Optional[Sequence[str]] = None) -> list[SkeletonSequence]:
    """Read a PYSKL pickle (or MMAction2's list of annotations) into sequences of ``layout``.

    Args:
        layout: the layout of the stored ``V`` joints (PYSKL files do not say), e.g. ``"coco_17"``.
        split: ``(train_list, test_list)`` names in the file's ``split`` (PYSKL's NTU files have
            ``("xsub_train", "xsub_val")`` and ``("xview_train", "xview_val")``): members get
            :attr:`SkeletonSequence.split` ``"train"`` / ``"test"``. ``None`` (default): each
            sequence gets the name of the one list that holds it (files written by
            :func:`write_pyskl` have ``"train"`` and ``"test"``), ``None`` if in none; a
            sequence in several lists asks for ``split``.
        labels: class names by index (default: names stored by :func:`write_pyskl`, else the
            index as text).

    Returns:
        ``keypoint`` ``(T, M, V, C)`` / ``score`` ``(T, M, V)`` float32 sequences in file order.
        ``subject`` is the stored one, the ``Pxxx`` of NTU-style names, or 0 when unknown.

    Raises:
        UnsafePickleError: the file names something other than numpy arrays and builtin values
            (:mod:`multimodal_har.safe_pickle`); nothing it names has run.
    """
    layout = get_layout(layout)
    data = safe_pickle.load_file(path)  # numpy arrays and builtins only: a crafted file cannot run code
    if isinstance(data, list):
        data = {"split": {}, "annotations": data}
    if not isinstance(data, dict) or "annotations" not in data:
        raise ValueError(f"{path}: expected a dict with 'annotations' (PYSKL) or a list of annotations "
                         f"(MMAction2), got {type(data).__name__}")
    member = _membership(data.get("split") or {}, split)
    out = []
    for i, ann in enumerate(data["annotations"]):
        name = ann.get("frame_dir", f"annotation {i}")
        kp = np.asarray(ann["keypoint"], dtype=np.float32)
        if kp.ndim != 4 or kp.shape[2] != layout.num_joints:
            raise ValueError(f"{path}: {name}: keypoint must be (M, T, {layout.num_joints}, C) for layout "
                             f"{layout.name}, got {kp.shape}")
        x = kp.transpose(1, 0, 2, 3)  # (M, T, V, C) -> (T, M, V, C)
        if "keypoint_score" in ann:
            score = np.asarray(ann["keypoint_score"], dtype=np.float32).transpose(1, 0, 2)  # -> (T, M, V)
        else:
            score = np.repeat(present(x)[..., None], layout.num_joints, axis=-1).astype(np.float32)
        if score.shape != x.shape[:3] or ann.get("total_frames", len(x)) != len(x):
            raise ValueError(f"{path}: {name}: keypoint_score {score.shape} or total_frames "
                             f"{ann.get('total_frames')} do not match keypoint (T, M, V) = {x.shape[:3]}")
        index = int(ann["label"])
        label = labels[index] if labels is not None else ann.get("label_name", str(index))
        stored = ann.get("layout", layout.name)
        if stored != layout.name:
            raise ValueError(f"{path}: {name} was written in layout {stored!r}, read as {layout.name!r}")
        out.append(SkeletonSequence(id=str(name), label=label, label_index=index, subject=_subject(ann),
                                    keypoint=np.ascontiguousarray(x), score=np.ascontiguousarray(score),
                                    layout=layout.name, split=member.get(name), meta=dict(ann.get("meta", {}))))
    return out


def export_store(store, path: str | Path, *, modality: str = "pose3d", keypoints: str = "2d") -> int:
    """Write every ``modality`` entry of a feature store (what ``mhar extract pose`` made)
    as one PYSKL pickle; returns the number of videos written.

    Args:
        keypoints: ``"2d"``: image joints in pixels with each video's ``img_shape`` (what
            PYSKL's 2D pipelines read); ``"3d"``: the 3D joints in metres.

    Labels are the manifest's (class indices in sorted label order; -1 where a video has
    none) and splits its ``split`` column.
    """
    if keypoints not in ("2d", "3d"):
        raise ValueError(f"keypoints must be '2d' or '3d', got {keypoints!r}")
    videos = [v for v in store.manifest.videos() if store.has(v["id"], modality)]
    if not videos:
        raise ValueError(f"the store has no {modality!r} entries to export")
    classes = sorted({v["label"] for v in videos if v["label"] is not None})
    sequences, shapes = [], {}
    for v in videos:
        data, attrs = store.read(v["id"], modality)
        two_d = keypoints == "2d"
        sequences.append(SkeletonSequence(
            id=v["id"], label=v["label"] or "", label_index=classes.index(v["label"]) if v["label"] else -1,
            subject=0, keypoint=data["keypoint2d" if two_d else "keypoint"],
            score=data["score2d" if two_d else "score"], layout=str(attrs["layout2d" if two_d else "layout"]),
            split=v["split"]))
        shapes[v["id"]] = (int(attrs["height"]), int(attrs["width"]))
    return write_pyskl(path, sequences, img_shape=shapes if keypoints == "2d" else None)
