"""What every optical-flow backend shares: sampling, dense or sparse (TSN) pair plans,
decoding into runs of consecutive frames, storage (``multimodal_har.flow.codec``).

A backend implements :meth:`FlowExtractor.flow_chunk`: the flow of each consecutive pair of a
``(N, H, W, 3)`` chunk of frames. Learned backends also batch across videos
(``extractors/raft.py`` through ``multimodal_har.flow.pipeline``).
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from multimodal_har.config import NOT_HASHED
from multimodal_har.data.video import VideoError, VideoInfo, resized_shape
from multimodal_har.flow.codec import DEFAULT_BOUND, FORMATS, FlowWriter
from multimodal_har.flow.pairs import needed_frames, num_pairs, plan_runs

from .base import Extractor, FrameSampling, ModalityMissing


@dataclass
class FlowConfig(FrameSampling):
    """Sampling (see ``FrameSampling``; a pair is two consecutive *kept* frames), pair plan and
    storage of a flow extraction (every backend has these fields).

    Attributes:
        segments: ``None`` computes every pair (dense). ``K`` computes only the pairs a TSN
            sampler reads at test time: ``snippet_length`` consecutive pairs at the centre of
            each of ``K`` equal segments.
        snippet_length: ``L``, pairs per segment (the flow stack of two-stream networks, 5 in TSN).
        format: ``jpeg`` (TSN quantisation, default), ``uint8`` or ``float16``.
        bound: quantisation bound in pixels (TSN: 20).
        jpeg_quality: 1..100 for ``jpeg`` (``denseflow`` writes 95).
        modality: the store modality to write (e.g. ``flow_tvl1`` to keep several backends).
    """

    segments: Optional[int] = None
    snippet_length: int = 5
    format: str = "jpeg"
    bound: float = DEFAULT_BOUND
    jpeg_quality: int = 95
    modality: str = "flow"

    def __post_init__(self) -> None:
        from multimodal_har.data.store import validate_name

        super().__post_init__()
        if self.max_frames is not None and self.max_frames < 2:
            raise ValueError(f"max_frames must be >= 2 (a pair) or None, got {self.max_frames}")
        if self.segments is not None and self.segments < 1:
            raise ValueError(f"segments must be >= 1 or None (dense), got {self.segments}")
        if self.snippet_length < 1:
            raise ValueError(f"snippet_length must be >= 1, got {self.snippet_length}")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")
        if self.bound <= 0:
            raise ValueError(f"bound must be > 0, got {self.bound}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        validate_name("modality", self.modality)


@dataclass
class Chunk:
    """Consecutive kept frames of one video: ``images`` ``(N, H, W, 3)`` uint8, their
    ``positions`` among kept frames, source ``frame_indices`` and ``times`` (s)."""

    positions: np.ndarray
    frame_indices: np.ndarray
    times: np.ndarray
    images: np.ndarray


def iter_chunks(path: Path, cfg: FlowConfig, info: VideoInfo, *, chunk: int, threads: int = 0
                ) -> Iterator[Chunk]:
    """Decode ``path`` into chunks of at most ``chunk`` consecutive needed frames.

    Consecutive chunks of one run share a frame (the last of one is the first of the next), so
    the pairs of all chunks are exactly the planned pairs, each once. Frames no pair needs
    (sparse plans) are decoded but never converted or resized.

    Raises:
        ModalityMissing: fewer than two frames (no pair).
        VideoError: unreadable or truncated video.
    """
    needed = None
    if cfg.segments is not None:
        expected = cfg.expected_frames(info)
        if expected <= 0:  # no frame count in the header: count by decoding once
            expected = sum(1 for _ in cfg.frames(path, threads))
        needed = needed_frames(plan_runs(expected, segments=cfg.segments, length=cfg.snippet_length))
    buf: list = []
    kept = 0

    def emit():
        return Chunk(positions=np.array([p for p, _ in buf]), frame_indices=np.array([f.index for _, f in buf]),
                     times=np.array([f.time for _, f in buf]), images=np.stack([f.image for _, f in buf]))

    for pos, fr in enumerate(cfg.frames(path, threads)):
        kept = pos + 1
        if needed is not None and pos not in needed:
            continue
        if buf and buf[-1][0] != pos - 1:  # a new run
            if len(buf) >= 2:
                yield emit()
            buf = []
        buf.append((pos, fr))
        if len(buf) >= chunk:
            yield emit()
            buf = buf[-1:]
    if len(buf) >= 2:
        yield emit()
    cfg.check_complete(path, kept, info)
    if kept < 2:
        raise ModalityMissing(f"{path}: {kept} frame{'s' * (kept != 1)} decoded: no frame pair, so no flow")


def planned_pairs(cfg: FlowConfig, info: VideoInfo) -> int:
    """Pairs a video will give, from its header (for disk estimates)."""
    n = cfg.expected_frames(info)
    return num_pairs(plan_runs(n, segments=cfg.segments, length=cfg.snippet_length))


class FlowExtractor(Extractor):
    """Base of the flow backends. Writes the datasets of :class:`~multimodal_har.flow.codec.FlowWriter`."""

    version = 1
    config_class = FlowConfig
    unit = "pairs"
    chunk_frames = 16  # frames per chunk in the per-video path

    @property
    def modality(self) -> str:  # type: ignore[override]
        return self.config.modality

    @abc.abstractmethod
    def flow_chunk(self, images: np.ndarray) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 RGB -> ``(N - 1, 2, H, W)`` float32 flow (pixels, x then y)
        from frame ``k`` to frame ``k + 1``."""

    def iter_chunks(self, path: Path, info: VideoInfo, *, chunk: int, threads: int = 0) -> Iterator[Chunk]:
        """This extractor's frames of ``path`` (see :func:`iter_chunks`)."""
        return iter_chunks(path, self.config, info, chunk=chunk, threads=threads)

    def setup(self, threads: int = 0) -> None:
        """Called once per process before the first video (load models, set thread counts)."""

    def new_writer(self, out: Any, height: int, width: int, info: VideoInfo) -> FlowWriter:
        cfg = self.config
        out.attrs.update({"backend": self.name, "source_fps": info.fps,
                          "source_num_frames": info.num_frames,
                          "pair_mode": "dense" if cfg.segments is None else "tsn",
                          "segments": cfg.segments or 0, "snippet_length": cfg.snippet_length})
        return FlowWriter(out, height=height, width=width, format=cfg.format, bound=cfg.bound,
                          jpeg_quality=cfg.jpeg_quality)

    def estimate_disk(self, paths: list[Path], sample: int = 200) -> str:
        """A line with the pairs and bytes this run will write, printed first. Reads the headers
        of at most ``sample`` videos (evenly spread) and scales up."""
        from multimodal_har.data.video import probe
        from multimodal_har.flow.codec import bytes_per_pair_estimate

        cfg, pairs, size, unknown = self.config, 0, 0.0, 0
        picked = paths[::max(1, -(-len(paths) // sample))]
        for p in picked:
            try:
                info = probe(p)
            except VideoError:
                continue
            n = planned_pairs(cfg, info)
            h, w = resized_shape(info.height, info.width, cfg.short_side)
            pairs += n
            size += n * bytes_per_pair_estimate(cfg.format, h, w)
            unknown += info.num_frames <= 0
        scale = len(paths) / max(1, len(picked))
        return (f"{self.modality}: about {pairs * scale:,.0f} frame pairs to compute, about "
                f"{size * scale / 1e9:.2f} GB on disk as {cfg.format}"
                + (f" (from {len(picked)} of {len(paths)} videos)" if scale > 1 else "")
                + (f" ({unknown} videos without a frame count not included)" if unknown else ""))

    def extract(self, path: Path, out: Any, *, info: VideoInfo, threads: int = 0) -> dict[str, Any]:
        self.setup(threads)
        writer = None
        for ch in self.iter_chunks(path, info, chunk=self.chunk_frames, threads=threads):
            if writer is None:
                writer = self.new_writer(out, *ch.images.shape[1:3], info)
            flows = self.flow_chunk(ch.images)
            for k, f in enumerate(flows):
                writer.add(writer.encode(f), (ch.frame_indices[k], ch.frame_indices[k + 1]), ch.times[k])
        writer.flush()
        return {"frames": writer.n}


PRECISIONS = ("bf16", "fp16", "fp32")


@dataclass
class BatchedFlowConfig(FlowConfig):
    """What learned backends add (see ``FlowConfig`` for the rest).

    Attributes:
        batch_frames: frames per batch (pairs per batch: up to one less).
        precision: autocast dtype on CUDA (``fp32`` disables it; the CPU always runs fp32).
        device: ``auto`` (``cuda:$LOCAL_RANK`` if available, else ``cpu``), or a torch device.
        jpeg_encoder: where the ``jpeg`` format is encoded: ``cpu`` (libjpeg in threads, default)
            or ``gpu`` (nvJPEG through nvImageCodec, the extra ``gpu-jpeg-cu13``; only the bytes
            leave the GPU; experimental, not faster where measured: ``multimodal_har.flow.gpu_jpeg``).
            Not part of the config hash: both store the same format, decoded alike.
    """

    batch_frames: int = 64
    precision: str = "bf16"
    device: str = "auto"
    jpeg_encoder: str = field(default="cpu", metadata=NOT_HASHED)  # the same stored format either way

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_frames < 2:
            raise ValueError(f"batch_frames must be >= 2, got {self.batch_frames}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        from multimodal_har.flow.gpu_jpeg import ENCODERS

        if self.jpeg_encoder not in ENCODERS:
            raise ValueError(f"jpeg_encoder must be one of {ENCODERS}, got {self.jpeg_encoder!r}")


class BatchedFlowExtractor(FlowExtractor):
    """A learned backend: a model on ``config.device`` that computes many pairs per call.

    Subclasses implement ``setup`` (load the model into ``self._net``) and ``run_batch``. The
    runner calls :meth:`run_folder`, which batches pairs across videos
    (``multimodal_har.flow.pipeline``); :meth:`flow_chunk` serves the per-video path.
    """

    batched = True  # the runner uses run_folder

    def __init__(self, *, config: Any = None) -> None:
        super().__init__(config=config)
        self._net = None
        self._fns: dict = {}

    def __getstate__(self):  # decoding processes get the config, not the model
        state = self.__dict__.copy()
        state.update(_net=None, _fns={})
        return state

    @property
    def device(self):
        from multimodal_har.devices import resolve_device

        return resolve_device(self.config.device)

    @abc.abstractmethod
    def run_batch(self, frames_u8, first, second):
        """``(F, H, W, 3)`` uint8 RGB on the device and ``(B,)`` indices of the first and second
        frame of each pair -> ``(B, 2, H, W)`` float32 flow on the device."""

    def flow_chunk(self, images: np.ndarray) -> np.ndarray:
        import torch

        frames = torch.from_numpy(images).to(self.device)
        idx = torch.arange(len(images) - 1, device=self.device)
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


class OpenCVFlow(FlowExtractor):
    """A classical OpenCV backend: greyscale frames, one pair at a time, ``cv2`` threads set
    per process (the runner runs one process per core)."""

    def setup(self, threads: int = 0) -> None:
        cv2 = import_cv2(self.name)
        cv2.setNumThreads(max(1, threads))
        if getattr(self, "_algo", None) is None:
            self._algo = self.make_algorithm(cv2)

    @abc.abstractmethod
    def make_algorithm(self, cv2):
        """The OpenCV algorithm: an object with ``calc(prev_gray, next_gray, None) -> (H, W, 2)``."""

    def flow_chunk(self, images: np.ndarray) -> np.ndarray:
        cv2 = import_cv2(self.name)
        if getattr(self, "_algo", None) is None:
            self.setup()
        gray = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in images]
        return np.stack([self._algo.calc(a, b, None).transpose(2, 0, 1) for a, b in zip(gray, gray[1:])])

    def __getstate__(self):  # OpenCV algorithm objects do not pickle; rebuilt in each worker
        state = self.__dict__.copy()
        state.pop("_algo", None)
        return state


def import_cv2(backend: str, need_contrib: bool = False):
    try:
        import cv2
    except ImportError:
        raise ImportError(f"the {backend!r} flow backend needs OpenCV: pip install 'multimodal-har[opencv]' "
                          "(opencv-contrib-python; do not install a second OpenCV distribution beside it)") from None
    if need_contrib and not hasattr(cv2, "optflow"):
        raise ImportError(f"the {backend!r} flow backend needs OpenCV's contrib modules (cv2.optflow), "
                          f"but this OpenCV ({cv2.__version__}) has none: pip uninstall opencv-python "
                          "opencv-python-headless, then pip install 'multimodal-har[opencv]'")
    return cv2
