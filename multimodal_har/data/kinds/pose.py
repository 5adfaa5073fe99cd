"""Skeletons: ``keypoint (T, M, V, C)`` with optional ``score (T, M, V)`` and a ``layout``
attribute; a stream is one of the layout's streams (joint, bone, motion, bone_motion)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, Optional

import numpy as np

from multimodal_har.config import config_dataclass, from_dict
from multimodal_har.skeleton.layouts import STREAMS
from multimodal_har.skeleton.normalize import NormalizeConfig

from .. import augment as A
from ..store import attr_value
from .base import Kind, StreamConfig, register_kind


@config_dataclass(kw_only=True)
class PoseStreamConfig(StreamConfig):
    """Attributes (besides :class:`~.base.StreamConfig`'s):
        frames: a fixed ``T`` spread over the window (None: every frame in it; shorter windows
            are padded by collate).
        stream: ``joint``, ``bone``, ``motion`` or ``bone_motion``.
        target_layout: convert to this layout (``skeleton.layouts.convert``).
        normalize: :class:`~multimodal_har.skeleton.normalize.NormalizeConfig` fields (``{}``
            for its defaults), or None for raw coordinates.
        max_people: keep / zero-pad to ``M`` people (None: as stored).
        rotate_deg, scale, jitter: rotation about y (degrees), scale range, joint jitter
            (coordinate units).
        tilt_deg, shear, mask_joints: rotation about x and z (degrees), shear range,
            probability of masking a joint for the whole sample (:func:`..augment.augment_pose`).
    """

    kind: Literal["pose"] = "pose"
    frames: Optional[int] = None
    stream: Literal["joint", "bone", "motion", "bone_motion"] = "joint"
    target_layout: Optional[str] = None
    normalize: Optional[NormalizeConfig] = None
    max_people: Optional[int] = None
    rotate_deg: float = 15.0
    scale: float = 0.1
    jitter: float = 0.01
    tilt_deg: float = 0.0
    shear: float = 0.0
    mask_joints: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}, got {self.stream!r}")
        self.at_least_one("frames", "max_people")
        if self.normalize is not None and not isinstance(self.normalize, NormalizeConfig):
            self.normalize = from_dict(NormalizeConfig, self.normalize, where="normalize")


@register_kind("pose")
class PoseKind(Kind):
    config_class = PoseStreamConfig
    datasets = ("keypoint",)
    frames_key = "keypoint"
    corruption = "pose_noise"
    config: PoseStreamConfig

    def positions(self, n: int, rng: Optional[np.random.Generator]) -> np.ndarray:
        return A.uniform_positions(n, self.config.frames, rng)

    def share_key(self) -> tuple:
        # joint, bone and motion streams of one entry and settings read the same frames the
        # same way: one read and augmentation, then each takes its stream (output)
        return ("pose", repr(dataclasses.replace(self.config, stream="joint", input=None, kwarg="x")))

    def read(self, entry: Any, pos: np.ndarray, rng: Optional[np.random.Generator]) -> tuple[np.ndarray, Optional[str]]:
        """``(T, M, V, C)`` joints, converted, normalised and augmented, and their layout."""
        from multimodal_har.skeleton.layouts import convert
        from multimodal_har.skeleton.normalize import normalize, present

        cfg = self.config
        lo, hi = int(pos.min()), int(pos.max()) + 1  # one contiguous read, then pick
        x = entry["keypoint"][lo:hi][pos - lo].astype(np.float32)  # (T, M, V, C)
        score = (entry["score"][lo:hi][pos - lo] if "score" in entry else np.ones(x.shape[:3])).astype(np.float32)
        if not np.all(np.isfinite(x)):
            return x, None  # reported by the dataset
        layout = attr_value(entry.attrs["layout"]) if "layout" in entry.attrs else None
        if cfg.target_layout is not None and cfg.target_layout != layout:
            if layout is None:
                raise ValueError(f"{self.source} entry has no 'layout' attribute: cannot convert to {cfg.target_layout}")
            x, score = convert(x, score, layout, cfg.target_layout)
            layout = cfg.target_layout
        if cfg.normalize is not None:
            if layout is None:
                raise ValueError(f"{self.source} entry has no 'layout' attribute, which normalize needs")
            rate = None
            if cfg.normalize.fps is not None:  # the rate of the frames as sampled
                t = self.times(entry)[pos]
                rate = 1.0 / float(np.median(np.diff(t))) if len(t) > 1 else cfg.normalize.fps
            x, score = normalize(x, score, layout, cfg.normalize, src_fps=rate)
        if cfg.max_people is not None and x.shape[1] != cfg.max_people:
            m = cfg.max_people
            pad = max(0, m - x.shape[1])
            x = np.pad(x[:, :m], ((0, 0), (0, pad), (0, 0), (0, 0)))
            score = np.pad(score[:, :m], ((0, 0), (0, pad), (0, 0)))
        if rng is not None:
            x = A.augment_pose(x, present(x, score), rng, rotate_deg=cfg.rotate_deg, scale=cfg.scale,
                               jitter=cfg.jitter, tilt_deg=cfg.tilt_deg, shear=cfg.shear,
                               mask_joints=cfg.mask_joints)
        return x, layout

    def output(self, data: tuple[np.ndarray, Optional[str]], *, video: str) -> tuple[np.ndarray, None]:
        """The configured stream of the joints (bones, motion...)."""
        x, layout = data
        if np.all(np.isfinite(x)) and self.config.stream != "joint":
            if layout is None:
                raise ValueError(f"{self.source} entry of {video!r} has no 'layout' attribute, which stream "
                                 f"{self.config.stream!r} needs")
            from multimodal_har.skeleton.layouts import get_layout

            x = get_layout(layout).stream(x, self.config.stream).astype(np.float32)
        return x, None
