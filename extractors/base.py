"""The extractor interface: one video in, arrays written into an open HDF5 file out."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

from multimodal_har.config import config_hash
from multimodal_har.data.video import NoAudioTrack, VideoError, VideoInfo

__all__ = ["Extractor", "ModalityMissing", "VideoError"]

# A video that lacks what an extractor needs (e.g. no audio track) is "missing", not "failed".
ModalityMissing = NoAudioTrack


class Extractor(abc.ABC):
    """Base class. Subclasses set ``name``, ``modality``, ``version``, ``config_class``.

    ``version`` is part of the config hash: bump it when the algorithm's output changes,
    so that resumed runs redo entries made by the old code.
    """

    name: ClassVar[str]
    modality: ClassVar[str]
    version: ClassVar[int] = 1
    config_class: ClassVar[type]

    def __init__(self, *, config: Any = None) -> None:
        if config is None:
            config = self.config_class()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{self.name} extractor needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config

    @property
    def config_hash(self) -> str:
        return config_hash(self.name, self.version, self.config)

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
