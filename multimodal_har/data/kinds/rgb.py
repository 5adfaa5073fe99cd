"""RGB (or depth) frames: ``frames`` encoded per frame by :mod:`multimodal_har.extractors.rgb`."""

from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np

from multimodal_har.config import config_dataclass

from .base import register_kind
from .frames import IMAGENET_MEAN, IMAGENET_STD, FramesConfig, FramesKind


@config_dataclass(kw_only=True)
class RgbStreamConfig(FramesConfig):
    """An rgb stream: ``layout="2d"``: one frame per segment ``(K, 3, H, W)``; ``"3d"``: clips
    ``(K, 3, T, H, W)`` of ``clip_length`` consecutive frames."""

    kind: Literal["rgb"] = "rgb"
    clip_length: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        self.at_least_one("clip_length")
        if self.layout == "2d" and self.clip_length != 1:
            raise ValueError(f"clip_length = {self.clip_length} needs layout '3d' (2d takes one frame per segment)")


@register_kind("rgb")
class RgbKind(FramesKind):
    config_class = RgbStreamConfig
    datasets = ("frames",)
    frames_key = "frames"
    corruption = "frozen_frames"
    length_field = "clip_length"
    default_stats = (IMAGENET_MEAN, IMAGENET_STD)
    config: RgbStreamConfig

    def frame_stats(self) -> tuple[Any, Any]:
        return self.stats()

    def read(self, entry: Any, pos: np.ndarray, rng: Optional[np.random.Generator]) -> tuple[np.ndarray, Any]:
        from multimodal_har.extractors.rgb import read_rgb

        K, T = pos.shape
        uniq, inv = np.unique(pos.reshape(-1), return_inverse=True)  # decode each frame once
        frames = read_rgb(entry, uniq)[inv].transpose(0, 3, 1, 2)  # (K*T, H, W, 3) -> (K*T, 3, H, W)
        x, aff = self.spatial(frames, rng)
        x = x.reshape(K, T, *x.shape[1:])  # (K, T, 3, H, W)
        return (x[:, 0] if self.config.layout == "2d" else x.transpose(0, 2, 1, 3, 4)), aff  # (K, 3, [T,] H, W)
