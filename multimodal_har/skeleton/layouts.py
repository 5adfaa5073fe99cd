"""Skeleton layouts: joint names, bones, root joint, body parts and torso, in one registry.

A layout is shared by whatever produces skeletons (dataset readers, pose extractors) and
whatever consumes them (the GCN's graph, normalisation, drawing, layout conversion). Datasets
that store the joints of a known layout in another order (MSR Action3D's Kinect v1 files do)
are read through :meth:`Layout.reorder` with the order they use.

Joint names follow one convention in every layout, ``<part>_<side>`` with the side last
(``shoulder_left``, ``eye_inner_right``, ``foot_index_left``) as the Kinect SDK names them;
sides are the person's own. A name means the same body point in every layout that has it,
which is what :func:`multimodal_har.skeleton.mapping.convert` relies on. The Kinect v1 SDK's
``HipCenter``, ``Spine`` and ``ShoulderCenter`` carry their Kinect v2 SDK names
(``spine_base``, ``spine_mid``, ``spine_shoulder``): Microsoft renamed the same joints.

Registered layouts: ``kinect_v1_20``, ``ntu_25`` (Kinect v2), ``coco_17``, ``mediapipe_33``,
``h36m_17`` and ``common_13`` (the joints every other layout has or derives).

Converting between layouts (:func:`convert`) goes through the joints that correspond:
a target joint is copied from the source joint of the same name, or derived by
:data:`DERIVED`: the first alternative whose joints the source all has, as their mean. Nothing
else is guessed: COCO's nose is not Kinect's head, H36M's thorax is not Kinect's
spine_shoulder, so such targets are reported missing rather than approximated. Every layout
converts to ``common_13``; ``ntu_25`` converts to ``kinect_v1_20`` and ``mediapipe_33`` to
``coco_17``. Missing joints follow the readers' convention, all-zero coordinates and score 0:
a derived joint is missing when any of its sources is (it is not half a hip), and its score
is the minimum of its sources' scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..registry import Registry

STREAMS = ("joint", "bone", "motion", "bone_motion")  # skeleton input streams, see Layout.stream


@dataclass(frozen=True, kw_only=True)
class Layout:
    """A skeleton: ``V`` named joints, the bones between them, a root joint, parts and torso.

    Attributes:
        name: registry name.
        joints: joint names in storage order (index = joint id).
        bones: ``(child, parent)`` joint-name pairs forming a tree rooted at ``center``.
        center: the root joint of the bone tree (the GCN's graph centre). Layouts without a
            pelvis joint (COCO, MediaPipe) root their tree at the nose, as PYSKL's ``coco``
            graph does, rather than inventing a joint.
        parts: body part -> joint names; every joint belongs to exactly one part.
        torso: ``(lower, upper)`` groups of joint names; the mean of each group is a point.
            The lower point is the body's origin (pelvis) for centring, and lower -> upper is
            the spine, whose length sets the scale (:mod:`multimodal_har.skeleton.normalize`).
    """

    name: str
    joints: tuple[str, ...]
    bones: tuple[tuple[str, str], ...]
    center: str
    parts: dict[str, tuple[str, ...]]
    torso: tuple[tuple[str, ...], tuple[str, ...]]

    def __post_init__(self) -> None:
        if len(set(self.joints)) != len(self.joints):
            raise ValueError(f"layout {self.name}: duplicate joint names")
        known = set(self.joints)
        for a, b in self.bones:
            if a not in known or b not in known:
                raise ValueError(f"layout {self.name}: bone ({a}, {b}) names an unknown joint")
        if self.center not in known:
            raise ValueError(f"layout {self.name}: centre {self.center!r} is not a joint")
        self._check_tree()
        in_parts = [j for names in self.parts.values() for j in names]
        unknown = sorted(set(in_parts) - known)
        twice = sorted({j for j in in_parts if in_parts.count(j) > 1})
        left_out = sorted(known - set(in_parts))
        if unknown or twice or left_out:
            raise ValueError(f"layout {self.name}: parts must hold every joint once; unknown {unknown}, "
                             f"in several parts {twice}, in none {left_out}")
        if len(self.torso) != 2 or not all(self.torso):
            raise ValueError(f"layout {self.name}: torso must be (lower joints, upper joints), got {self.torso!r}")
        for group in self.torso:
            for j in group:
                if j not in known:
                    raise ValueError(f"layout {self.name}: torso joint {j!r} is not a joint")

    def _check_tree(self) -> None:
        parent: dict[str, str] = {}
        for child, par in self.bones:
            if child in parent:
                raise ValueError(f"layout {self.name}: joint {child!r} has two parents ({parent[child]}, {par})")
            parent[child] = par
        if self.center in parent:
            raise ValueError(f"layout {self.name}: the centre {self.center!r} must not have a parent")
        for j in self.joints:
            path = [j]
            while path[-1] != self.center:
                if path[-1] not in parent:
                    raise ValueError(f"layout {self.name}: joint {path[-1]!r} does not reach the centre "
                                     f"{self.center!r} through the bones")
                path.append(parent[path[-1]])
                if len(path) > len(self.joints):
                    raise ValueError(f"layout {self.name}: the bones form a cycle through {j!r}")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise ValueError(f"layout {self.name} has no joint {joint!r}; joints: {list(self.joints)}") from None

    def indices(self, joints: Sequence[str]) -> list[int]:
        return [self.index(j) for j in joints]

    @property
    def edges(self) -> np.ndarray:
        """``(2, E)`` int64 ``(child, parent)`` joint indices of the bones (``E = V - 1``)."""
        return np.array([[self.index(a), self.index(b)] for a, b in self.bones], dtype=np.int64).T

    def bone_vectors(self, x: np.ndarray) -> np.ndarray:
        """``(..., V, C)`` joints -> ``(..., E, C)`` child minus parent for every bone."""
        e = self.edges
        return x[..., e[0], :] - x[..., e[1], :]

    def stream(self, x, name: str):
        """``(..., T, M, V, C)`` joints (numpy or torch) -> the input stream ``name``, same shape.

        ``joint``: the coordinates; ``bone`` (2s-AGCN, Shi et al. CVPR 2019): joint ``v``
        holds ``x[v] - x[parent(v)]``, the root zero, so the stream keeps the joint graph;
        ``motion`` (joint motion): ``x[t + 1] - x[t]``, zero at the last frame; ``bone_motion``:
        the motion of the bone stream. Joint, bone, joint motion and bone motion are the four
        streams of CTR-GCN / InfoGCN-style ensembles. The dataset (numpy, per sample) and the
        encoders (torch, per batch) both compute streams here.
        """
        if name == "joint":
            return x
        if name not in STREAMS:
            raise ValueError(f"unknown input stream {name!r}; valid choices: {', '.join(STREAMS)}")
        if name == "bone_motion":
            return self.stream(self.stream(x, "bone"), "motion")
        out = x.new_zeros(x.shape) if hasattr(x, "new_zeros") else np.zeros_like(x)
        if name == "bone":
            out[..., self.edges[0], :] = self.bone_vectors(x)
        else:
            out[..., :-1, :, :, :] = x[..., 1:, :, :, :] - x[..., :-1, :, :, :]
        return out

    def point(self, x: np.ndarray, joints: Sequence[str]) -> np.ndarray:
        """``(..., V, C)`` -> ``(..., C)`` mean of the named joints."""
        return x[..., self.indices(joints), :].mean(axis=-2)

    def torso_points(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(..., V, C)`` -> the lower (origin) and upper torso points, each ``(..., C)``."""
        return self.point(x, self.torso[0]), self.point(x, self.torso[1])

    def reorder(self, x: np.ndarray, order: Sequence[str], axis: int = -2) -> np.ndarray:
        """Put joints stored in ``order`` (names of this layout) into this layout's order."""
        if sorted(order) != sorted(self.joints):
            missing = sorted(set(self.joints) - set(order))
            extra = sorted(set(order) - set(self.joints))
            raise ValueError(f"order must name each joint of {self.name} once; missing {missing}, unknown {extra}")
        perm = [list(order).index(j) for j in self.joints]
        return np.take(x, perm, axis=axis)


LAYOUTS = Registry("skeleton layout")
_ARM = ("shoulder", "elbow", "wrist")
_LEG = ("hip", "knee", "ankle")
_BOTH = ("left", "right")
_UNSIDED = {"spine_base", "spine_shoulder", "pelvis", "thorax", "nose"}


def get_layout(layout: str | Layout) -> Layout:
    """A registered layout by name (a :class:`Layout` is returned as is)."""
    return layout if isinstance(layout, Layout) else LAYOUTS.get(layout)


def _register(layout: Layout) -> Layout:
    LAYOUTS.register(layout.name, layout)
    return layout


def _limbs(*chains: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``(child, parent)`` bones down each chain of joint stems, for the left then the right side.

    Stems get the side appended (``"elbow"`` -> ``"elbow_left"``) except the unsided joints of
    ``_UNSIDED`` that chains hang from (``("spine_shoulder", "shoulder", "elbow")``).
    """
    bones = []
    for side in _BOTH:
        for chain in chains:
            names = [c if c in _UNSIDED else f"{c}_{side}" for c in chain]
            bones += [(child, parent) for parent, child in zip(names, names[1:])]
    return tuple(bones)


def _sided(*stems: str, side: str) -> tuple[str, ...]:
    return tuple(f"{s}_{side}" for s in stems)



# Kinect v1 (Microsoft SDK) 20 joints, in the SDK's order (UTKinect-Action3D files use it).
KINECT_V1_20 = _register(Layout(
    name="kinect_v1_20",
    joints=("spine_base", "spine_mid", "spine_shoulder", "head",
            *_sided(*_ARM, "hand", side="left"), *_sided(*_ARM, "hand", side="right"),
            *_sided(*_LEG, "foot", side="left"), *_sided(*_LEG, "foot", side="right")),
    bones=(("spine_mid", "spine_base"), ("spine_shoulder", "spine_mid"), ("head", "spine_shoulder"),
           *_limbs(("spine_shoulder", *_ARM, "hand"), ("spine_base", *_LEG, "foot"))),
    center="spine_base",
    parts={"torso": ("spine_base", "spine_mid", "spine_shoulder", "head"),
           **{f"{s}_arm": _sided(*_ARM, "hand", side=s) for s in _BOTH},
           **{f"{s}_leg": _sided(*_LEG, "foot", side=s) for s in _BOTH}},
    torso=(("spine_base",), ("spine_shoulder",)),
))

# The order of the 20 joints in MSR Action3D's skeleton3D files (the release in
# ../shared/data): it differs from the SDK's; tests/multimodal_har/skeleton checks it on the
# real files (bone symmetry, head above hips).
MSR_ACTION3D_ORDER = ("shoulder_right", "shoulder_left", "spine_shoulder", "spine_mid",
                      "hip_right", "hip_left", "spine_base", "elbow_right", "elbow_left",
                      "wrist_right", "wrist_left", "hand_right", "hand_left",
                      "knee_right", "knee_left", "ankle_right", "ankle_left",
                      "foot_right", "foot_left", "head")

# Kinect v2, 25 joints in NTU RGB+D's order (the SDK's JointType order). The hand bones follow
# the graph of ST-GCN / CTR-GCN (hand_tip - thumb - hand) so the tree matches published NTU models.
NTU_25 = _register(Layout(
    name="ntu_25",
    joints=("spine_base", "spine_mid", "neck", "head",
            *_sided(*_ARM, "hand", side="left"), *_sided(*_ARM, "hand", side="right"),
            *_sided(*_LEG, "foot", side="left"), *_sided(*_LEG, "foot", side="right"),
            "spine_shoulder", "hand_tip_left", "thumb_left", "hand_tip_right", "thumb_right"),
    bones=(("spine_mid", "spine_base"), ("spine_shoulder", "spine_mid"), ("neck", "spine_shoulder"),
           ("head", "neck"),
           *_limbs(("spine_shoulder", *_ARM, "hand", "thumb", "hand_tip"), ("spine_base", *_LEG, "foot"))),
    center="spine_base",
    parts={"torso": ("spine_base", "spine_mid", "neck", "head", "spine_shoulder"),
           **{f"{s}_arm": _sided(*_ARM, "hand", "hand_tip", "thumb", side=s) for s in _BOTH},
           **{f"{s}_leg": _sided(*_LEG, "foot", side=s) for s in _BOTH}},
    torso=(("spine_base",), ("spine_shoulder",)),
))

_COCO_FACE = ("nose", "eye_left", "eye_right", "ear_left", "ear_right")

# COCO keypoints (17), in COCO's order; the tree is PYSKL's ``coco`` graph, rooted at the nose.
COCO_17 = _register(Layout(
    name="coco_17",
    joints=(*_COCO_FACE, *(f"{j}_{s}" for j in (*_ARM, *_LEG) for s in _BOTH)),
    bones=_limbs(("nose", "eye", "ear"), ("nose", *_ARM), ("shoulder", *_LEG)),
    center="nose",
    parts={"head": _COCO_FACE,
           **{f"{s}_arm": _sided(*_ARM, side=s) for s in _BOTH},
           **{f"{s}_leg": _sided(*_LEG, side=s) for s in _BOTH}},
    torso=(("hip_left", "hip_right"), ("shoulder_left", "shoulder_right")),
))

_MP_HAND = ("pinky", "index", "thumb")
_MP_FOOT = ("heel", "foot_index")
_MP_FACE = ("nose", *_sided("eye_inner", "eye", "eye_outer", side="left"),
            *_sided("eye_inner", "eye", "eye_outer", side="right"),
            "ear_left", "ear_right", "mouth_left", "mouth_right")

# MediaPipe Pose's 33 landmarks in their official order. The tree keeps MediaPipe's
# POSE_CONNECTIONS minus the edges that close loops (shoulder-shoulder, hip-hip, pinky-index,
# heel-foot_index, mouth-mouth), plus nose -> mouth corners and nose -> shoulders to join the
# face to the body; it is rooted at the nose like coco_17.
MEDIAPIPE_33 = _register(Layout(
    name="mediapipe_33",
    joints=(*_MP_FACE, *(f"{j}_{s}" for j in (*_ARM, *_MP_HAND, *_LEG, *_MP_FOOT) for s in _BOTH)),
    bones=(*_limbs(("nose", "eye_inner", "eye", "eye_outer", "ear"), ("nose", "mouth"),
                   ("nose", *_ARM), ("shoulder", *_LEG)),
           *((f"{h}_{s}", f"wrist_{s}") for s in _BOTH for h in _MP_HAND),
           *((f"{f}_{s}", f"ankle_{s}") for s in _BOTH for f in _MP_FOOT)),
    center="nose",
    parts={"head": _MP_FACE,
           **{f"{s}_arm": _sided(*_ARM, *_MP_HAND, side=s) for s in _BOTH},
           **{f"{s}_leg": _sided(*_LEG, *_MP_FOOT, side=s) for s in _BOTH}},
    torso=(("hip_left", "hip_right"), ("shoulder_left", "shoulder_right")),
))

# Human3.6M's 17 joints in the order of mmpose's ``h36m`` dataset (what its 3D lifters output):
# mmpose's root, right_foot, neck_base are pelvis, ankle_right, neck here (the "foot" is the
# ankle). ``head`` is the top of the head, not Kinect's head centre.
H36M_17 = _register(Layout(
    name="h36m_17",
    joints=("pelvis", *_sided(*_LEG, side="right"), *_sided(*_LEG, side="left"),
            "spine", "thorax", "neck", "head",
            *_sided(*_ARM, side="left"), *_sided(*_ARM, side="right")),
    bones=(("spine", "pelvis"), ("thorax", "spine"), ("neck", "thorax"), ("head", "neck"),
           *_limbs(("pelvis", *_LEG), ("thorax", *_ARM))),
    center="pelvis",
    parts={"torso": ("pelvis", "spine", "thorax", "neck", "head"),
           **{f"{s}_arm": _sided(*_ARM, side=s) for s in _BOTH},
           **{f"{s}_leg": _sided(*_LEG, side=s) for s in _BOTH}},
    torso=(("pelvis",), ("thorax",)),
))
# The joints every layout above has or derives (mapping.convert): the pelvis and the six
# limb joints of each side. No head joint: Kinect's head centre, H36M's head top and COCO's
# nose are different points. The shoulders hang from the hips (COCO's torso sides).
COMMON_13 = _register(Layout(
    name="common_13",
    joints=("pelvis", *(f"{j}_{s}" for j in (*_ARM, *_LEG) for s in _BOTH)),
    bones=_limbs(("pelvis", *_LEG), ("hip", *_ARM)),
    center="pelvis",
    parts={"torso": ("pelvis",),
           **{f"{s}_arm": _sided(*_ARM, side=s) for s in _BOTH},
           **{f"{s}_leg": _sided(*_LEG, side=s) for s in _BOTH}},
    torso=(("pelvis",), ("shoulder_left", "shoulder_right")),
))


# Target joint -> alternatives (tried in order) of source joints whose mean stands for it.
# Kinect's spine_base is its pelvis joint; layouts without one (COCO, MediaPipe) use the hips.
DERIVED: dict[str, tuple[tuple[str, ...], ...]] = {
    "pelvis": (("spine_base",), ("hip_left", "hip_right")),
}


def correspondence(src: str | Layout, dst: str | Layout) -> list[tuple[str, ...]]:
    """For each joint of ``dst`` (in order), the ``src`` joints whose mean it is.

    Raises:
        ValueError: listing the ``dst`` joints that ``src`` neither has nor derives.
    """
    src, dst = get_layout(src), get_layout(dst)
    have = set(src.joints)
    groups, missing = [], []
    for joint in dst.joints:
        options = ((joint,), *DERIVED.get(joint, ()))
        found = next((g for g in options if set(g) <= have), None)
        if found is None:
            missing.append(joint)
        else:
            groups.append(found)
    if missing:
        raise ValueError(f"cannot convert {src.name} to {dst.name}: {src.name} has no joint for {missing} "
                         f"(derivable joints: {DERIVED})")
    return groups


def convert(x: np.ndarray, score: Optional[np.ndarray], src: str | Layout,
            dst: str | Layout) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Map skeletons from layout ``src`` to layout ``dst``.

    Args:
        x: ``(..., V_src, C)`` coordinates (any leading axes, e.g. ``(T, M)``).
        score: ``(..., V_src)`` confidences, or ``None``.

    Returns:
        ``(..., V_dst, C)`` coordinates and ``(..., V_dst)`` scores (``None`` if ``score`` was).
        Derived joints are the mean of their sources, with the minimum of their scores; they
        are zero (score 0) wherever a source joint is missing.

    Raises:
        ValueError: when ``dst`` has joints ``src`` cannot provide (listed), or on shapes that
            do not match ``src``.
    """
    src, dst = get_layout(src), get_layout(dst)
    if x.ndim < 2 or x.shape[-2] != src.num_joints:
        raise ValueError(f"x must be (..., {src.num_joints}, C) for layout {src.name}, got shape {x.shape}")
    if score is not None and score.shape != x.shape[:-1]:
        raise ValueError(f"score must be {x.shape[:-1]} (x's shape without C), got {score.shape}")
    groups = [src.indices(g) for g in correspondence(src, dst)]
    out = np.stack([x[..., g, :].mean(axis=-2) for g in groups], axis=-2)  # (..., V_dst, C)
    missing = ~np.any(x != 0, axis=-1)  # (..., V_src)
    if score is not None:
        missing &= score <= 0
    gone = np.stack([missing[..., g].any(axis=-1) for g in groups], axis=-1)  # (..., V_dst)
    out[gone] = 0
    if score is None:
        return out, None
    out_score = np.stack([score[..., g].min(axis=-1) for g in groups], axis=-1)
    out_score[gone] = 0
    return out, out_score
