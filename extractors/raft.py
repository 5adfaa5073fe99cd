"""RAFT optical flow (torchvision weights), batched across videos on the GPU.

Teed & Deng, "RAFT: Recurrent All-Pairs Field Transforms for Optical Flow", ECCV 2020.
The model is torchvision's ``raft_large`` / ``raft_small``; ``multimodal_har.flow.raft`` runs
it per frame batch, ``multimodal_har.flow.pipeline`` keeps the GPU fed. Without CUDA the same
pipeline runs on the CPU (slowly; for tests and small jobs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .flow_base import BatchedFlowConfig, BatchedFlowExtractor

COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")


@dataclass
class RAFTConfig(BatchedFlowConfig):
    """Attributes:
        model: ``raft_large`` or ``raft_small``.
        weights: torchvision weights name (``DEFAULT`` = ``C_T_SKHT_V2`` for large, ``C_T_V2``
            for small; downloaded to torch's cache on first use), a checkpoint file, or ``none``
            (random weights: only for testing the pipeline).
        updates: refinement iterations (RAFT's default 12).
        compile: ``torch.compile`` mode on CUDA (``reduce-overhead`` captures CUDA graphs).
        lookup: correlation lookup, ``gather`` or ``grid_sample`` (torchvision's).
        channels_last: run convolutions in NHWC.
    (``batch_frames``, ``precision``, ``device``: see ``BatchedFlowConfig``.)
    """

    model: str = "raft_large"
    weights: Optional[str] = "DEFAULT"
    updates: int = 12
    compile: str = "reduce-overhead"
    lookup: str = "gather"
    channels_last: bool = True

    def __post_init__(self) -> None:
        from multimodal_har.flow.raft import LOOKUPS, MODELS

        super().__post_init__()
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.updates < 1:
            raise ValueError(f"updates must be >= 1, got {self.updates}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {COMPILE_MODES}, got {self.compile!r}")
        if self.lookup not in LOOKUPS:
            raise ValueError(f"lookup must be one of {LOOKUPS}, got {self.lookup!r}")


class RAFTExtractor(BatchedFlowExtractor):
    """Writes the flow datasets of ``FlowWriter``; see ``RAFTConfig`` for the knobs."""

    name = "raft"
    config_class = RAFTConfig

    def setup(self, threads: int = 0) -> None:
        """Load the weights (fails here, before any video, if they cannot be had)."""
        if self._net is not None:
            return
        import torch

        from multimodal_har.flow.raft import FastRAFT, load_raft

        cfg = self.config
        net = FastRAFT(load_raft(cfg.model, cfg.weights), lookup=cfg.lookup).to(self.device).eval()
        if cfg.channels_last and self.device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
        self._net = net

    def _forward(self, shape: tuple[int, int]):
        """The (possibly compiled) function for one padded input shape."""
        import torch

        from multimodal_har.flow.raft import crop_flow, pad_to_raft, prepare_frames

        if shape in self._fns:
            return self._fns[shape]
        cfg, net, dev = self.config, self._net, self.device
        pad = pad_to_raft(*shape)
        cuda = dev.type == "cuda"
        amp = cuda and cfg.precision != "fp32"
        dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float16
        cl = cfg.channels_last and cuda

        def fn(frames_u8, first, second):
            x = prepare_frames(frames_u8, pad, channels_last=cl)
            with torch.autocast(dev.type, dtype=dtype, enabled=amp):
                flow = net(x, first, second, num_updates=cfg.updates)
            return crop_flow(flow.float(), pad)

        if cuda and cfg.compile != "none":
            fn = torch.compile(fn, mode=cfg.compile, dynamic=False)
        self._fns[shape] = fn
        return fn

    def run_batch(self, frames_u8, first, second):
        """``(F, H, W, 3)`` uint8 on the device, ``(B,)`` pair indices -> ``(B, 2, H, W)`` float32."""
        import torch

        self.setup()
        with torch.inference_mode():
            out = self._forward(tuple(frames_u8.shape[1:3]))(frames_u8, first, second)
            return out.clone() if self.config.compile == "reduce-overhead" else out
