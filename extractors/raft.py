"""RAFT optical flow (torchvision weights), batched across videos on the GPU.

Teed & Deng, "RAFT: Recurrent All-Pairs Field Transforms for Optical Flow", ECCV 2020.
The model is torchvision's ``raft_large`` / ``raft_small``; ``multimodal_har.flow.raft`` runs
it per frame batch, ``multimodal_har.flow.pipeline`` keeps the GPU fed. Without CUDA the same
pipeline runs on the CPU (slowly; for tests and small jobs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .flow_base import FlowConfig, FlowExtractor

PRECISIONS = ("bf16", "fp16", "fp32")
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")


@dataclass
class RAFTConfig(FlowConfig):
    """Attributes:
        model: ``raft_large`` or ``raft_small``.
        weights: torchvision weights name (``DEFAULT`` = ``C_T_SKHT_V2`` for large, ``C_T_V2``
            for small; downloaded to torch's cache on first use), a checkpoint file, or ``none``
            (random weights: only for testing the pipeline).
        updates: refinement iterations (RAFT's default 12).
        batch_frames: frames per GPU batch (pairs per batch: up to one less).
        precision: autocast dtype on CUDA (``fp32`` disables it; the CPU always runs fp32).
        compile: ``torch.compile`` mode on CUDA (``reduce-overhead`` captures CUDA graphs).
        lookup: correlation lookup, ``gather`` or ``grid_sample`` (torchvision's).
        channels_last: run convolutions in NHWC.
        device: ``auto`` (``cuda:$LOCAL_RANK`` if available, else ``cpu``), or a torch device.
    """

    model: str = "raft_large"
    weights: Optional[str] = "DEFAULT"
    updates: int = 12
    batch_frames: int = 64
    precision: str = "bf16"
    compile: str = "reduce-overhead"
    lookup: str = "gather"
    channels_last: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        from multimodal_har.flow.raft import LOOKUPS, MODELS

        super().__post_init__()
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.updates < 1:
            raise ValueError(f"updates must be >= 1, got {self.updates}")
        if self.batch_frames < 2:
            raise ValueError(f"batch_frames must be >= 2, got {self.batch_frames}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {COMPILE_MODES}, got {self.compile!r}")
        if self.lookup not in LOOKUPS:
            raise ValueError(f"lookup must be one of {LOOKUPS}, got {self.lookup!r}")


def resolve_device(name: str):
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        return torch.device("cpu")
    return torch.device(name)


class RAFTExtractor(FlowExtractor):
    """Writes the flow datasets of ``FlowWriter``; see ``RAFTConfig`` for the knobs."""

    name = "raft"
    config_class = RAFTConfig
    batched = True  # the runner uses run_folder (cross-video batches)

    def __init__(self, *, config: Any = None) -> None:
        super().__init__(config=config)
        self._net = None
        self._fns: dict = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_net=None, _fns={})
        return state

    @property
    def device(self):
        return resolve_device(self.config.device)

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

    def flow_chunk(self, images: np.ndarray) -> np.ndarray:
        import torch

        frames = torch.from_numpy(images).to(self.device)
        n = len(images)
        idx = torch.arange(n - 1, device=self.device)
        return self.run_batch(frames, idx, idx + 1).cpu().numpy()

    def run_folder(self, jobs, store, record, *, workers: int) -> dict:
        """Cross-video batched extraction (see ``multimodal_har.flow.pipeline``)."""
        from multimodal_har.flow.pipeline import FlowPipeline

        self.setup()
        pipe = FlowPipeline(self, store, batch_frames=self.config.batch_frames, workers=workers,
                            encode_threads=min(8, os.cpu_count() or 1))
        try:
            pipe.run(jobs, record)
        finally:
            pipe.close()
            self.last_stats = pipe.stats  # where the time went (benchmarks/flow_throughput.py)
        return pipe.stats
