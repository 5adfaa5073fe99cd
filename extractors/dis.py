"""DIS optical flow on the CPU (OpenCV).

Kroeger, Timofte, Dai, Van Gool, "Fast Optical Flow using Dense Inverse Search", ECCV 2016.
"""

from __future__ import annotations

from dataclasses import dataclass

from .flow_base import FlowConfig, OpenCVFlow

PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


@dataclass
class DISConfig(FlowConfig):
    """Attributes: preset: ``ultrafast``, ``fast`` or ``medium`` (OpenCV's presets)."""

    preset: str = "medium"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {self.preset!r}")


class DISExtractor(OpenCVFlow):
    name = "dis"
    config_class = DISConfig

    def make_algorithm(self, cv2):
        return cv2.DISOpticalFlow_create(PRESETS[self.config.preset])


__all__ = ["DISConfig", "DISExtractor"]
