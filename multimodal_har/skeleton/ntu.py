"""NTU RGB+D / NTU RGB+D 120 ``.skeleton`` files (Kinect v2, 25 joints): reader and writer.

Shahroudy et al., "NTU RGB+D: A Large Scale Dataset for 3D Human Activity Analysis", CVPR 2016;
Liu et al., "NTU RGB+D 120", TPAMI 2019. A file ``SsssCcccPpppRrrrAaaa.skeleton`` holds one
sample of setup ``sss``, camera ``ccc``, performer ``ppp``, replication ``rrr`` and action
``aaa`` (all 1-based). Its text is::

    <frame count>
    per frame:  <body count>
      per body: bodyID clippedEdges handLeftConfidence handLeftState handRightConfidence
                handRightState isRestricted leanX leanY trackingState
                <joint count: 25>
                25 lines: x y z depthX depthY colorX colorY orientationW orientationX
                          orientationY orientationZ trackingState

:func:`read_ntu` yields :class:`~multimodal_har.skeleton.datasets.SkeletonSequence` in the
``ntu_25`` layout with ``keypoint`` ``(T, M, 25, C)`` and ``score`` ``(T, M, 25)``, ``T`` the
file's frame count, at most ``M = max_people`` people. People are kept consistently across
frames by bodyID: bodies are ranked by the number of frames they appear in, then by their
motion (summed variance of their joints over time), and each in turn takes the first person
slot where it does not overlap a body already there, so a body the tracker re-identified
mid-sample continues its slot (CTR-GCN's preprocessing merges such actors the same way).
Where a person is absent the coordinates are zero and the score is 0; a joint's score comes
from its trackingState (2 tracked: 1.0, 1 inferred: 0.5, 0 not tracked: 0.0).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from .datasets import SkeletonSequence
from .layouts import NTU_25
from .splits import get_split

NTU_ACTIONS = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
    "sitting down", "standing up (from sitting position)", "clapping", "reading", "writing",
    "tear up paper", "wear jacket", "take off jacket", "wear a shoe", "take off a shoe",
    "wear on glasses", "take off glasses", "put on a hat/cap", "take off a hat/cap", "cheer up",
    "hand waving", "kicking something", "reach into pocket", "hopping (one foot jumping)", "jump up",
    "make a phone call/answer phone", "playing with phone/tablet", "typing on a keyboard",
    "pointing to something with finger", "taking a selfie", "check time (from watch)",
    "rub two hands together", "nod head/bow", "shake head", "wipe face", "salute",
    "put the palms together", "cross hands in front (say stop)", "sneeze/cough", "staggering",
    "falling", "touch head (headache)", "touch chest (stomachache/heart pain)",
    "touch back (backache)", "touch neck (neckache)", "nausea or vomiting condition",
    "use a fan (with hand or paper)/feeling warm", "punching/slapping other person",
    "kicking other person", "pushing other person", "pat on back of other person",
    "point finger at the other person", "hugging other person", "giving something to other person",
    "touch other person's pocket", "handshaking", "walking towards each other",
    "walking apart from each other",
    # NTU RGB+D 120 adds A061-A120
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball",
    "tennis bat swing", "juggling table tennis balls", "hush (quite)", "flick hair", "thumb up",
    "thumb down", "make ok sign", "make victory sign", "staple book", "counting money",
    "cutting nails", "cutting paper (using scissors)", "snapping fingers", "open bottle",
    "sniff (smell)", "squat down", "toss a coin", "fold paper", "ball up paper", "play magic cube",
    "apply cream on face", "apply cream on hand back", "put on bag", "take off bag",
    "put something into a bag", "take something out of a bag", "open a box", "move heavy objects",
    "shake fist", "throw up cap/hat", "hands up (both hands)", "cross arms", "arm circles",
    "arm swings", "running on the spot", "butt kicks (kick backward)", "cross toe touch",
    "side kick", "yawn", "stretch oneself", "blow nose", "hit other person with something",
    "wield knife towards other person", "knock over other person (hit with body)",
    "grab other person's stuff", "shoot at other person with a gun", "step on foot", "high-five",
    "cheers and drink", "carry something with other person", "take a photo of other person",
    "follow other person", "whisper in other person's ear", "exchange things with other person",
    "support somebody with hand", "finger-guessing game (playing rock-paper-scissors)",
)
# (last setup, last action) of each benchmark: NTU60 is setups 1-17, actions 1-60
BENCHMARKS = {"ntu60": (17, 60), "ntu120": (32, 120)}
# which columns of a joint line give the coordinates: camera space (metres), or pixels
COORDS = {"camera": (0, 1, 2), "depth": (3, 4), "color": (5, 6)}
_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_TRACKING_SCORE = np.array([0.0, 0.5, 1.0], dtype=np.float32)
_BODY_FIELDS = 10
_JOINT_FIELDS = 12


def parse_name(path: str | Path) -> dict[str, int]:
    """``.../S001C002P003R001A010.skeleton`` -> ``{"setup": 1, "camera": 2, "subject": 3, ...}``."""
    m = _NAME.fullmatch(Path(path).name.split(".")[0])
    if m is None:
        raise ValueError(f"{path}: expected a name like S001C002P003R001A010.skeleton")
    return dict(zip(("setup", "camera", "subject", "replication", "action"), map(int, m.groups())))


class _Lines:
    """The non-empty lines of a file, taken one at a time; errors name the file and line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = [(n, line.split()) for n, line in enumerate(path.read_text().splitlines(), start=1)
                      if line.strip()]
        self.pos = 0
        self.lineno = 0  # of the line taken last

    def error(self, message: str) -> ValueError:
        return ValueError(f"{self.path}:{self.lineno}: {message}")

    def tokens(self, count: int, what: str) -> list[str]:
        """The next line's ``count`` words."""
        if self.pos >= len(self.lines):
            self.lineno = (self.lines[-1][0] if self.lines else 0) + 1
            raise self.error(f"file ends early; expected {what}")
        self.lineno, words = self.lines[self.pos]
        self.pos += 1
        if len(words) != count:
            raise self.error(f"expected {what} ({count} values), got {len(words)}: {' '.join(words)[:80]!r}")
        return words

    def numbers(self, words: list[str], what: str) -> np.ndarray:
        try:
            return np.array(words, dtype=np.float64)
        except ValueError:
            raise self.error(f"expected {what}, got non-numbers {' '.join(words)[:80]!r}") from None

    def take(self, count: int, what: str) -> np.ndarray:
        """The next line as ``count`` float64 values."""
        return self.numbers(self.tokens(count, what), what)

    def count(self, what: str) -> int:
        (value,) = self.take(1, what)
        if value != int(value) or value < 0:
            raise self.error(f"expected {what} (a count), got {value}")
        return int(value)


