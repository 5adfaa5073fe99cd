"""TV-L1 optical flow on the CPU (OpenCV contrib), the flow TSN and I3D were trained on.

Zach, Pock, Bischof, "A Duality Based Approach for Realtime TV-L1 Optical Flow", DAGM 2007;
the OpenCV implementation follows Sanchez, Meinhardt-Llopis, Facciolo, IPOL 2013.
"""

from __future__ import annotations

from dataclasses import dataclass

from .flow_base import FlowConfig, OpenCVFlow, import_cv2


@dataclass
class TVL1Config(FlowConfig):
    """OpenCV's defaults: time step ``tau``, data weight ``lambda_``, ``theta``, pyramid scales,
    warps per scale, stopping ``epsilon``."""

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    scales: int = 5
    warps: int = 5
    epsilon: float = 0.01


class TVL1Extractor(OpenCVFlow):
    name = "tvl1"
    config_class = TVL1Config

    def setup(self, threads: int = 0) -> None:
        import_cv2(self.name, need_contrib=True)
        super().setup(threads)

    def make_algorithm(self, cv2):
        c = self.config
        return cv2.optflow.DualTVL1OpticalFlow_create(tau=c.tau, lambda_=c.lambda_, theta=c.theta,
                                                      nscales=c.scales, warps=c.warps, epsilon=c.epsilon)
