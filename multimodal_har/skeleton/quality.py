"""Quality of extracted poses without ground truth: how often a person is found, and how
stable the 3D bone lengths are over time.

A real person's bones do not change length, so the coefficient of variation (std / mean)
of each bone's length over the frames where both of its joints are seen measures the
jitter and failures of a 3D pose estimator (lower is better; a rigid skeleton gives 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layouts import Layout


@dataclass
class PoseQuality:
    """Attributes:
        person_fraction: fraction of frames where any slot holds a person.
        bone_cv: bone name (``child-parent``) -> coefficient of variation of its length
            (bones seen in fewer than ``min_frames`` frames are left out).
        median_bone_cv: the median over bones (NaN if no bone qualified).
    """

    person_fraction: float
    bone_cv: dict
    median_bone_cv: float


def pose_quality(keypoint: np.ndarray, score: np.ndarray, layout: Layout, *, person: int = 0,
                 min_score: float = 0.5, min_frames: int = 5) -> PoseQuality:
    """Quality of ``keypoint (T, M, V, 3)`` with ``score (T, M, V)`` for one person slot."""
    keypoint = np.asarray(keypoint, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    if keypoint.ndim != 4 or score.shape != keypoint.shape[:3] or keypoint.shape[2] != layout.num_joints:
        raise ValueError(f"expected keypoint (T, M, {layout.num_joints}, C) and score (T, M, "
                         f"{layout.num_joints}), got {keypoint.shape} and {score.shape}")
    present = (score > 0).any(axis=(1, 2))  # (T,)
    x, s = keypoint[:, person], score[:, person]  # (T, V, C), (T, V)
    e = layout.edges
    lengths = np.linalg.norm(layout.bone_vectors(x), axis=-1)  # (T, E)
    seen = (s[:, e[0]] >= min_score) & (s[:, e[1]] >= min_score)  # (T, E)
    cv = {}
    for k, (child, parent) in enumerate(layout.bones):
        v = lengths[seen[:, k], k]
        if len(v) >= min_frames and v.mean() > 0:
            cv[f"{child}-{parent}"] = float(v.std() / v.mean())
    return PoseQuality(person_fraction=float(present.mean()) if len(present) else 0.0, bone_cv=cv,
                       median_bone_cv=float(np.median(list(cv.values()))) if cv else float("nan"))
