"""Skeleton layouts: joint names, bones, centre joint and body parts, in one registry.

A layout is shared by whatever produces skeletons (dataset readers, pose extractors) and
whatever consumes them (the GCN's graph, normalisation, drawing). Datasets that store the
joints of a known layout in another order (MSR Action3D's Kinect v1 files do) are read
through :meth:`Layout.reorder` with the order they use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..registry import Registry


@dataclass(frozen=True)
class Layout:
    """A skeleton: ``V`` named joints, the bones between them, a centre joint, body parts.

    Attributes:
        name: registry name.
        joints: joint names in storage order (index = joint id).
        bones: ``(child, parent)`` joint-name pairs; they form a tree rooted at ``center``.
        center: the root joint (pelvis / hip centre), used for centring and graph partitions.
        parts: body part -> joint names (for part-based pooling and drawing colours).
    """

    name: str
    joints: tuple[str, ...]
    bones: tuple[tuple[str, str], ...]
    center: str
    parts: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.joints)) != len(self.joints):
            raise ValueError(f"layout {self.name}: duplicate joint names")
        known = set(self.joints)
        for a, b in self.bones:
            if a not in known or b not in known:
                raise ValueError(f"layout {self.name}: bone ({a}, {b}) names an unknown joint")
        if self.center not in known:
            raise ValueError(f"layout {self.name}: centre {self.center!r} is not a joint")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise ValueError(f"layout {self.name} has no joint {joint!r}; joints: {list(self.joints)}") from None

    @property
    def edges(self) -> np.ndarray:
        """``(2, E)`` int64 ``(child, parent)`` joint indices of the bones."""
        return np.array([[self.index(a), self.index(b)] for a, b in self.bones], dtype=np.int64).T

    def bone_vectors(self, x: np.ndarray) -> np.ndarray:
        """``(..., V, C)`` joints -> ``(..., E, C)`` child minus parent for every bone."""
        e = self.edges
        return x[..., e[0], :] - x[..., e[1], :]

    def reorder(self, x: np.ndarray, order: Sequence[str], axis: int = -2) -> np.ndarray:
        """Put joints stored in ``order`` (names of this layout) into this layout's order."""
        if sorted(order) != sorted(self.joints):
            missing = sorted(set(self.joints) - set(order))
            extra = sorted(set(order) - set(self.joints))
            raise ValueError(f"order must name each joint of {self.name} once; missing {missing}, unknown {extra}")
        perm = [list(order).index(j) for j in self.joints]
        return np.take(x, perm, axis=axis)


LAYOUTS = Registry("skeleton layout")


def get_layout(name: str) -> Layout:
    return LAYOUTS.get(name)


def _register(layout: Layout) -> Layout:
    LAYOUTS.register(layout.name, layout)
    return layout


# Kinect v1 (Microsoft SDK) 20 joints, in the SDK's order (UTKinect-Action3D files use it).
KINECT_V1_20 = _register(Layout(
    name="kinect_v1_20",
    joints=("hip_center", "spine", "shoulder_center", "head",
            "shoulder_left", "elbow_left", "wrist_left", "hand_left",
            "shoulder_right", "elbow_right", "wrist_right", "hand_right",
            "hip_left", "knee_left", "ankle_left", "foot_left",
            "hip_right", "knee_right", "ankle_right", "foot_right"),
    bones=(("spine", "hip_center"), ("shoulder_center", "spine"), ("head", "shoulder_center"),
           ("shoulder_left", "shoulder_center"), ("elbow_left", "shoulder_left"),
           ("wrist_left", "elbow_left"), ("hand_left", "wrist_left"),
           ("shoulder_right", "shoulder_center"), ("elbow_right", "shoulder_right"),
           ("wrist_right", "elbow_right"), ("hand_right", "wrist_right"),
           ("hip_left", "hip_center"), ("knee_left", "hip_left"), ("ankle_left", "knee_left"),
           ("foot_left", "ankle_left"),
           ("hip_right", "hip_center"), ("knee_right", "hip_right"), ("ankle_right", "knee_right"),
           ("foot_right", "ankle_right")),
    center="hip_center",
    parts={"torso": ("hip_center", "spine", "shoulder_center", "head"),
           "left_arm": ("shoulder_left", "elbow_left", "wrist_left", "hand_left"),
           "right_arm": ("shoulder_right", "elbow_right", "wrist_right", "hand_right"),
           "left_leg": ("hip_left", "knee_left", "ankle_left", "foot_left"),
           "right_leg": ("hip_right", "knee_right", "ankle_right", "foot_right")},
))

# The order of the 20 joints in MSR Action3D's skeleton3D files (the release in
# ../shared/data): it differs from the SDK's; tests/multimodal_har/skeleton checks it on the
# real files (bone symmetry, head above hips).
MSR_ACTION3D_ORDER = ("shoulder_right", "shoulder_left", "shoulder_center", "spine",
                      "hip_right", "hip_left", "hip_center", "elbow_right", "elbow_left",
                      "wrist_right", "wrist_left", "hand_right", "hand_left",
                      "knee_right", "knee_left", "ankle_right", "ankle_left",
                      "foot_right", "foot_left", "head")
