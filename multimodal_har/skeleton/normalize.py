"""Skeleton normalisation: centre, view alignment, torso scale and frame-rate resampling.

All functions take ``x`` ``(T, M, V, C)`` (frames, people, joints, coordinates) in a
:class:`~multimodal_har.skeleton.layouts.Layout` and optionally ``score`` ``(T, M, V)``, and
return new arrays of the same dtype. A person is *absent* from a frame when all its coordinates
are zero and all its scores are 0 (how the readers pad missing people and frames); absent
people stay exactly zero and no function divides by a zero length, so no NaN appears.

The body points come from the layout's torso (:attr:`Layout.torso`): the *origin* is the mean
of the lower torso joints (pelvis / spine_base, or the hips' midpoint where a layout has no
pelvis joint) and the *spine* goes from the origin to the upper torso point (spine_shoulder,
thorax, or the shoulders' midpoint). This departs from NTU's usual preprocessing (2s-AGCN,
CTR-GCN centre on spine_mid and align the shoulders), so that every layout is normalised
by the same body points, which ``common_13`` keeps.

``normalize`` composes the steps in this order: resample, centre, align, scale.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from multimodal_har.config import config_dataclass

from .layouts import Layout, get_layout

CENTER_MODES = ("frame", "first")
_EPS = 1e-6


def present(x: np.ndarray, score: Optional[np.ndarray] = None) -> np.ndarray:
    """``(..., V, C)`` coordinates (and ``(..., V)`` scores) -> ``(...)`` bool: person present."""
    p = np.any(x != 0, axis=(-1, -2))
    if score is not None:
        p |= np.any(score > 0, axis=-1)
    return p


def _check(x: np.ndarray, layout: Layout, score: Optional[np.ndarray]) -> None:
    if x.ndim != 4 or x.shape[2] != layout.num_joints:
        raise ValueError(f"x must be (T, M, {layout.num_joints}, C) for layout {layout.name}, got shape {x.shape}")
    if score is not None and score.shape != x.shape[:3]:
        raise ValueError(f"score must be (T, M, V) = {x.shape[:3]}, got {score.shape}")


def _main_person(p: np.ndarray) -> Optional[int]:
    """Index of the first person present in any frame of ``p`` ``(T, M)``; None if nobody is."""
    people = np.flatnonzero(p.any(axis=0))
    return int(people[0]) if len(people) else None


def _nearest(frames: np.ndarray, t: int) -> np.ndarray:
    """For each of ``t`` frames, the nearest frame of the sorted non-empty index array ``frames``."""
    at = np.arange(t)
    pos = np.searchsorted(frames, at)
    before = frames[np.clip(pos - 1, 0, len(frames) - 1)]
    after = frames[np.clip(pos, 0, len(frames) - 1)]
    return np.where(np.abs(at - before) <= np.abs(after - at), before, after)


def center(x: np.ndarray, layout: str | Layout, *, mode: str = "frame",
           score: Optional[np.ndarray] = None) -> np.ndarray:
    """Move the main person's origin (lower torso point) to zero.

    The main person is the first person present in any frame. Everybody is shifted by the
    same vector, so people keep their positions relative to the main person.

    Args:
        x: ``(T, M, V, C)``.
        mode: ``"frame"`` subtracts the main person's origin of every frame (frames where the
            main person is absent use the nearest frame where it is present); ``"first"``
            subtracts its origin in its first present frame from every frame, keeping the
            body's travel.

    Returns:
        ``(T, M, V, C)``; absent people stay zero.
    """
    layout = get_layout(layout)
    _check(x, layout, score)
    if mode not in CENTER_MODES:
        raise ValueError(f"unknown centring mode {mode!r}; valid choices: {', '.join(CENTER_MODES)}")
    p = present(x, score)  # (T, M)
    m = _main_person(p)
    if m is None:
        return x.copy()
    origin = layout.point(x[:, m], layout.torso[0])  # (T, C)
    frames = np.flatnonzero(p[:, m])
    ref = origin[_nearest(frames, len(x))] if mode == "frame" else origin[frames[:1]]  # (T or 1, C)
    return ((x - ref[:, None, None, :]) * p[..., None, None]).astype(x.dtype)


def scale_by_torso(x: np.ndarray, layout: str | Layout, *, score: Optional[np.ndarray] = None) -> np.ndarray:
    """Divide by the median spine length (lower -> upper torso point) over present people and frames.

    ``(T, M, V, C)`` -> ``(T, M, V, C)``; returned unchanged when no torso has a length.
    """
    layout = get_layout(layout)
    _check(x, layout, score)
    lower, upper = layout.torso_points(x)  # (T, M, C) each
    length = np.linalg.norm(upper - lower, axis=-1)  # (T, M)
    length = length[present(x, score) & (length > _EPS)]
    if length.size == 0:
        return x.copy()
    return (x / np.median(length)).astype(x.dtype)


def _hip_or_shoulder_line(layout: Layout, person: np.ndarray, score: Optional[np.ndarray]) -> np.ndarray:
    """``(T, V, C)`` one person -> ``(T, C)`` right -> left hip vector, or shoulders' where a hip is absent."""
    lines = []
    for stem in ("hip", "shoulder"):
        if f"{stem}_left" in layout.joints and f"{stem}_right" in layout.joints:
            idx = layout.indices([f"{stem}_left", f"{stem}_right"])
            gone = ~np.any(person[:, idx] != 0, axis=-1)  # (T, 2)
            if score is not None:
                gone &= score[:, idx] <= 0
            line = person[:, idx[0]] - person[:, idx[1]]
            lines.append(np.where(gone.any(axis=-1, keepdims=True), 0, line))
    if not lines:
        raise ValueError(f"layout {layout.name} has neither hip_left/hip_right nor shoulder_left/shoulder_right")
    return np.where(np.linalg.norm(lines[0], axis=-1, keepdims=True) > _EPS, lines[0], lines[-1])


