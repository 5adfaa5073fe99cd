"""3D pose on the CPU with MediaPipe Pose (BlazePose GHUM 3D; Bazarevsky et al., 2020,
"BlazePose: On-device Real-time Body Pose tracking", arXiv:2006.10204).

Uses the legacy ``mediapipe.solutions.pose`` API of mediapipe 0.10.21, the last release
that has it and that bundles the weights of ``model_complexity=1`` in its wheel, so it runs
offline (``0`` and ``2`` download their models on first use). Install with the
``mediapipe`` extra (it needs numpy < 2 and protobuf < 5).

Per frame it gives one person's 33 landmarks: world landmarks in metres centred between
the hips (stored with y and z flipped so y points up, see ``extractors.pose_base``), image
landmarks (stored in pixels) and a visibility in [0, 1] used as the score of both. The
solution tracks that person from frame to frame (video mode, landmark smoothing). It finds
at most one person, so slot 0 holds them in every frame where it found someone (where it
jumps from one person to another, so does slot 0) and further slots stay empty.

Runs one process per core through the extraction runner (one video per process); the
scaling from one core to all is measured by ``benchmarks/pose_throughput.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multimodal_har.data.video import VideoInfo

from .pose_base import FramePeople, PoseConfig, PoseExtractor, no_people

V = 33
# MediaPipe world landmarks are camera-like: x right, y down, z away from the camera (all
# right-handed). Flipping y and z keeps the frame right-handed with y up, z towards the camera.
_FLIP = np.array([1.0, -1.0, -1.0], dtype=np.float32)


@dataclass
class MediaPipeConfig(PoseConfig):
    """MediaPipe Pose options (and ``PoseConfig``'s sampling and people fields).

    Attributes:
        model_complexity: 1 is bundled (offline); 0 and 2 download on first use.
        min_detection_confidence: person detector threshold.
        min_tracking_confidence: below it the detector runs again on the next frame.
        smooth_landmarks: MediaPipe's temporal filter over landmarks (video mode).
    """

    model_complexity: int = 1
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    smooth_landmarks: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model_complexity not in (0, 1, 2):
            raise ValueError(f"model_complexity must be 0, 1 or 2, got {self.model_complexity}")


def import_mediapipe():
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logs every graph start
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe as mp
    except ImportError as e:
        raise ImportError("the mediapipe pose backend needs mediapipe 0.10.21: "
                          "pip install -e '.[mediapipe]' (numpy < 2)") from e
    if not hasattr(mp, "solutions"):
        raise ImportError(f"mediapipe {mp.__version__} has no legacy `solutions` API; "
                          "install mediapipe==0.10.21 (pip install -e '.[mediapipe]')")
    return mp


class MediaPipeExtractor(PoseExtractor):
    name = "mediapipe"
    version = 1
    config_class = MediaPipeConfig
    layout = "mediapipe_33"
    layout2d = "mediapipe_33"
    single_person = True

    def extract(self, path: Path, out: Any, *, info: VideoInfo, threads: int = 0) -> dict[str, Any]:
        mp = import_mediapipe()
        cfg = self.config
        try:
            pose = mp.solutions.pose.Pose(
                static_image_mode=False, model_complexity=cfg.model_complexity,
                smooth_landmarks=cfg.smooth_landmarks, enable_segmentation=False,
                min_detection_confidence=cfg.min_detection_confidence,
                min_tracking_confidence=cfg.min_tracking_confidence)
        except Exception as e:  # complexity 0 / 2 fetch their model from the internet
            raise RuntimeError(
                f"MediaPipe Pose(model_complexity={cfg.model_complexity}) could not be built ({e}). "
                "Only model_complexity=1 ships with the mediapipe wheel; the others download "
                "pose_landmark_lite/heavy.tflite on first use, which needs internet access once.") from e
        frames: list[FramePeople] = []
        size = (0, 0)
        with pose:
            for fr in cfg.frames(path, threads):
                size = fr.image.shape[:2]
                res = pose.process(fr.image)  # (H, W, 3) uint8 RGB
                if res.pose_world_landmarks is None or res.pose_landmarks is None:
                    frames.append(no_people(V, V, time=fr.time, index=fr.index))
                    continue
                world = np.array([[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark], np.float32)
                image = np.array([[p.x, p.y, p.visibility] for p in res.pose_landmarks.landmark], np.float32)
                h, w = size
                xy = image[:, :2] * np.array([w, h], np.float32)  # normalised -> pixels
                vis = np.clip(image[:, 2], 0.0, 1.0)
                frames.append(FramePeople(xy=xy[None], score2d=vis[None], xyz=(world * _FLIP)[None],
                                          score=vis[None], time=fr.time, index=fr.index))
        return self.write_entry(out, frames, path=path, info=info, size=size,
                                extra_attrs={"backend": "mediapipe", "model_complexity": cfg.model_complexity})
