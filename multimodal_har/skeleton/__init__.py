"""Skeletons: layouts and conversion between them, dataset readers and writers (Kinect v1,
NTU RGB+D, PYSKL pickles), named splits, normalisation and drawing.

Importing this package needs only numpy; Pillow is imported when drawing.
"""

from .datasets import DATASETS, SkeletonSequence, add_to_store, read_msr_action3d, read_utkinect
from .draw import draw_sequence, draw_skeleton
from .layouts import LAYOUTS, Layout, convert, correspondence, get_layout
from .normalize import NormalizeConfig, align_view, center, normalize, present, resample, scale_by_torso
from .ntu import NTU_ACTIONS, read_ntu, read_ntu_file, write_ntu_file
from .pyskl import read_pyskl, write_pyskl
from .splits import SPLITS, Split, get_split

__all__ = [
    "LAYOUTS", "Layout", "get_layout", "convert", "correspondence",
    "SkeletonSequence", "DATASETS", "read_msr_action3d", "read_utkinect", "add_to_store",
    "NTU_ACTIONS", "read_ntu", "read_ntu_file", "write_ntu_file", "read_pyskl", "write_pyskl",
    "SPLITS", "Split", "get_split",
    "NormalizeConfig", "normalize", "center", "align_view", "scale_by_torso", "resample", "present",
    "draw_skeleton", "draw_sequence",
]