def read_ntu_file(path: str | Path, *, max_people: int = 2, coords: str = "camera") -> tuple[np.ndarray, np.ndarray]:
    """One ``.skeleton`` file -> ``keypoint`` ``(T, max_people, 25, C)`` and ``score`` ``(T, max_people, 25)``.

    ``coords`` picks ``"camera"`` (x y z, metres, C = 3), ``"depth"`` or ``"color"`` pixels
    (C = 2). People are chosen and ordered as the module docstring says.
    """
    if coords not in COORDS:
        raise ValueError(f"unknown coords {coords!r}; valid choices: {', '.join(COORDS)}")
    if max_people < 1:
        raise ValueError(f"max_people must be at least 1, got {max_people}")
    lines = _Lines(Path(path))
    frames = lines.count("the frame count")
    bodies: dict[str, dict[int, np.ndarray]] = {}  # bodyID -> frame -> (25, 12) joint values
    for t in range(frames):
        for _ in range(lines.count(f"the body count of frame {t + 1}")):
            what = f"a body line of {_BODY_FIELDS} values (bodyID ... trackingState)"
            body_id, *rest = lines.tokens(_BODY_FIELDS, what)  # ids exceed float64's exact integers
            lines.numbers([body_id, *rest], what)
            if lines.count("the joint count") != NTU_25.num_joints:
                raise lines.error(f"expected {NTU_25.num_joints} joints (Kinect v2)")
            bodies.setdefault(body_id, {})[t] = np.stack(
                [lines.take(_JOINT_FIELDS, f"a joint line of {_JOINT_FIELDS} values (x y z ... trackingState)")
                 for _ in range(NTU_25.num_joints)])
    if lines.pos != len(lines.lines):
        lines.lineno = lines.lines[lines.pos][0]
        raise lines.error(f"unexpected text after the last of {frames} frames")

    def rank(body_id: str) -> tuple:
        joints = np.stack(list(bodies[body_id].values()))[..., :3]  # (frames present, 25, 3)
        return -len(joints), -float(joints.var(axis=0).sum())

    slots: list[dict[int, np.ndarray]] = []
    for body_id in sorted(bodies, key=rank):
        free = next((s for s in slots if not s.keys() & bodies[body_id].keys()), None)
        if free is not None:
            free.update(bodies[body_id])
        elif len(slots) < max_people:
            slots.append(dict(bodies[body_id]))
    cols = list(COORDS[coords])
    keypoint = np.zeros((frames, max_people, NTU_25.num_joints, len(cols)), np.float32)
    score = np.zeros((frames, max_people, NTU_25.num_joints), np.float32)
    for m, slot in enumerate(slots):
        for t, joints in slot.items():
            keypoint[t, m] = joints[:, cols]
            score[t, m] = _TRACKING_SCORE[np.clip(joints[:, -1].astype(np.int64), 0, 2)]
    return keypoint, score


