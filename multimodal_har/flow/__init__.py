"""Optical flow: storage (``codec``), pair plans (``pairs``), colour visualisation
(``visualize``), known-answer warps (``synthetic``), RAFT for video (``raft``) and the batched
GPU pipeline (``pipeline``). Backends live in ``extractors/`` (``raft``, ``tvl1``,
``dis``, ``farneback``). Importing this package imports neither torch nor OpenCV.
"""

from .codec import DEFAULT_BOUND, FORMATS, dequantize, export_tsn, quantize, read_flow
from .visualize import flow_to_color

__all__ = ["DEFAULT_BOUND", "FORMATS", "dequantize", "export_tsn", "quantize", "read_flow", "flow_to_color"]
