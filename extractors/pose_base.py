"""What every pose backend shares: the config, tracking of people, and the stored entry.

A ``pose3d`` entry holds, for ``T`` sampled frames and ``M`` person slots:

* ``keypoint`` ``(T, M, V, 3)`` float32: 3D joints in metres, right-handed, **y up**, in the
  backend's root-centred frame (MediaPipe: hip centre; mmpose lifters: pelvis), layout
  ``attrs["layout"]``;
* ``score`` ``(T, M, V)`` float32: confidence of each 3D joint (0: nobody / not seen);
* ``keypoint2d`` ``(T, M, V2, 2)`` float32: image joints in pixels of the sampled frames
  (``attrs["width"]`` x ``attrs["height"]``, the size an ``rgb`` entry with the same
  ``short_side`` has), layout ``attrs["layout2d"]``, and ``score2d`` ``(T, M, V2)``;
* ``timestamps`` ``(T,)`` seconds and ``frame_indices`` ``(T,)`` source frame numbers.

Person ``m`` is the same person in every frame (:mod:`multimodal_har.skeleton.tracking`),
most present first; frames where a slot is empty hold zeros and score 0, never an error.
``attrs["person_fraction"]`` is the fraction of frames with at least one person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from multimodal_har.data.store import time_chunks
from multimodal_har.data.video import VideoError, VideoInfo
from multimodal_har.skeleton.tracking import arrange, track_people

from .base import Extractor, FrameSampling


@dataclass
class PoseConfig(FrameSampling):
    """Frame sampling (see ``FrameSampling``) plus how people are kept.

    Attributes:
        max_people: person slots ``M`` per frame (most present people first).
        min_score: joints below this score do not count for a person's box when tracking.
        iou_threshold: least box overlap for a detection to continue a track.
        max_gap: frames a person may be unseen and keep their track.
        max_candidates: people per frame considered for tracking (those with the highest
            mean joint score); crowds beyond it would cost tracking time for slots never kept.
    """

    max_people: int = 2
    min_score: float = 0.3
    iou_threshold: float = 0.3
    max_gap: int = 10
    max_candidates: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {self.max_people}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")
        if self.max_candidates < self.max_people:
            raise ValueError(f"max_candidates ({self.max_candidates}) must be >= max_people ({self.max_people})")


@dataclass
class FramePeople:
    """The people one frame holds (``N`` may be 0).

    Attributes:
        xy: ``(N, V2, 2)`` pixels; score2d: ``(N, V2)``; time: seconds; index: source
        frame number; xyz: ``(N, V, 3)`` metres, y up, and score: ``(N, V)`` from backends
        that give 3D per frame (None from those that lift tracked 2D sequences later).
    """

    xy: np.ndarray
    score2d: np.ndarray
    time: float
    index: int
    xyz: Optional[np.ndarray] = None
    score: Optional[np.ndarray] = None


class PoseExtractor(Extractor):
    """Base of the pose backends: subclasses produce :class:`FramePeople` per frame."""

    modality = "pose3d"
    layout: str
    layout2d: str
    # a backend that reports at most one person per frame and follows them itself (MediaPipe)
    # puts them in slot 0 every frame: splitting its track where it jumps between people
    # would only drop frames
    single_person: bool = False

    def write_entry(self, out: Any, frames: Sequence[FramePeople], *, path, info: VideoInfo,
                    size: tuple[int, int], extra_attrs: Optional[dict] = None,
                    lift: Optional[Callable] = None) -> dict[str, Any]:
        """Track people, then write the ``pose3d`` datasets of one video into ``out``.

        Args:
            size: ``(height, width)`` of the frames the 2D joints refer to.
            lift: for backends that lift tracked 2D sequences to 3D (rather than give 3D per
                frame): ``lift(keypoint2d (T, M, V2, 2), score2d (T, M, V2), size)`` ->
                ``(keypoint (T, M, V, 3), score (T, M, V))``; ``FramePeople.xyz`` is then None.
        """
        from multimodal_har.skeleton import get_layout

        cfg = self.config
        if not frames:
            raise VideoError(f"{path}: no frame could be decoded (the video stream is empty or corrupt)")
        cfg.check_complete(path, len(frames), info)
        V, V2 = get_layout(self.layout).num_joints, get_layout(self.layout2d).num_joints
        frames = [_top(f, cfg.max_candidates) for f in frames]
        if self.single_person:
            index = np.full((len(frames), cfg.max_people), -1, dtype=np.int64)  # (T, M)
            index[:, 0] = [0 if len(f.xy) else -1 for f in frames]
        else:
            index = track_people([f.xy for f in frames], [f.score2d for f in frames],
                                 max_people=cfg.max_people, min_score=cfg.min_score,
                                 iou_threshold=cfg.iou_threshold, max_gap=cfg.max_gap)  # (T, M)
        data = {
            "keypoint2d": arrange([f.xy for f in frames], index, shape=(V2, 2)),
            "score2d": arrange([f.score2d for f in frames], index, shape=(V2,)),
        }
        if lift is None:
            data["keypoint"] = arrange([f.xyz for f in frames], index, shape=(V, 3))
            data["score"] = arrange([f.score for f in frames], index, shape=(V,))
        else:
            data["keypoint"], data["score"] = lift(data["keypoint2d"], data["score2d"], size)
        for name, arr in data.items():  # chunked along time only: a window reads one or two chunks
            out.create_dataset(name, data=arr, chunks=time_chunks(arr) if arr.size else None, compression="gzip",
                               compression_opts=4, shuffle=True)
        out.create_dataset("timestamps", data=np.array([f.time for f in frames], dtype=np.float64))
        out.create_dataset("frame_indices", data=np.array([f.index for f in frames], dtype=np.int64))
        with_person = float((index >= 0).any(axis=1).mean())
        out.attrs.update({"layout": self.layout, "layout2d": self.layout2d, "num_frames": len(frames),
                          "height": size[0], "width": size[1], "max_people": cfg.max_people,
                          "person_fraction": with_person, "coordinates": "metres, y up, root-centred",
                          "source_fps": info.fps, "source_num_frames": info.num_frames,
                          **(extra_attrs or {})})
        return {"frames": len(frames), "person_fraction": with_person}


def _top(f: FramePeople, k: int) -> FramePeople:
    """The ``k`` people of a frame with the highest mean 2D score."""
    if len(f.xy) <= k:
        return f
    keep = np.sort(np.argsort(-f.score2d.mean(axis=1), kind="stable")[:k])
    return FramePeople(xy=f.xy[keep], score2d=f.score2d[keep], time=f.time, index=f.index,
                       xyz=None if f.xyz is None else f.xyz[keep],
                       score=None if f.score is None else f.score[keep])


def no_people(v2: int, v: int, *, time: float, index: int) -> FramePeople:
    """A frame where the model found nobody."""
    return FramePeople(xy=np.zeros((0, v2, 2), np.float32), score2d=np.zeros((0, v2), np.float32),
                       xyz=np.zeros((0, v, 3), np.float32), score=np.zeros((0, v), np.float32),
                       time=time, index=index)
