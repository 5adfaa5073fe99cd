"""Optical flow: quantised ``pairs`` of fields with their ``times`` (:mod:`multimodal_har.flow.codec`)."""

from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np

from multimodal_har.config import config_dataclass

from .base import register_kind
from .frames import FLOW_STD, FramesConfig, FramesKind


@config_dataclass(kw_only=True)
class FlowStreamConfig(FramesConfig):
    """A flow stream: ``layout="2d"``: a stack of ``flow_length`` fields per segment ``(K, 2L,
    H, W)`` (``x0, y0, x1, y1...``); ``"3d"``: ``(K, 2, L, H, W)``."""

    kind: Literal["flow"] = "flow"
    flow_length: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        self.at_least_one("flow_length")


@register_kind("flow")
class FlowKind(FramesKind):
    config_class = FlowStreamConfig
    datasets = ("pairs",)
    frames_key = "pairs"
    corruption = "frozen_frames"
    channels = 2
    length_field = "flow_length"
    default_stats = (0.0, FLOW_STD)
    config: FlowStreamConfig

    def check_times(self, entry: Any, video: str) -> None:
        if "times" not in entry:
            raise ValueError(f"{self.source} entry of {video!r} has no 'times' dataset: not a flow entry "
                             f"(it has {sorted(entry.keys())})")

    def times(self, entry: Any) -> np.ndarray:
        return entry["times"][()]

    def read(self, entry: Any, pos: np.ndarray, rng: Optional[np.random.Generator]) -> tuple[np.ndarray, Any]:
        from multimodal_har.flow.codec import read_flow

        K, L = pos.shape
        uniq, inv = np.unique(pos.reshape(-1), return_inverse=True)
        q = read_flow(entry, uniq, quantized=True)[inv]  # (K*L, 2, H, W) uint8 (float if stored so)
        x, aff = self.spatial(q, rng, bound=float(entry.attrs["bound"]))
        x = x.reshape(K, L, 2, *x.shape[2:])  # (K, L, 2, H, W)
        if self.config.layout == "2d":  # (K, 2L, H, W): x0, y0, x1, y1, ...
            return x.reshape(K, 2 * L, *x.shape[3:]), None if aff is None else tuple(np.tile(a, L) for a in aff)
        return x.transpose(0, 2, 1, 3, 4), aff  # (K, 2, L, H, W)
