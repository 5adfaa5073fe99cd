"""Extractors: raw video -> modality arrays in a feature store.

One file per backend. Backends are registered by name and imported only when built, so
``import multimodal_har.extractors`` needs none of the optional dependencies.

>>> from multimodal_har.extractors import build_extractor
>>> ex = build_extractor("rgb", short_side=224, fps=10)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

from multimodal_har.registry import Registry

EXTRACTORS = Registry("extractor")
EXTRACTORS.register("rgb", "multimodal_har.extractors.rgb:RGBExtractor")
EXTRACTORS.register("audio", "multimodal_har.extractors.audio:AudioExtractor")
# optical flow backends (all write the `flow` modality unless --modality says otherwise)
EXTRACTORS.register("raft", "multimodal_har.extractors.raft:RAFTExtractor")
EXTRACTORS.register("ptlflow", "multimodal_har.extractors.ptlflow:PtlflowExtractor")
EXTRACTORS.register("tvl1", "multimodal_har.extractors.tvl1:TVL1Extractor")
EXTRACTORS.register("dis", "multimodal_har.extractors.dis:DISExtractor")
EXTRACTORS.register("farneback", "multimodal_har.extractors.farneback:FarnebackExtractor")
FLOW_BACKENDS = ("raft", "ptlflow", "tvl1", "dis", "farneback")
# 3D pose backends (both write the `pose3d` modality)
EXTRACTORS.register("mediapipe", "multimodal_har.extractors.mediapipe:MediaPipeExtractor")
EXTRACTORS.register("mmpose", "multimodal_har.extractors.mmpose:MMPoseExtractor")
POSE_BACKENDS = ("mediapipe", "mmpose")


def build_extractor(name: str, /, config: Any = None, **overrides: Any):
    """Build a registered extractor from a config dataclass, a mapping, or keyword overrides.

    Unknown config keys raise a ``ValueError`` that lists the valid ones; a value of the wrong
    type (``stride=2.5``) one that names the field. Numbers take their field's type (``fps=4``
    is stored as ``4.0``), so equal configs have equal hashes.
    """
    from multimodal_har.config import coerce_types, from_dict

    cls = EXTRACTORS.get(name)
    if config is None or isinstance(config, Mapping):
        values = coerce_types(cls.config_class, {**dict(config or {}), **overrides}, where=name)
        config = from_dict(cls.config_class, values, where=name)
    elif overrides:
        config = dataclasses.replace(config, **coerce_types(cls.config_class, overrides, where=name))
    return cls(config=config)


def list_extractors() -> list[str]:
    return EXTRACTORS.names()


def config_class(name: str) -> Optional[type]:
    return EXTRACTORS.get(name).config_class


__all__ = ["EXTRACTORS", "FLOW_BACKENDS", "POSE_BACKENDS", "build_extractor", "list_extractors", "config_class"]
