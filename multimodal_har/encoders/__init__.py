"""Per-modality encoders: one file per encoder, one registry.

Every encoder exposes ``out_dim`` and its ``forward`` returns an :class:`EncoderOutput`: a
pooled embedding ``(B, D)`` and a token sequence over time ``(B, T', D)`` with its validity
mask ``(B, T')``, so that any fusion method can use it.

>>> from multimodal_har.encoders import build_encoder
>>> enc = build_encoder("skeleton_gcn", layout="kinect_v1_20")
"""

from __future__ import annotations

from typing import Any, NamedTuple

from multimodal_har.registry import Registry

ENCODERS = Registry("encoder")
ENCODERS.register("skeleton_gcn", "multimodal_har.encoders.skeleton_gcn:STGCN")
ENCODERS.register("ctr_gcn", "multimodal_har.encoders.ctr_gcn:CTRGCN")
ENCODERS.register("video_cnn", "multimodal_har.encoders.two_stream:VideoCNN")
ENCODERS.register("two_stream", "multimodal_har.encoders.two_stream:TwoStream")
ENCODERS.register("pose_lstm", "multimodal_har.encoders.pose_lstm:PoseLSTM")
ENCODERS.register("pose_attention", "multimodal_har.encoders.pose_attention:PoseDrivenAttention")
ENCODERS.register("audio", "multimodal_har.encoders.audio:AudioCNN")
ENCODERS.register("signal", "multimodal_har.encoders.signal:TemporalConvNet")


class EncoderOutput(NamedTuple):
    """Attributes:
        pooled: ``(B, D)`` one embedding per sample.
        tokens: ``(B, T', D)`` embeddings over time.
        mask: ``(B, T')`` bool, True where a token comes from valid input.
        extras: ``None`` or a dict of what an encoder returns beside its features (attention
            maps for visualisation, auxiliary losses); documented by each encoder.
    """

    pooled: Any
    tokens: Any
    mask: Any
    extras: Any = None


def build_encoder(name: str, /, **kwargs: Any):
    return ENCODERS.build(name, **kwargs)


__all__ = ["ENCODERS", "EncoderOutput", "build_encoder"]
