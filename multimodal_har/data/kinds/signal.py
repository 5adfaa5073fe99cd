"""Signals: rows ``(T, ...)`` of one dataset (``data``: inertial sensors, any sampled series),
timed by ``timestamps`` or a rate. The kind of an entry no other kind matches."""

from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np

from multimodal_har.config import config_dataclass

from .. import augment as A
from .base import Kind, StreamConfig, register_kind


@config_dataclass(kw_only=True)
class SignalStreamConfig(StreamConfig):
    """Attributes (besides :class:`~.base.StreamConfig`'s):
        frames: a contiguous run of ``T`` rows (None: every row in the window).
        key: the dataset name.
        scale, jitter: training augmentation, scale std and jitter relative to each channel's std.
    """

    kind: Literal["signal"] = "signal"
    frames: Optional[int] = None
    key: str = "data"
    scale: float = 0.1
    jitter: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        self.at_least_one("frames")


@register_kind("signal")
class SignalKind(Kind):
    config_class = SignalStreamConfig
    fallback = True
    config: SignalStreamConfig

    def data_key(self) -> str:
        return self.config.key

    def check(self, entry: Any, video: str) -> None:
        if self.config.key not in entry:
            raise ValueError(f"{self.source} entry of {video!r} has no dataset {self.config.key!r} (it has "
                             f"{sorted(entry.keys())}); set `key` in the modality config")
        super().check(entry, video)

    def read(self, entry: Any, pos: np.ndarray, rng: Optional[np.random.Generator]) -> np.ndarray:
        x = super().read(entry, pos, rng)
        x = x.reshape(len(x), -1)  # (T, ...) -> (T, C)
        if rng is not None and np.all(np.isfinite(x)):
            x = A.augment_signal(x, rng, scale=self.config.scale, jitter=self.config.jitter)
        return x
