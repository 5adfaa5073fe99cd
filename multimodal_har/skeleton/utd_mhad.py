"""UTD-MHAD: Kinect v1 skeletons, wrist / thigh inertial signals and depth video of 27 actions.

Chen, Jafari, Kehtarnavaz, "UTD-MHAD: A Multimodal Dataset for Human Action Recognition
Utilizing a Depth Camera and a Wearable Inertial Sensor", ICIP 2015. 8 subjects x 4 trials x
27 actions (861 sequences in the full release), recorded at once by a Kinect v1 and a 6-axis
inertial sensor on the right wrist (actions 1-21) or the right thigh (22-27).

Files (``ROOT/{Skeleton,Inertial,Depth}/aA_sS_tT_<modality>.mat``, read with
``scipy.io.loadmat``):

* ``d_skel`` ``(20, 3, T)`` float64 metres, joints in UTD's own order
  (:data:`UTD_MHAD_ORDER`, checked on the data by ``tests/multimodal_har/skeleton/test_utd_mhad.py``),
  read into layout ``kinect_v1_20`` with ``M = 1`` and score 1;
* ``d_iner`` ``(N, 6)``: acceleration x, y, z (g) then angular velocity x, y, z (deg/s), 50 Hz;
* ``d_depth`` ``(240, 320, T)`` uint16 millimetres (0: no reading), as many frames as the skeleton.

The timeline. Neither stream is timestamped and the Kinect ran below its nominal 30 fps, so
both are spread over the inertial recording's duration ``D = N / 50`` s: inertial sample ``n``
is at ``n / 50`` s, skeleton (and depth) frame ``i`` at ``i * D / T`` s. Without an inertial
file the skeleton falls back to the nominal 30 fps (``SAMPLE.timeline == "nominal_30fps"``).

Protocol: ``cross_subject`` (:mod:`.splits`), odd subjects 1, 3, 5, 7 train, even 2, 4, 6, 8 test.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np

from .datasets import SkeletonSequence, _split_of
from .layouts import KINECT_V1_20

UTD_MHAD_ACTIONS = ("swipe_left", "swipe_right", "wave", "clap", "throw", "arm_cross", "basketball_shoot",
                    "draw_x", "draw_circle_cw", "draw_circle_ccw", "draw_triangle", "bowling", "boxing",
                    "baseball_swing", "tennis_swing", "arm_curl", "tennis_serve", "push", "knock", "catch",
                    "pickup_throw", "jog", "walk", "sit_to_stand", "stand_to_sit", "lunge", "squat")

# The kinect_v1_20 joint names in the order of UTD's d_skel rows (UTD's HipCenter / Spine /
# ShoulderCenter are spine_base / spine_mid / spine_shoulder here, see layouts.py).
UTD_MHAD_ORDER = ("head", "spine_shoulder", "spine_mid", "spine_base",
                  "shoulder_left", "elbow_left", "wrist_left", "hand_left",
                  "shoulder_right", "elbow_right", "wrist_right", "hand_right",
                  "hip_left", "knee_left", "ankle_left", "foot_left",
                  "hip_right", "knee_right", "ankle_right", "foot_right")

MODALITIES = ("skeleton", "inertial", "depth")
INERTIAL_RATE_HZ = 50.0
NOMINAL_KINECT_FPS = 30.0
INERTIAL_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
INERTIAL_UNITS = ("g", "g", "g", "deg/s", "deg/s", "deg/s")
WRIST_ACTIONS = range(1, 22)  # the sensor is on the right wrist for actions 1-21, the right thigh after

# folder, file suffix and MATLAB variable of each modality
_FILES = {"skeleton": ("Skeleton", "skeleton", "d_skel"),
          "inertial": ("Inertial", "inertial", "d_iner"),
          "depth": ("Depth", "depth", "d_depth")}
_NAME = re.compile(r"a(\d+)_s(\d+)_t(\d+)_(skeleton|inertial|depth)\.mat$")


class UTDFileError(ValueError):
    """A UTD-MHAD file is missing, unreadable or holds an unexpected array; names the file."""


def _load(path: Path, variable: str) -> np.ndarray:
    """``variable`` of a .mat file; any failure becomes a :class:`UTDFileError` naming the file."""
    if not path.is_file():
        raise UTDFileError(f"{path}: no such file")
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path), variable_names=[variable])
    except Exception as e:  # scipy raises ValueError, TypeError, OSError... for a bad file
        raise UTDFileError(f"{path}: not a readable MATLAB .mat file ({type(e).__name__}: {e})") from None
    if variable not in mat:
        raise UTDFileError(f"{path}: has no variable {variable!r}")
    return mat[variable]


def load_skeleton(path: str | Path) -> np.ndarray:
    """``d_skel`` of a skeleton file as ``(T, V, 3)`` float32 in ``kinect_v1_20`` order."""
    path = Path(path)
    x = _load(path, "d_skel")
    if x.ndim != 3 or x.shape[:2] != (20, 3) or x.shape[2] == 0 or not np.isfinite(x).all():
        raise UTDFileError(f"{path}: expected d_skel of shape (20, 3, T>0), finite; got {x.shape}")
    x = np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)  # (20, 3, T) -> (T, 20, 3)
    return KINECT_V1_20.reorder(x, UTD_MHAD_ORDER)


def load_inertial(path: str | Path) -> np.ndarray:
    """``d_iner`` of an inertial file as ``(N, 6)`` float32 (accel in g, gyro in deg/s)."""
    path = Path(path)
    x = _load(path, "d_iner")
    if x.ndim != 2 or x.shape[1] != 6 or x.shape[0] < 2 or not np.isfinite(x).all():
        raise UTDFileError(f"{path}: expected d_iner of shape (N>1, 6), finite; got {x.shape}")
    return x.astype(np.float32)


def load_depth(path: str | Path) -> np.ndarray:
    """``d_depth`` of a depth file as ``(T, H, W)`` uint16 millimetres (0: no reading)."""
    path = Path(path)
    x = _load(path, "d_depth")
    if x.ndim != 3 or x.shape[2] == 0 or x.dtype.kind not in "ui":
        raise UTDFileError(f"{path}: expected d_depth of shape (H, W, T>0), integer; got {x.shape} {x.dtype}")
    return np.ascontiguousarray(x.transpose(2, 0, 1)).astype(np.uint16, copy=False)  # (H, W, T) -> (T, H, W)


def frame_times(num_frames: int, duration: float) -> np.ndarray:
    """Frame ``i`` of ``num_frames`` spread over ``duration`` seconds: ``i * duration / num_frames``."""
    return np.arange(num_frames, dtype=np.float64) * (duration / num_frames)


@dataclass
class UTDSample:
    """One UTD-MHAD sequence (one action, subject and trial).

    Attributes:
        id: ``a1_s1_t1``.
        label, label_index: the action's name and its 0-based index in :data:`UTD_MHAD_ACTIONS`.
        subject, trial: 1-based, as in the file names.
        split: ``"train"``, ``"test"`` or ``None`` (no protocol).
        duration: seconds the sequence spans (``N / 50``, or ``T / 30`` without inertial data).
        timeline: ``"inertial"`` (the duration comes from the inertial samples) or ``"nominal_30fps"``.
        skeleton: a ``kinect_v1_20`` :class:`SkeletonSequence` (``M = 1``, score 1), or None
            when not requested.
        skeleton_timestamps: ``(T,)`` seconds, ``i * duration / T``.
        inertial: ``(N, 6)`` float32 or None; ``inertial_timestamps``: ``(N,)``, ``n / 50``.
        paths: modality -> file, for every file of the sample that exists.
    """

    id: str
    label: str
    label_index: int
    subject: int
    trial: int
    split: Optional[str]
    duration: float
    timeline: str
    skeleton: Optional[SkeletonSequence] = None
    skeleton_timestamps: Optional[np.ndarray] = None
    inertial: Optional[np.ndarray] = None
    inertial_timestamps: Optional[np.ndarray] = None
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def action(self) -> int:
        return self.label_index + 1

    def load_depth(self) -> np.ndarray:
        """The depth frames, ``(T, 240, 320)`` uint16 mm, read now (they are ~7 MB a sample)."""
        if "depth" not in self.paths:
            raise UTDFileError(f"sample {self.id} has no depth file (Depth/{self.id}_depth.mat)")
        return load_depth(self.paths["depth"])

    def depth_timestamps(self, num_frames: int) -> np.ndarray:
        """``(num_frames,)`` times of the depth frames: the skeleton's timeline."""
        return frame_times(num_frames, self.duration)


