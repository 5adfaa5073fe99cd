"""Audio: ``logmel (T, n_mels)`` frames with ``timestamps`` (:mod:`multimodal_har.extractors.audio`)."""

from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np

from multimodal_har.config import config_dataclass

from .. import augment as A
from .base import Kind, StreamConfig, register_kind


@config_dataclass(kw_only=True)
class AudioStreamConfig(StreamConfig):
    """Attributes (besides :class:`~.base.StreamConfig`'s):
        frames: a contiguous run of ``T`` log-mel frames (None: every frame in the window).
        time_masks, time_mask_width, freq_masks, freq_mask_width: SpecAugment in training.
    """

    kind: Literal["audio"] = "audio"
    frames: Optional[int] = None
    time_masks: int = 2
    time_mask_width: int = 20
    freq_masks: int = 2
    freq_mask_width: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        self.at_least_one("frames")


@register_kind("audio")
class AudioKind(Kind):
    config_class = AudioStreamConfig
    datasets = ("logmel",)
    frames_key = "logmel"
    corruption = "audio_silence"
    config: AudioStreamConfig

    def read(self, entry: Any, pos: np.ndarray, rng: Optional[np.random.Generator]) -> np.ndarray:
        x = super().read(entry, pos, rng)  # (T, n_mels)
        if rng is not None and np.all(np.isfinite(x)):
            c = self.config
            x = A.spec_augment(x, rng, time_masks=c.time_masks, time_width=c.time_mask_width,
                               freq_masks=c.freq_masks, freq_width=c.freq_mask_width)
        return x
