"""Frame pairs with known flow, made from real frames by a known warp.

``warp_pair(image, A)`` returns ``(image, warped, flow)`` where the content at pixel ``p`` of
``image`` is at ``A @ [p, 1]`` in ``warped``, so the true flow from the first frame to the
second is ``A @ [p, 1] - p`` (x, y in pixels). Used by the known-answer tests of the flow
backends and by ``benchmarks/flow_accuracy.py``.
"""

from __future__ import annotations

import numpy as np


def translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


def similarity(angle_deg: float, scale: float, dx: float, dy: float, centre: tuple[float, float]) -> np.ndarray:
    """Rotation by ``angle_deg`` and scaling about ``centre`` (x, y), then a shift."""
    a = np.deg2rad(angle_deg)
    r = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    c = np.asarray(centre, float)
    return np.hstack([r, (c - r @ c + [dx, dy])[:, None]])


def true_flow(affine: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(2, H, W)`` flow of the affine map at every pixel of the first frame."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    nx = affine[0, 0] * xs + affine[0, 1] * ys + affine[0, 2]
    ny = affine[1, 0] * xs + affine[1, 1] * ys + affine[1, 2]
    return np.stack([nx - xs, ny - ys]).astype(np.float32)


def warp_pair(image: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(H, W, 3)`` uint8 -> (first, second, true flow ``(2, H, W)``); bilinear resampling,
    borders replicated (evaluate away from the border)."""
    import cv2

    h, w = image.shape[:2]
    second = cv2.warpAffine(image, affine, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return image, second, true_flow(affine, h, w)


def epe(flow: np.ndarray, truth: np.ndarray, margin: int = 0) -> float:
    """Mean end-point error of ``(2, H, W)`` flows, ignoring ``margin`` pixels at the border."""
    err = np.sqrt(((np.asarray(flow, np.float64) - truth) ** 2).sum(0))
    if margin:
        err = err[margin:-margin, margin:-margin]
    return float(err.mean())