def _as_set(values: Optional[Iterable], what: str, names: Sequence[str] = ()) -> Optional[set[int]]:
    if values is None:
        return None
    if isinstance(values, (int, str)):
        values = [values]
    out = set()
    for v in values:
        if isinstance(v, str) and names:
            if v not in names:
                raise ValueError(f"unknown {what} {v!r}; valid choices: {', '.join(names)}")
            v = names.index(v) + 1
        out.add(int(v))
    return out


def scan_utd_mhad(root: str | Path, *, modalities: Sequence[str] = MODALITIES,
                  subjects: Optional[Iterable[int]] = None, actions: Optional[Iterable[int | str]] = None,
                  trials: Optional[Iterable[int]] = None) -> list[tuple[str, int, int, int, dict[str, Path]]]:
    """The sequences under ``root``: ``(id, action, subject, trial, {modality: path})`` sorted by
    (action, subject, trial), listing the files of every modality that exist (not only ``modalities``;
    a sequence appears when it has a file of any of ``modalities``)."""
    root = Path(root)
    modalities = check_modalities(modalities)
    if not root.is_dir():
        raise NotADirectoryError(f"UTD-MHAD root {root} is not a directory")
    keep_s, keep_t = _as_set(subjects, "subject"), _as_set(trials, "trial")
    keep_a = _as_set(actions, "action", UTD_MHAD_ACTIONS)
    found: dict[tuple[int, int, int], dict[str, Path]] = {}
    for modality, (folder, _, _) in _FILES.items():
        d = root / folder
        if not d.is_dir():
            continue
        for p in d.iterdir():
            m = _NAME.match(p.name)
            if m is None or m.group(4) != modality:
                continue
            a, s, t = (int(m.group(k)) for k in (1, 2, 3))
            if (keep_a and a not in keep_a) or (keep_s and s not in keep_s) or (keep_t and t not in keep_t):
                continue
            found.setdefault((a, s, t), {})[modality] = p
    out = []
    for (a, s, t), paths in sorted(found.items()):
        if not 1 <= a <= len(UTD_MHAD_ACTIONS):
            raise ValueError(f"{next(iter(paths.values()))}: action {a} is not in 1..{len(UTD_MHAD_ACTIONS)}")
        if any(m in paths for m in modalities):
            out.append((f"a{a}_s{s}_t{t}", a, s, t, paths))
    if not out:
        raise FileNotFoundError(f"no UTD-MHAD files ({'/'.join(_FILES[m][0] for m in modalities)}"
                                f"/aA_sS_tT_<modality>.mat) under {root}")
    return out