def align_view(x: np.ndarray, layout: str | Layout, *, score: Optional[np.ndarray] = None) -> np.ndarray:
    """Rotate 3D skeletons into the main person's body frame.

    The rotation is computed once, from the first frame of the main person (first person
    present) that has a spine and a hip (or shoulder) line, and applied to every frame and
    person about the coordinate origin (centre first to put the origin at the pelvis):

    * x axis: from the right hip to the left hip (the shoulders when a hip is absent): the
      person's left, which is camera +x for a person facing a Kinect;
    * y axis: the spine (origin -> upper torso point) made orthogonal to x, so the spine lies
      in the x-y plane with positive y (exactly along +y when it is perpendicular to the hips);
    * z axis: x cross y (a proper rotation, no mirroring); the person faces -z.

    Args:
        x: ``(T, M, V, 3)``.

    Returns:
        ``(T, M, V, 3)``; unchanged when no frame qualifies; absent people stay zero.
    """
    layout = get_layout(layout)
    _check(x, layout, score)
    if x.shape[-1] != 3:
        raise ValueError(f"align_view needs 3D coordinates (C = 3), got C = {x.shape[-1]}")
    p = present(x, score)
    m = _main_person(p)
    if m is None:
        return x.copy()
    lower, upper = layout.torso_points(x[:, m])  # (T, 3)
    spine = upper - lower
    line = _hip_or_shoulder_line(layout, x[:, m], None if score is None else score[:, m])
    ok = p[:, m] & (np.linalg.norm(spine, axis=-1) > _EPS) & (np.linalg.norm(line, axis=-1) > _EPS)
    ok &= np.linalg.norm(np.cross(line, spine), axis=-1) > _EPS  # not parallel
    if not ok.any():
        return x.copy()
    t = int(np.argmax(ok))
    ax = line[t] / np.linalg.norm(line[t])
    ay = spine[t] - (spine[t] @ ax) * ax
    ay /= np.linalg.norm(ay)
    rot = np.stack([ax, ay, np.cross(ax, ay)])  # (3, 3): rows are the new axes
    return (x @ rot.T).astype(x.dtype)


