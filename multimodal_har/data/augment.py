"""Sampling and augmentation of one modality's frames, used by :mod:`multimodal_har.data.dataset`.

Everything here is a pure function of its inputs and a ``numpy.random.Generator`` (``None``
means evaluation: deterministic centre choices, no augmentation), so a sample depends only on
``(seed, epoch, index)`` whatever worker process computes it.

* TSN segment sampling (Wang et al., ECCV 2016): ``K`` equal segments of the frames in the
  window, one snippet of ``s`` consecutive frames in each: at a random offset in training,
  at the segment's centre in evaluation (:func:`segment_starts`).
* Spatial: one crop region and one flip for every frame of a sample (TSN's group transforms),
  TSN's multi-scale crop as an option; flow vectors are rescaled with the image and their x
  component negated when flipped (:func:`crop_region`, :func:`crop_resize`).
* Skeletons: rotation about the vertical (y) axis (and about x and z), shear, scale, joint
  jitter and joint masking, leaving absent people at zero (:func:`augment_pose`); temporal
  crop-and-resample (:func:`resample_positions`); the joint / bone / motion / bone-motion
  streams are :meth:`multimodal_har.skeleton.layouts.Layout.stream`.
* Audio: SpecAugment time and frequency masking (Park et al., Interspeech 2019), filled with
  the slice's mean because stored log-mels are not zero-mean (:func:`spec_augment`).
* Signals: per-channel scaling and jitter relative to each channel's spread (:func:`augment_signal`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

MULTI_SCALES = (1.0, 0.875, 0.75, 0.66)  # TSN's GroupMultiScaleCrop scales


def segment_starts(n: int, segments: int, length: int, rng: Optional[np.random.Generator]) -> np.ndarray:
    """``(K, length)`` frame positions in ``0..n-1``: a snippet of ``length`` consecutive frames
    in each of ``K = segments`` equal segments (TSN). Positions past the end repeat the last
    frame, so a window shorter than a snippet still gives ``K`` full snippets."""
    if n < 1:
        raise ValueError(f"need at least one frame to sample segments from, got {n}")
    span = max(1, n - length + 1)  # possible snippet starts
    if rng is None:  # centre of each segment
        tick = span / segments
        starts = (tick / 2 + tick * np.arange(segments)).astype(np.int64)
    elif span >= segments:  # a random start inside each segment
        edges = (np.arange(segments + 1) * span) // segments  # (K + 1,)
        starts = edges[:-1] + (rng.random(segments) * (edges[1:] - edges[:-1])).astype(np.int64)
    else:  # fewer starts than segments: sorted random draws, repeats allowed
        starts = np.sort(rng.integers(0, span, size=segments))
    return np.minimum(starts[:, None] + np.arange(length)[None], n - 1)  # (K, length)


def uniform_positions(n: int, frames: Optional[int], rng: Optional[np.random.Generator]) -> np.ndarray:
    """Positions of ``frames`` frames spread over ``n`` (one per equal part: random in training,
    centred in evaluation); all ``n`` when ``frames`` is None or ``n <= frames`` (the batch pads
    them, the mask marks the padding)."""
    if frames is None or n <= frames:
        return np.arange(n)
    return segment_starts(n, frames, 1, rng)[:, 0]


def contiguous_slice(n: int, frames: Optional[int], rng: Optional[np.random.Generator]) -> tuple[int, int]:
    """A run of ``frames`` consecutive positions of ``n`` (random in training, centred in
    evaluation); all of them when ``frames`` is None or ``n <= frames``."""
    if frames is None or n <= frames:
        return 0, n
    start = (n - frames) // 2 if rng is None else int(rng.integers(0, n - frames + 1))
    return start, start + frames


def crop_region(height: int, width: int, *, crop: Optional[int], resize: Optional[int], multi_scale: bool,
                rng: Optional[np.random.Generator]) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """Where to crop a ``height x width`` frame and the output size.

    The frame is thought of as resized so its short side is ``resize`` (no resize if None),
    then cropped to ``crop x crop`` (random position in training, centre in evaluation; TSN's
    multi-scale crop takes a region of ``scale_h x scale_w`` times the short side, the two
    scales at most one step apart, and resizes it to ``crop x crop``). The region is returned
    in the stored frame's pixels, so only it is resized.

    Returns:
        ``(y, x, h, w)`` region and ``(out_h, out_w)``.
    """
    r = 1.0 if resize is None else resize / min(height, width)
    if crop is None:
        return (0, 0, height, width), (round(height * r), round(width * r))
    if multi_scale and rng is not None:
        i, j = rng.integers(0, len(MULTI_SCALES), size=2)
        while abs(int(i) - int(j)) > 1:
            i, j = rng.integers(0, len(MULTI_SCALES), size=2)
        base = min(height, width)
        h, w = round(base * MULTI_SCALES[i]), round(base * MULTI_SCALES[j])
    else:
        h = w = round(crop / r)
    h, w = max(1, min(h, height)), max(1, min(w, width))  # a crop larger than the frame takes it all
    if rng is None:
        y, x = (height - h) // 2, (width - w) // 2
    else:
        y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    return (y, x, h, w), (crop, crop)


def crop_resize(frames: np.ndarray, region: tuple[int, int, int, int], size: tuple[int, int], *,
                flip: bool = False, flow: bool = False) -> np.ndarray:
    """Crop ``region`` of ``(N, C, H, W)`` frames, resize to ``size``, mirror if ``flip``.

    uint8 frames stay uint8 (resized in uint8, bilinear with antialiasing, as image libraries
    do); other dtypes come back float32. For float flow (``flow=True``, ``C = 2`` as ``(x, y)``
    in pixels) the vectors are scaled by the resize factors and the x component is negated when
    mirrored, so the result is the flow of the transformed frames; quantised (uint8) flow cannot
    be negated in place, so the caller does both on the values (see ``StoreDataset._spatial``).
    Returns ``(N, C, out_h, out_w)``, contiguous.
    """
    import torch

    y, x, h, w = region
    u8 = frames.dtype == np.uint8
    if flow and u8:
        raise ValueError("crop_resize(flow=True) takes flow in float pixels; for TSN-quantised uint8 flow "
                         "pass flow=False and scale / negate the dequantised values")
    out = frames[:, :, y:y + h, x:x + w]  # (N, C, h, w), a view
    if (h, w) != tuple(size):
        t = torch.from_numpy(np.ascontiguousarray(out, dtype=np.uint8 if u8 else np.float32))
        out = torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False,
                                              antialias=True).numpy()
        if flow:
            out[:, 0] *= size[1] / w  # x displacements scale with the width
            out[:, 1] *= size[0] / h
    if flip:
        out = out[..., ::-1]
    out = np.ascontiguousarray(out, dtype=np.uint8 if u8 else np.float32)
    if flip and flow:
        out[:, 0] = -out[:, 0]
    return out


def rotation_y(angle: float) -> np.ndarray:
    """``(3, 3)`` rotation about the vertical (y) axis, applied as ``x @ R.T``."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=np.float32)


