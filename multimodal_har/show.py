"""``mhar show``: a picture of what a store holds for one video (for a quick look and notebooks).

* ``flow``: evenly spaced pairs drawn with the Middlebury colour wheel on one common scale,
  above the RGB frames of the same source frames when the store has an ``rgb`` entry.
* ``rgb``: evenly spaced frames.
* a pose entry (``pose3d``): the 2D joints of every person drawn over the RGB frames of the
  same source frames when the store has them (scaled if the sizes differ), else over grey.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from multimodal_har.atomic import atomic_path


def _evenly(n: int, count: int) -> list[int]:
    if n <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, min(count, n))})


def _row(images: list[np.ndarray], gap: int = 4) -> np.ndarray:
    h = max(im.shape[0] for im in images)
    out = []
    for im in images:
        pad = np.full((h, im.shape[1] + gap, 3), 255, np.uint8)
        pad[:im.shape[0], :im.shape[1]] = im
        out.append(pad)
    return np.concatenate(out, axis=1)[:, :-gap]


def render(store: Any, video_id: str, modality: str = "flow", count: int = 6,
           max_norm: Optional[float] = None) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 picture of ``count`` items of one entry (see the module docstring)."""
    from multimodal_har.extractors.rgb import read_rgb

    if modality == "rgb" or modality.startswith("rgb"):
        with store.open(video_id, modality) as f:
            return _row(list(read_rgb(f, _evenly(f["frames"].shape[0], count))))
    with store.open(video_id, modality) as f:
        is_pose = "keypoint2d" in f
    if is_pose:
        return _render_pose(store, video_id, modality, count)
    from multimodal_har.flow.codec import read_flow
    from multimodal_har.flow.visualize import flow_to_color

    with store.open(video_id, modality) as f:
        if "pairs" not in f:
            raise ValueError(f"{modality!r} of {video_id!r} is not a flow or pose entry; mhar show draws flow, pose and rgb")
        idx = _evenly(f["pairs"].shape[0], count)
        flows = read_flow(f, idx)
        firsts = f["pairs"][idx, 0].tolist()
    scale = max_norm or float(np.percentile(np.sqrt((flows ** 2).sum(1)), 99)) or 1.0
    rows = [_row([flow_to_color(fl, max_norm=scale) for fl in flows])]
    frames = _rgb_frames(store, video_id, firsts)
    if frames is not None and frames.shape[1:3] == flows.shape[2:]:
        rows.insert(0, _row(list(frames)))
    if len(rows) == 1:
        return rows[0]
    gap = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([rows[0], gap, rows[1]], axis=0)


def _rgb_frames(store: Any, video_id: str, source_frames: list[int]) -> Optional[np.ndarray]:
    """The store's ``rgb`` frames of these source frame numbers, ``(N, H, W, 3)``; None if
    the store has no ``rgb`` entry or it lacks one of them."""
    from multimodal_har.extractors.rgb import read_rgb

    if not store.has(video_id, "rgb"):
        return None
    with store.open(video_id, "rgb") as f:
        where = {int(k): i for i, k in enumerate(f["frame_indices"][:])}
        if not all(int(k) in where for k in source_frames):
            return None
        return read_rgb(f, [where[int(k)] for k in source_frames])


def _render_pose(store: Any, video_id: str, modality: str, count: int) -> np.ndarray:
    from multimodal_har.skeleton.draw import draw_skeleton

    data, attrs = store.read(video_id, modality)
    idx = _evenly(len(data["frame_indices"]), count)
    h, w = int(attrs["height"]), int(attrs["width"])
    images = [np.full((h, w, 3), 96, np.uint8) for _ in idx]
    scale = np.ones(2)
    frames = _rgb_frames(store, video_id, [int(data["frame_indices"][i]) for i in idx])
    if frames is not None:
        images = list(frames)
        scale = np.array([frames.shape[2] / w, frames.shape[1] / h])
    return _row([draw_skeleton(im, data["keypoint2d"][i] * scale, data["score2d"][i], str(attrs["layout2d"]))
                 for im, i in zip(images, idx)])


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write ``image`` as PNG, complete or not at all (temporary name, then rename)."""
    from PIL import Image

    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return path