def read_ntu(root: str | Path, *, benchmark: str = "ntu60", split: Optional[str] = "cross_subject",
             max_people: int = 2, coords: str = "camera") -> Iterator[SkeletonSequence]:
    """The samples of an NTU benchmark among the ``*.skeleton`` files of ``root``, in name order.

    Args:
        benchmark: ``"ntu60"`` (files of setups 1-17 and actions 1-60; others are skipped) or
            ``"ntu120"`` (all).
        split: a protocol of the benchmark (:mod:`.splits`: ``cross_subject``, ``cross_view``
            for ntu60, ``cross_setup`` for ntu120) or ``None``.

    Files without any body (the release has a few hundred) are skipped; truncated or garbled
    files raise ``ValueError`` naming the file and line. ``meta`` holds setup, camera and
    replication.
    """
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown NTU benchmark {benchmark!r}; valid choices: {', '.join(BENCHMARKS)}")
    split_of = get_split(benchmark, split).assign if split is not None else (lambda **attrs: None)
    files = sorted(Path(root).glob("*.skeleton"))
    if not files:
        raise FileNotFoundError(f"no NTU .skeleton files in {root}")
    last_setup, last_action = BENCHMARKS[benchmark]
    for f in files:
        attrs = parse_name(f)
        if attrs["setup"] > last_setup or attrs["action"] > last_action:
            continue
        keypoint, score = read_ntu_file(f, max_people=max_people, coords=coords)
        if not score.any() and not keypoint.any():
            continue
        a = attrs["action"]
        yield SkeletonSequence(id=f.name.split(".")[0], label=NTU_ACTIONS[a - 1], label_index=a - 1,
                               subject=attrs["subject"], keypoint=keypoint, score=score, layout=NTU_25.name,
                               split=split_of(**attrs),
                               meta={k: attrs[k] for k in ("setup", "camera", "replication")})


def write_ntu_file(path: str | Path, keypoint: np.ndarray, score: np.ndarray, *,
                   body_ids: Optional[list[str]] = None) -> None:
    """Write ``keypoint`` ``(T, M, 25, 3)`` (camera space) and ``score`` ``(T, M, 25)`` as a ``.skeleton`` file.

    Each present person (not all-zero with score 0) of a frame becomes a body with id
    ``body_ids[m]`` (default ``"72057594037931101"`` + m); trackingState is ``round(2 * score)``;
    the fields the reader does not use (hand states, lean, depth/colour pixels, orientation)
    are written as 0.
    """
    t, m, v, c = keypoint.shape
    if v != NTU_25.num_joints or c != 3 or score.shape != keypoint.shape[:3]:
        raise ValueError(f"expected keypoint (T, M, 25, 3) and score (T, M, 25); "
                         f"got {keypoint.shape} and {score.shape}")
    body_ids = body_ids or [str(72057594037931101 + i) for i in range(m)]
    if len(body_ids) != m:
        raise ValueError(f"body_ids must name the {m} people, got {len(body_ids)}")
    state = np.clip(np.rint(score * 2), 0, 2).astype(np.int64)
    out = [str(t)]
    for i in range(t):
        present = [j for j in range(m) if keypoint[i, j].any() or score[i, j].any()]
        out.append(str(len(present)))
        for j in present:
            out += [f"{body_ids[j]} 0 0 0 0 0 0 0 0 2", str(v)]
            out += [f"{x:.9g} {y:.9g} {z:.9g} 0 0 0 0 0 0 0 0 {s}" for (x, y, z), s in zip(keypoint[i, j], state[i, j])]
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    tmp.write_text("\n".join(out) + "\n")
    tmp.replace(path)
