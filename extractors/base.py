"""The extractor interface: one video in, arrays written into an open HDF5 file out."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Optional

from multimodal_har.config import config_hash
from multimodal_har.data.video import Frame, NoAudioTrack, VideoError, VideoInfo, expected_kept_frames, iter_frames

__all__ = ["Extractor", "FrameSampling", "ModalityMissing", "VideoError"]

# A video that lacks what an extractor needs (e.g. no audio track) is "missing", not "failed".
ModalityMissing = NoAudioTrack


@dataclass
class FrameSampling:
    """Which frames of a video an extractor reads (the fields every frame-based config has).

    Attributes:
        short_side: resize so the shorter side has this many pixels (None: keep the size).
        fps: sample at this rate (None: use ``stride``). Mutually exclusive with ``stride > 1``.
        stride: keep every ``stride``-th frame.
        max_frames: stop after this many kept frames (None: the whole video).
        min_decoded_fraction: fail a video that decodes fewer than this fraction of the
            frames its header announces (truncated files often decode a prefix silently).
    """

    short_side: Optional[int] = 256
    fps: Optional[float] = None
    stride: int = 1
    max_frames: Optional[int] = None
    min_decoded_fraction: float = 0.9

    def __post_init__(self) -> None:
        if self.short_side is not None and self.short_side < 8:
            raise ValueError(f"short_side must be >= 8 or None, got {self.short_side}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.fps is not None and self.stride != 1:
            raise ValueError("give either fps or stride, not both")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or None, got {self.max_frames}")
        if not 0.0 <= self.min_decoded_fraction <= 1.0:
            raise ValueError(f"min_decoded_fraction must be in [0, 1], got {self.min_decoded_fraction}")

    def frames(self, path: Path, threads: int = 0) -> Iterator[Frame]:
        return iter_frames(path, stride=self.stride, fps=self.fps, short_side=self.short_side,
                           max_frames=self.max_frames, threads=threads)

    def expected_frames(self, info: VideoInfo) -> int:
        """How many frames sampling should keep, from the header (0 if unknown)."""
        return expected_kept_frames(info, stride=self.stride, fps=self.fps, max_frames=self.max_frames)

    def check_complete(self, path: Path, kept: int, info: VideoInfo) -> None:
        """Raise ``VideoError`` if far fewer frames decoded than the header announces."""
        expected = self.expected_frames(info)
        limited = self.max_frames is not None and kept >= self.max_frames
        if expected and not limited and kept < self.min_decoded_fraction * expected - 1:
            raise VideoError(f"{path}: decoded {kept} of the ~{expected} frames its header announces "
                             f"(the file is truncated or corrupt)")


class Extractor(abc.ABC):
    """Base class. Subclasses set ``name``, ``modality``, ``version``, ``config_class``.

    ``version`` is part of the config hash: bump it when the algorithm's output changes,
    so that resumed runs redo entries made by the old code.
    """

    name: ClassVar[str]
    modality: ClassVar[str]
    version: ClassVar[int] = 1
    config_class: ClassVar[type]
    # processes the runner starts when not told (None: one per core)
    default_workers: ClassVar[Optional[int]] = None
    # datasets every complete entry holds, one row per time step (checked before a rerun
    # trusts an entry: ``FeatureStore.check_entry``)
    outputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, config: Any = None) -> None:
        if config is None:
            config = self.config_class()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{self.name} extractor needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config

    @property
    def config_hash(self) -> str:
        return config_hash(self.name, self.version, self.config)

    def store_as(self, modality: str) -> "Extractor":
        """Write this extractor's entries under another store modality (``rgb`` frames of depth
        videos as ``depth``); returns ``self``. Runs, resuming and the manifest use the new name.

        Extractors whose config has a ``modality`` field (the flow backends) take it there, so
        it stays part of their config hash as before; the others keep it on the instance.
        """
        import dataclasses

        from multimodal_har.data.store import validate_name

        validate_name("modality", modality)
        if any(f.name == "modality" for f in dataclasses.fields(self.config)):
            self.config = dataclasses.replace(self.config, modality=modality)
        else:
            self.modality = modality  # the instance's name shadows the class's (and is pickled with it)
        return self

    @abc.abstractmethod
    def extract(self, path: Path, out: Any, *, info: VideoInfo, threads: int = 0) -> dict[str, Any]:
        """Read the video at ``path`` and write this modality's datasets into ``out``.

        Args:
            out: an open, writable ``h5py.File`` (see ``FeatureStore.writer``).
            info: the header of the video (from ``probe``).
            threads: decoding threads this call may use (0: FFmpeg decides).

        Returns:
            small statistics for progress reporting, e.g. ``{"frames": 300}``.

        Raises:
            ModalityMissing: the video does not have this modality (recorded as ``missing``).
            VideoError: the video is unreadable (recorded as ``failed``).
        """
