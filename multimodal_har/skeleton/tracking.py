"""Multi-person tracking for pose extractors: per-frame detections -> ``M`` consistent slots.

Pose models return an unordered set of people per frame. Skeleton models need person ``m``
to be the same person in every frame, and the most relevant people first. This module:

1. links detections frame to frame into tracks by the overlap (IoU) of the boxes around
   their confident joints, greedily from the best-overlapping pair (people rarely swap
   boxes between two frames at video rates), keeping a lost track alive for ``max_gap``
   frames so a short occlusion does not split it;
2. ranks tracks by presence (the sum over frames of the mean joint score, so a person seen
   clearly in every frame beats one seen briefly or faintly), ties broken by mean box area;
3. returns a ``(T, M)`` table of detection indices (-1 where slot ``m`` is empty in a frame),
   with which any per-detection array (2D and 3D keypoints, scores) is laid out as
   ``(T, M, ...)`` by :func:`arrange`, zeros where nobody is.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def boxes_from_keypoints(xy: np.ndarray, score: np.ndarray, *, min_score: float = 0.3) -> np.ndarray:
    """``(N, V, 2)`` pixel keypoints and ``(N, V)`` scores -> ``(N, 4)`` boxes ``x0, y0, x1, y1``.

    Joints below ``min_score`` are ignored; a detection with no confident joint uses all
    of its joints (its box still places it, and its low score ranks it last).
    """
    xy = np.asarray(xy, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    if xy.ndim != 3 or xy.shape[-1] != 2 or score.shape != xy.shape[:2]:
        raise ValueError(f"expected xy (N, V, 2) and score (N, V), got {xy.shape} and {score.shape}")
    ok = score >= min_score
    ok[~ok.any(axis=1)] = True
    big = np.where(ok[..., None], xy, np.inf)
    small = np.where(ok[..., None], xy, -np.inf)
    return np.concatenate([big.min(axis=1), small.max(axis=1)], axis=1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a (N, 4)`` with every box of ``b (K, 4)`` -> ``(N, K)``."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def assign_tracks(boxes: Sequence[np.ndarray], *, iou_threshold: float = 0.3,
                  max_gap: int = 10) -> list[np.ndarray]:
    """Link per-frame boxes into tracks.

    Args:
        boxes: per frame, an ``(N_t, 4)`` array (``N_t`` may be 0).
        iou_threshold: least IoU with a track's last box for a detection to continue it.
        max_gap: frames a track may go unseen and still be continued.

    Returns:
        per frame, ``(N_t,)`` int track ids (0, 1, ... in order of first appearance).
    """
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    last_box: list[np.ndarray] = []
    last_seen: list[int] = []
    out = []
    for t, b in enumerate(boxes):
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
        ids = np.full(len(b), -1, dtype=np.int64)
        alive = [k for k in range(len(last_box)) if t - last_seen[k] <= max_gap + 1]
        if len(b) and alive:
            iou = box_iou(b, np.stack([last_box[k] for k in alive]))
            # greedy: best pair first, each detection and track used once
            for flat in np.argsort(-iou, axis=None):
                i, j = divmod(int(flat), len(alive))
                if iou[i, j] < iou_threshold:
                    break
                if ids[i] < 0 and alive[j] not in ids:
                    ids[i] = alive[j]
        for i in range(len(b)):
            if ids[i] < 0:
                ids[i] = len(last_box)
                last_box.append(b[i])
                last_seen.append(t)
            else:
                last_box[ids[i]] = b[i]
                last_seen[ids[i]] = t
        out.append(ids)
    return out


def select_people(track_ids: Sequence[np.ndarray], scores: Sequence[np.ndarray],
                  boxes: Sequence[np.ndarray], *, max_people: int) -> np.ndarray:
    """The ``(T, M)`` detection index of each kept person per frame (-1: absent).

    Tracks are ranked by presence (sum over frames of the mean joint score), then by mean
    box area; the first ``max_people`` become slots ``0..M-1``.
    """
    if max_people < 1:
        raise ValueError(f"max_people must be >= 1, got {max_people}")
    presence: dict[int, float] = {}
    area: dict[int, list[float]] = {}
    for ids, s, b in zip(track_ids, scores, boxes):
        if len(ids) == 0:
            continue
        s = np.asarray(s).reshape(len(ids), -1)
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
        for i, k in enumerate(ids):
            presence[int(k)] = presence.get(int(k), 0.0) + float(s[i].mean())
            area.setdefault(int(k), []).append(float(np.prod(np.clip(b[i, 2:] - b[i, :2], 0, None))))
    ranked = sorted(presence, key=lambda k: (-presence[k], -np.mean(area[k]), k))[:max_people]
    slot = {k: m for m, k in enumerate(ranked)}
    index = np.full((len(track_ids), max_people), -1, dtype=np.int64)
    for t, ids in enumerate(track_ids):
        for i, k in enumerate(ids):
            if int(k) in slot:
                index[t, slot[int(k)]] = i
    return index


def track_people(xy: Sequence[np.ndarray], score: Sequence[np.ndarray], *, max_people: int = 2,
                 min_score: float = 0.3, iou_threshold: float = 0.3, max_gap: int = 10) -> np.ndarray:
    """Per-frame people ``xy[t] (N_t, V, 2)``, ``score[t] (N_t, V)`` -> ``(T, M)`` indices.

    Feed the result to :func:`arrange` to lay out any per-detection array as ``(T, M, ...)``.
    """
    if len(xy) != len(score):
        raise ValueError(f"xy has {len(xy)} frames but score has {len(score)}")
    boxes = [boxes_from_keypoints(p, s, min_score=min_score) if len(p) else np.zeros((0, 4))
             for p, s in zip(xy, score)]
    ids = assign_tracks(boxes, iou_threshold=iou_threshold, max_gap=max_gap)
    return select_people(ids, score, boxes, max_people=max_people)


def arrange(per_frame: Sequence[np.ndarray], index: np.ndarray, *, shape: tuple[int, ...],
            dtype=np.float32) -> np.ndarray:
    """Lay out per-frame detection arrays ``(N_t, *shape)`` as ``(T, M, *shape)``; zeros where absent."""
    T, M = index.shape
    out = np.zeros((T, M, *shape), dtype=dtype)
    for t in range(T):
        for m in range(M):
            i = index[t, m]
            if i >= 0:
                out[t, m] = per_frame[t][i]
    return out