def resample(x: np.ndarray, score: np.ndarray, *, src_fps: float,
             dst_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Change the frame rate by linear interpolation in time.

    ``T`` frames become ``max(1, round(T * dst_fps / src_fps))``; output frame ``k`` is taken
    at source position ``k * src_fps / dst_fps`` (clamped to the last frame). A person is
    blended between the two neighbouring frames only when present in both; otherwise the
    nearest frame is copied (ties go to the earlier frame), so absent people (zeros, score 0)
    are never mixed into present ones.

    Args:
        x: ``(T, M, V, C)``; score: ``(T, M, V)``.

    Returns:
        ``(T', M, V, C)`` coordinates and ``(T', M, V)`` scores, same dtypes.
    """
    if not (src_fps > 0 and dst_fps > 0):
        raise ValueError(f"frame rates must be positive, got src_fps={src_fps}, dst_fps={dst_fps}")
    if x.ndim != 4 or score.shape != x.shape[:3]:
        raise ValueError(f"x must be (T, M, V, C) and score (T, M, V); got {x.shape} and {score.shape}")
    t = len(x)
    n = max(1, round(t * dst_fps / src_fps))
    pos = np.minimum(np.arange(n) * (src_fps / dst_fps), t - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, t - 1)
    w = (pos - i0)[:, None]  # (T', 1)
    p = present(x, score)  # (T, M)
    blend = p[i0] & p[i1]  # (T', M)
    near = np.where(w > 0.5, i1[:, None], i0[:, None])  # (T', 1) nearest source frame
    people = np.arange(x.shape[1])[None]
    wx = w[..., None, None]
    out = np.where(blend[..., None, None], (1 - wx) * x[i0] + wx * x[i1], x[near, people])
    out_score = np.where(blend[..., None], (1 - w[..., None]) * score[i0] + w[..., None] * score[i1],
                         score[near, people])
    return out.astype(x.dtype), out_score.astype(score.dtype)


@config_dataclass(kw_only=True)
class NormalizeConfig:
    """What :func:`normalize` does.

    Attributes:
        center: ``"frame"``, ``"first"`` (see :func:`center`) or ``None`` to leave positions.
        align: rotate into the body frame (:func:`align_view`, 3D only).
        scale: divide by the median torso length (:func:`scale_by_torso`).
        fps: resample to this frame rate (:func:`resample`); ``None`` keeps the frames.
    """

    center: Optional[str] = "frame"
    align: bool = True
    scale: bool = True
    fps: Optional[float] = None

    def __post_init__(self) -> None:
        if self.center is not None and self.center not in CENTER_MODES:
            raise ValueError(f"unknown centring mode {self.center!r}; valid choices: {', '.join(CENTER_MODES)}, None")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be positive or None, got {self.fps}")


def normalize(x: np.ndarray, score: np.ndarray, layout: str | Layout, config: Optional[NormalizeConfig] = None,
              *, src_fps: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """Resample, centre, align and scale ``(T, M, V, C)`` skeletons as ``config`` says.

    Returns ``(T', M, V, C)`` coordinates and ``(T', M, V)`` scores (``T' = T`` without resampling).
    """
    config = config or NormalizeConfig()
    layout = get_layout(layout)
    _check(x, layout, score)
    if config.fps is not None:
        if src_fps is None:
            raise ValueError(f"config.fps = {config.fps} needs src_fps, the rate of the input frames")
        x, score = resample(x, score, src_fps=src_fps, dst_fps=config.fps)
    if config.center is not None:
        x = center(x, layout, mode=config.center, score=score)
    if config.align:
        x = align_view(x, layout, score=score)
    if config.scale:
        x = scale_by_torso(x, layout, score=score)
    return x, score