def check_modalities(modalities: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(modalities, str):
        modalities = [m for m in modalities.split(",") if m]
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities:
        raise ValueError(f"unknown UTD-MHAD modalities {unknown}; valid choices: {', '.join(MODALITIES)}")
    return tuple(dict.fromkeys(modalities))


def read_utd_mhad(root: str | Path, *, split: Optional[str] = "cross_subject",
                  modalities: Sequence[str] = MODALITIES, subjects: Optional[Iterable[int]] = None,
                  actions: Optional[Iterable[int | str]] = None, trials: Optional[Iterable[int]] = None,
                  limit: Optional[int] = None, on_error: str = "raise") -> Iterator[UTDSample]:
    """UTD-MHAD sequences with the requested modalities, on one timeline (see the module docstring).

    Args:
        root: the folder holding ``Skeleton/``, ``Inertial/`` and ``Depth/``.
        split: a protocol of ``utd_mhad`` (``cross_subject``: subjects 1,3,5,7 train) or ``None``.
        modalities: any of ``skeleton``, ``inertial``, ``depth`` (depth is only located here;
            :meth:`UTDSample.load_depth` reads it).
        subjects, actions, trials: keep only these (actions by number 1..27 or name).
        limit: stop after this many samples.
        on_error: ``"raise"``: a missing or unreadable file of a requested modality raises
            :class:`UTDFileError` naming it; ``"warn"``: the sample is skipped with a warning.
    """
    if on_error not in ("raise", "warn"):
        raise ValueError(f"on_error must be 'raise' or 'warn', got {on_error!r}")
    modalities = check_modalities(modalities)
    split_of = _split_of("utd_mhad", split)
    n = 0
    for vid, a, s, t, paths in scan_utd_mhad(root, modalities=modalities, subjects=subjects,
                                             actions=actions, trials=trials):
        if limit is not None and n >= limit:
            return
        try:
            sample = read_sample(Path(root), vid, a, s, t, paths, modalities, split_of(subject=s))
        except UTDFileError as e:
            if on_error == "raise":
                raise
            warnings.warn(f"skipping UTD-MHAD sample {vid}: {e}", stacklevel=2)
            continue
        n += 1
        yield sample


def expected_path(root: str | Path, sample_id: str, modality: str) -> Path:
    """Where the file of ``modality`` for sample ``a1_s1_t1`` is under ``root``."""
    folder, suffix, _ = _FILES[modality]
    return Path(root) / folder / f"{sample_id}_{suffix}.mat"


def read_sample(root: Path, vid: str, a: int, s: int, t: int, paths: dict[str, Path],
                modalities: Sequence[str], split: Optional[str]) -> UTDSample:
    """One sample from a row of :func:`scan_utd_mhad`, with the ``modalities`` read (depth: located).

    The inertial file sets the timeline even when inertial data is not requested (an absent or
    unreadable one then falls back to the nominal 30 fps). Raises :class:`UTDFileError`.
    """
    for m in modalities:
        if m not in paths:
            raise UTDFileError(f"{expected_path(root, vid, m)}: no such file (sample {vid} "
                               f"has {', '.join(sorted(paths))} only)")
    sample = UTDSample(id=vid, label=UTD_MHAD_ACTIONS[a - 1], label_index=a - 1, subject=s, trial=t,
                       split=split, duration=0.0, timeline="inertial", paths=dict(paths))
    inertial = None
    if "inertial" in modalities or "inertial" in paths:
        try:
            inertial = load_inertial(paths["inertial"]) if "inertial" in paths else None
        except UTDFileError:
            if "inertial" in modalities:
                raise
    if inertial is not None:
        sample.duration = len(inertial) / INERTIAL_RATE_HZ
        if "inertial" in modalities:
            sample.inertial = inertial
            sample.inertial_timestamps = np.arange(len(inertial), dtype=np.float64) / INERTIAL_RATE_HZ
    if "skeleton" in modalities:
        x = load_skeleton(paths["skeleton"])  # (T, V, 3)
        if inertial is None:
            sample.duration, sample.timeline = len(x) / NOMINAL_KINECT_FPS, "nominal_30fps"
        sample.skeleton = SkeletonSequence(id=vid, label=sample.label, label_index=a - 1, subject=s,
                                           keypoint=x[:, None], score=np.ones((len(x), 1, x.shape[1]), np.float32),
                                           split=split, meta={"trial": t})
        sample.skeleton_timestamps = frame_times(len(x), sample.duration)
    elif inertial is None:  # depth only, no inertial file: the nominal Kinect rate, from the depth itself
        if "depth" not in paths:
            raise UTDFileError(f"{expected_path(root, vid, 'depth')}: no such file (and no inertial file "
                               f"to time sample {vid} by)")
        sample.duration, sample.timeline = len(load_depth(paths["depth"])) / NOMINAL_KINECT_FPS, "nominal_30fps"
    return sample


__all__ = ["UTD_MHAD_ACTIONS", "UTD_MHAD_ORDER", "MODALITIES", "INERTIAL_RATE_HZ", "INERTIAL_CHANNELS",
           "INERTIAL_UNITS", "UTDFileError", "UTDSample", "read_utd_mhad", "scan_utd_mhad", "read_sample", "expected_path",
           "load_skeleton", "load_inertial", "load_depth", "frame_times"]