def rotation_xyz(ax: float, ay: float, az: float) -> np.ndarray:
    """``(3, 3)`` rotation by ``az`` about z, then ``ay`` about y, then ``ax`` about x (``x @ R.T``)."""
    cx, sx, cz, sz = np.cos(ax), np.sin(ax), np.cos(az), np.sin(az)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]], dtype=np.float32)
    rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    return rx @ rotation_y(ay) @ rz


def augment_pose(x: np.ndarray, present: np.ndarray, rng: np.random.Generator, *, rotate_deg: float,
                 scale: float, jitter: float, tilt_deg: float = 0.0, shear: float = 0.0,
                 mask_joints: float = 0.0) -> np.ndarray:
    """Training augmentation of ``(T, M, V, C)`` joints, one draw for the whole sequence; an
    absent person (``present (T, M)`` False) stays exactly zero.

    * rotation about the vertical y axis in ``+-rotate_deg`` and, with ``tilt_deg``, about x
      and z in ``+-tilt_deg`` (3D only; the random 3D rotation of 2s-AGCN / CTR-GCN / PYSKL);
    * shear (ST-GCN's and 2s-AGCN's ``random_shear``): ``x @ S.T`` with the off-diagonal
      terms of ``S`` uniform in ``+-shear``;
    * isotropic scale in ``[1 - scale, 1 + scale]``;
    * Gaussian joint jitter of std ``jitter`` (coordinate units);
    * joint masking: each joint is zeroed for the whole sequence with probability
      ``mask_joints`` (the bone and motion streams then see it missing too).
    """
    x = x.astype(np.float32, copy=True)
    C = x.shape[-1]
    if C == 3 and (rotate_deg > 0 or tilt_deg > 0):
        ay = np.deg2rad(rng.uniform(-rotate_deg, rotate_deg)) if rotate_deg > 0 else 0.0
        ax, az = np.deg2rad(rng.uniform(-tilt_deg, tilt_deg, size=2)) if tilt_deg > 0 else (0.0, 0.0)
        x = x @ (rotation_y(ay) if tilt_deg <= 0 else rotation_xyz(ax, ay, az)).T
    if shear > 0:
        off = 1.0 - np.eye(C, dtype=np.float32)
        x = x @ (np.eye(C, dtype=np.float32) + rng.uniform(-shear, shear, size=(C, C)).astype(np.float32) * off).T
    if scale > 0:
        x *= rng.uniform(1 - scale, 1 + scale)
    if jitter > 0:
        x += rng.normal(0.0, jitter, size=x.shape).astype(np.float32)
    if mask_joints > 0:
        x *= (rng.random(x.shape[-2]) >= mask_joints).astype(np.float32)[:, None]
    return x * present[..., None, None]


