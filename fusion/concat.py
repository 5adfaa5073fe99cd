"""Concatenation of pooled embeddings: the plain feature-level baseline.

The "late fusion" of Karpathy, Toderici, Shetty, Leung, Sukthankar, Fei-Fei, "Large-scale
Video Classification with Convolutional Neural Networks", CVPR 2014, read across modalities:
each tower (here: each modality's encoder) runs alone and they meet only at the first
fully-connected layer, i.e. the classifier head applied to the concatenation.

Departure, and why: a modality missing for a sample contributes zeros (the network cannot
tell a missing modality from an all-zero embedding), so an optional presence indicator,
one 0/1 feature per modality, can be appended to tell them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import torch
from torch import Tensor

from multimodal_har.encoders import EncoderOutput

from . import FusionOutput
from .base import Fusion, zero_missing


class ConcatFusion(Fusion):
    """Pooled embeddings concatenated in modality order; no parameters.

    Args:
        dims: each modality's encoder ``out_dim`` (order = concatenation order).
        indicator: append the ``(B, M)`` presence as 0/1 features.

    ``out_dim = sum(dims.values()) (+ M with indicator)``.
    """

    def __init__(self, *, dims: Mapping[str, int], indicator: bool = False) -> None:
        super().__init__(dims=dims)
        self.indicator = bool(indicator)
        self.out_dim = sum(self.dims.values()) + (len(self.modalities) if self.indicator else 0)

    def forward(self, outputs: Mapping[str, Optional[EncoderOutput]], present: Optional[Tensor] = None) -> FusionOutput:
        """
        Args:
            outputs: ``{modality: EncoderOutput | None}``; only ``pooled (B, D_m)`` is used.
            present: ``(B, M)`` bool, False where a modality is missing for a sample.

        Returns:
            ``embedding (B, out_dim)``: ``[pooled_1 | ... | pooled_M (| presence)]``, zeros in
            the slot of a missing modality; ``extras["present"] (B, M)``.
        """
        inp = self.gather(outputs, present)
        ref = next(o.pooled for o in inp.outputs if o is not None)
        parts = []
        for i, (m, o) in enumerate(zip(self.modalities, inp.outputs)):
            if o is None:
                parts.append(ref.new_zeros(inp.batch, self.dims[m]))
            else:
                parts.append(zero_missing(o.pooled, inp.present[:, i]))
        if self.indicator:
            parts.append(inp.present.to(ref.dtype))
        return FusionOutput(embedding=torch.cat(parts, dim=1), logits=None, extras={"present": inp.present})
