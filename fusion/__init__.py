"""Fusion: the ways modality embeddings are combined (late, early, slow, cross-attention...).

One file per method, registered in :data:`FUSION`; ``build_fusion(name, **kwargs)`` builds
one, and an unknown name lists the choices. Methods arrive with the fusion issue; the
registry exists now so that encoders, the model and the CLI are written against it.
"""

from __future__ import annotations

from typing import Any

from multimodal_har.registry import Registry

FUSION = Registry("fusion method")


def build_fusion(name: str, /, **kwargs: Any):
    return FUSION.build(name, **kwargs)


__all__ = ["FUSION", "build_fusion"]