def resample_positions(n: int, frames: int, rng: Optional[np.random.Generator], *,
                       min_crop: float = 1.0) -> np.ndarray:
    """``(frames,)`` fractional positions in ``[0, n - 1]``: ``frames`` evenly spaced over a
    random contiguous crop of ``min_crop``-100 % of the sequence (training) or over all of it
    (``rng`` None). The temporal crop-and-resize of PYSKL's ``UniformSampleFrames`` /
    CTR-GCN's ``valid_crop_resize``; :func:`interpolate_frames` reads them."""
    if rng is None or min_crop >= 1.0:
        return np.linspace(0.0, n - 1, frames)
    length = rng.uniform(min_crop, 1.0)
    start = rng.uniform(0.0, 1.0 - length)
    return np.linspace(start * (n - 1), (start + length) * (n - 1), frames)


def interpolate_frames(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``(T, ...)`` -> ``(len(pos), ...)``: linear interpolation at fractional frame positions."""
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(x) - 1)
    w = (pos - lo).reshape(-1, *([1] * (x.ndim - 1))).astype(np.float32)
    return ((1 - w) * x[lo] + w * x[hi]).astype(x.dtype, copy=False)


def spec_augment(x: np.ndarray, rng: np.random.Generator, *, time_masks: int, time_width: int,
                 freq_masks: int, freq_width: int) -> np.ndarray:
    """SpecAugment masking of ``(T, F)`` log-mels: ``time_masks`` bands of up to ``time_width``
    frames and ``freq_masks`` of up to ``freq_width`` bins, set to the slice's mean."""
    x = x.copy()
    fill = float(x.mean()) if x.size else 0.0
    for n, width, axis in ((time_masks, time_width, 0), (freq_masks, freq_width, 1)):
        size = x.shape[axis]
        for _ in range(n):
            w = int(rng.integers(0, min(width, size) + 1))
            if w == 0:
                continue
            a = int(rng.integers(0, size - w + 1))
            if axis == 0:
                x[a:a + w] = fill
            else:
                x[:, a:a + w] = fill
    return x


def augment_signal(x: np.ndarray, rng: np.random.Generator, *, scale: float, jitter: float) -> np.ndarray:
    """``(T, C)``: each channel times ``N(1, scale)``, plus noise of ``jitter`` times its std."""
    x = x.astype(np.float32, copy=True)
    if scale > 0:
        x *= rng.normal(1.0, scale, size=(1, x.shape[1])).astype(np.float32)
    if jitter > 0 and len(x) > 1:
        x += rng.normal(0.0, 1.0, size=x.shape).astype(np.float32) * (jitter * x.std(axis=0, keepdims=True))
    return x
