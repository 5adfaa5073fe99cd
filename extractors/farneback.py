"""Farneback optical flow on the CPU (OpenCV).

Farneback, "Two-Frame Motion Estimation Based on Polynomial Expansion", SCIA 2003.
"""

from __future__ import annotations

from dataclasses import dataclass

from .flow_base import FlowConfig, OpenCVFlow


@dataclass
class FarnebackConfig(FlowConfig):
    """OpenCV's parameters (defaults from its samples): pyramid scale and levels, window size,
    iterations, polynomial neighbourhood and sigma."""

    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2


class _Farneback:
    def __init__(self, cv2, cfg: FarnebackConfig) -> None:
        self.cv2, self.cfg = cv2, cfg

    def calc(self, prev, nxt, _):
        c = self.cfg
        return self.cv2.calcOpticalFlowFarneback(prev, nxt, None, c.pyr_scale, c.levels, c.winsize,
                                                 c.iterations, c.poly_n, c.poly_sigma, 0)


class FarnebackExtractor(OpenCVFlow):
    name = "farneback"
    config_class = FarnebackConfig

    def make_algorithm(self, cv2):
        return _Farneback(cv2, self.config)
