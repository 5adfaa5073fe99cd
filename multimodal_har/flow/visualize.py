"""Flow as colour: the Middlebury colour wheel (Baker et al., "A Database and Evaluation
Methodology for Optical Flow", IJCV 2011). Hue is the direction, saturation the magnitude.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

# Hue transitions of the wheel and how many steps each takes (red-yellow-green-cyan-blue-magenta).
_SEGMENTS = ((15, (255, 0, 0), (255, 255, 0)), (6, (255, 255, 0), (0, 255, 0)),
             (4, (0, 255, 0), (0, 255, 255)), (11, (0, 255, 255), (0, 0, 255)),
             (13, (0, 0, 255), (255, 0, 255)), (6, (255, 0, 255), (255, 0, 0)))


def color_wheel() -> np.ndarray:
    """The wheel as ``(55, 3)`` float RGB in 0..255, starting at red (flow pointing left)."""
    rows = []
    for n, a, b in _SEGMENTS:
        t = np.arange(n)[:, None] / n
        rows.append(np.asarray(a, float) * (1 - t) + np.asarray(b, float) * t)
    return np.concatenate(rows)


def flow_to_color(flow: np.ndarray, max_norm: Optional[float] = None) -> np.ndarray:
    """``(2, H, W)`` or ``(H, W, 2)`` flow (pixels) -> ``(H, W, 3)`` uint8 RGB (a leading axis
    of 2 is read as ``(2, H, W)``).

    Args:
        max_norm: the magnitude drawn at full saturation (default: the largest in ``flow``).
            Pass a fixed value to compare frames with the same scale.
    """
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim != 3 or 2 not in (flow.shape[0], flow.shape[-1]):
        raise ValueError(f"flow must be (2, H, W) or (H, W, 2), got {flow.shape}")
    if flow.shape[0] == 2:  # (2, H, W) wins when both could apply
        flow = np.moveaxis(flow, 0, -1)
    u, v = flow[..., 0], flow[..., 1]
    bad = ~np.isfinite(u) | ~np.isfinite(v)
    u, v = np.where(bad, 0, u), np.where(bad, 0, v)
    mag = np.sqrt(u * u + v * v)
    scale = float(max_norm) if max_norm else float(mag.max())
    r = mag / max(scale, 1e-9)
    wheel = color_wheel()
    n = len(wheel)
    angle = np.arctan2(-v, -u) / np.pi  # -1..1
    fk = (angle + 1) / 2 * (n - 1)
    k0 = np.floor(fk).astype(int)
    k1 = (k0 + 1) % n
    f = (fk - k0)[..., None]
    col = ((1 - f) * wheel[k0] + f * wheel[k1]) / 255.0
    inside = (r <= 1)[..., None]
    rr = np.clip(r, 0, None)[..., None]
    col = np.where(inside, 1 - rr * (1 - col), col * 0.75)  # saturate with magnitude; dim overflow
    col[bad] = 0
    return np.clip(np.floor(255 * col), 0, 255).astype(np.uint8)
