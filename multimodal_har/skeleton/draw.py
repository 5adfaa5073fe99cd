"""Drawing skeletons on images with Pillow: bones coloured by body part, joints as dots.

Colours follow the layout's parts (:attr:`Layout.parts`) and the mmpose habit of green for
the person's left, orange for the right, blue for the torso; the face is pink. Further people
get darker shades of the same colours so that overlapping people stay apart. Joints whose
score is below ``min_score`` are not drawn, nor bones touching them, nor people whose
coordinates are all zero (absent, as the readers pad them).

Pillow is imported when drawing, so importing :mod:`multimodal_har.skeleton` stays numpy-only.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .layouts import Layout, get_layout

PART_COLORS = {"torso": (51, 153, 255), "head": (255, 102, 178)}
SIDE_COLORS = {"left": (0, 220, 90), "right": (255, 140, 0)}
_OTHER = ((200, 200, 60), (160, 100, 255), (90, 220, 220))  # parts named otherwise, in turn
PERSON_SHADES = (1.0, 0.6, 0.8, 0.45)  # brightness of person m % 4


def part_colors(layout: str | Layout) -> dict[str, tuple[int, int, int]]:
    """Body part -> RGB colour: by side (``left_*`` / ``*_left``), torso, head, else in turn."""
    layout = get_layout(layout)
    colors, other = {}, 0
    for part in layout.parts:
        side = next((s for s in SIDE_COLORS if s in part.split("_")), None)
        if side is not None:
            colors[part] = SIDE_COLORS[side]
        elif part in PART_COLORS:
            colors[part] = PART_COLORS[part]
        else:
            colors[part] = _OTHER[other % len(_OTHER)]
            other += 1
    return colors


def _shade(color: tuple[int, int, int], person: int) -> tuple[int, int, int]:
    f = PERSON_SHADES[person % len(PERSON_SHADES)]
    return tuple(int(round(c * f)) for c in color)


def draw_skeleton(image: np.ndarray, xy: np.ndarray, score: np.ndarray, layout: str | Layout, *,
                  min_score: float = 0.3, thickness: Optional[int] = None,
                  radius: Optional[int] = None) -> np.ndarray:
    """Draw the people of one frame on a copy of ``image``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB; not modified.
        xy: ``(M, V, 2)`` pixel coordinates (x right, y down).
        score: ``(M, V)`` confidences; joints below ``min_score`` are skipped.
        thickness: bone width in pixels (default: the image's short side / 150, at least 1).
        radius: joint dot radius in pixels (default: ``thickness + 1``).

    Returns:
        ``(H, W, 3)`` uint8: the image with bones, then joints, of every present person.
    """
    from PIL import Image, ImageDraw

    layout = get_layout(layout)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    v = layout.num_joints
    if xy.ndim != 3 or xy.shape[1:] != (v, 2) or score.shape != xy.shape[:2]:
        raise ValueError(f"xy must be (M, {v}, 2) and score (M, {v}) for layout {layout.name}; "
                         f"got {xy.shape} and {score.shape}")
    thickness = thickness or max(1, round(min(image.shape[:2]) / 150))
    radius = radius or thickness + 1
    colors = part_colors(layout)
    joint_color = [colors[next(p for p, js in layout.parts.items() if j in js)] for j in layout.joints]
    edges = layout.edges.T  # (E, 2) child, parent
    canvas = Image.fromarray(np.ascontiguousarray(image))
    pen = ImageDraw.Draw(canvas)
    for m in range(len(xy)):
        if not xy[m].any():
            continue
        show = (score[m] >= min_score) & np.isfinite(xy[m]).all(axis=-1)  # (V,)
        for child, parent in edges:
            if show[child] and show[parent]:
                ends = [tuple(map(float, xy[m, parent])), tuple(map(float, xy[m, child]))]
                pen.line(ends, fill=_shade(joint_color[child], m), width=thickness)
        for j in np.flatnonzero(show):
            x, y = map(float, xy[m, j])
            pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=_shade(joint_color[j], m))
    return np.asarray(canvas).copy()


def draw_sequence(frames: np.ndarray, xy: np.ndarray, score: np.ndarray, layout: str | Layout,
                  **kwargs) -> np.ndarray:
    """:func:`draw_skeleton` on every frame.

    Args:
        frames: ``(T, H, W, 3)`` uint8; xy: ``(T, M, V, 2)``; score: ``(T, M, V)``.
        kwargs: passed to :func:`draw_skeleton` (``min_score``, ``thickness``, ``radius``).

    Returns:
        ``(T, H, W, 3)`` uint8.
    """
    if len(frames) != len(xy) or len(xy) != len(score):
        raise ValueError(f"frames, xy and score must have the same T; got {len(frames)}, {len(xy)}, {len(score)}")
    return np.stack([draw_skeleton(f, p, s, layout, **kwargs) for f, p, s in zip(frames, xy, score)])
