"""Converting skeletons between layouts through the joints that correspond.

Joint names mean the same body point in every layout (:mod:`.layouts`), so a target joint is
copied from the source joint of the same name. A target joint the source lacks by name may be
derived by :data:`DERIVED`: the first alternative whose joints the source all has, as their
mean. Nothing else is guessed: COCO's nose is not Kinect's head, H36M's thorax is not Kinect's
spine_shoulder, so such targets are reported missing rather than approximated.

Every layout converts to ``common_13`` (pelvis, shoulders, elbows, wrists, hips, knees,
ankles); ``ntu_25`` converts to ``kinect_v1_20`` and ``mediapipe_33`` to ``coco_17``.

Missing joints follow the convention of the readers: all-zero coordinates and score 0. A
derived joint is missing when any of its sources is (it is not half a hip), and its score is
the minimum of its sources' scores.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .layouts import Layout, get_layout

# Target joint -> alternatives (tried in order) of source joints whose mean stands for it.
# Kinect's spine_base is its pelvis joint; layouts without one (COCO, MediaPipe) use the hips.
DERIVED: dict[str, tuple[tuple[str, ...], ...]] = {
    "pelvis": (("spine_base",), ("hip_left", "hip_right")),
}


def correspondence(src: str | Layout, dst: str | Layout) -> list[tuple[str, ...]]:
    """For each joint of ``dst`` (in order), the ``src`` joints whose mean it is.

    Raises:
        ValueError: listing the ``dst`` joints that ``src`` neither has nor derives.
    """
    src, dst = get_layout(src), get_layout(dst)
    have = set(src.joints)
    groups, missing = [], []
    for joint in dst.joints:
        options = ((joint,), *DERIVED.get(joint, ()))
        found = next((g for g in options if set(g) <= have), None)
        if found is None:
            missing.append(joint)
        else:
            groups.append(found)
    if missing:
        raise ValueError(f"cannot convert {src.name} to {dst.name}: {src.name} has no joint for {missing} "
                         f"(derivable joints: {DERIVED})")
    return groups


def convert(x: np.ndarray, score: Optional[np.ndarray], src: str | Layout,
            dst: str | Layout) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Map skeletons from layout ``src`` to layout ``dst``.

    Args:
        x: ``(..., V_src, C)`` coordinates (any leading axes, e.g. ``(T, M)``).
        score: ``(..., V_src)`` confidences, or ``None``.

    Returns:
        ``(..., V_dst, C)`` coordinates and ``(..., V_dst)`` scores (``None`` if ``score`` was).
        Derived joints are the mean of their sources, with the minimum of their scores; they
        are zero (score 0) wherever a source joint is missing.

    Raises:
        ValueError: when ``dst`` has joints ``src`` cannot provide (listed), or on shapes that
            do not match ``src``.
    """
    src, dst = get_layout(src), get_layout(dst)
    if x.ndim < 2 or x.shape[-2] != src.num_joints:
        raise ValueError(f"x must be (..., {src.num_joints}, C) for layout {src.name}, got shape {x.shape}")
    if score is not None and score.shape != x.shape[:-1]:
        raise ValueError(f"score must be {x.shape[:-1]} (x's shape without C), got {score.shape}")
    groups = [src.indices(g) for g in correspondence(src, dst)]
    out = np.stack([x[..., g, :].mean(axis=-2) for g in groups], axis=-2)  # (..., V_dst, C)
    missing = ~np.any(x != 0, axis=-1)  # (..., V_src)
    if score is not None:
        missing &= score <= 0
    gone = np.stack([missing[..., g].any(axis=-1) for g in groups], axis=-1)  # (..., V_dst)
    out[gone] = 0
    if score is None:
        return out, None
    out_score = np.stack([score[..., g].min(axis=-1) for g in groups], axis=-1)
    out_score[gone] = 0
    return out, out_score
