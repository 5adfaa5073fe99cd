"""Early fusion of time-aligned per-time tokens.

Karpathy, Toderici, Shetty, Leung, Sukthankar, Fei-Fei, "Large-scale Video Classification
with Convolutional Neural Networks", CVPR 2014: early fusion combines information across
the time window at the lowest level (their first convolution spans all T frames). Across
modalities: the lowest level the encoders expose is their token sequence over time, so the
modalities' tokens at the same moment are concatenated and one shared temporal model (a
small transformer encoder or a bidirectional GRU) runs over the fused sequence.

Alignment: encoders give different numbers of tokens over the same time window (the data
loader samples one window for every modality). Each modality's *valid* tokens are taken
to cover the window evenly and are resampled to ``steps`` equal divisions of it, by
adaptive average pooling over the valid tokens (``align="pool"``, the default: nothing is
skipped when downsampling) or linear interpolation at the step centres
(``align="interpolate"``); see :func:`fusion.layers.alignment_weights`. Padded tokens are
never read, so padding does not change the output.

Departures, and why: each modality's aligned tokens pass a LayerNorm before the
concatenation (encoders' feature scales differ by orders of magnitude); a missing modality
gives zeros in its slot, plus a 0/1 presence feature per modality so that the model can
tell "missing" from "all zero"; the fused sequence is mean-pooled over its steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import torch
from torch import Tensor, nn

from multimodal_har.encoders import EncoderOutput

from . import FusionOutput
from .base import Fusion, zero_missing
from .layers import ALIGN_MODES, align_tokens, sinusoidal_encoding

TEMPORAL = ("transformer", "gru")


class EarlyFusion(Fusion):
    """Concatenate time-aligned tokens of all modalities, then one shared temporal model.

    Args:
        dims: each modality's encoder ``out_dim``.
        steps: common number of time steps the token sequences are resampled to.
        align: ``pool`` or ``interpolate`` (see the module docstring).
        width: model width (``out_dim``).
        temporal: ``transformer`` (pre-norm encoder, sinusoidal positions) or ``gru``
            (bidirectional, ``width // 2`` units per direction; ``width`` must be even).
        layers: transformer / GRU layers.
        heads: attention heads (transformer).
        dropout: inside the temporal model.
    """

    def __init__(self, *, dims: Mapping[str, int], steps: int = 8, align: str = "pool", width: int = 128,
                 temporal: str = "transformer", layers: int = 2, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__(dims=dims)
        if align not in ALIGN_MODES:
            raise ValueError(f"unknown alignment {align!r}; valid choices: {', '.join(ALIGN_MODES)}")
        if temporal not in TEMPORAL:
            raise ValueError(f"unknown temporal model {temporal!r}; valid choices: {', '.join(TEMPORAL)}")
        if steps < 1 or layers < 1:
            raise ValueError(f"steps and layers must be >= 1, got steps={steps}, layers={layers}")
        if temporal == "transformer" and width % heads:
            raise ValueError(f"width ({width}) must be divisible by heads ({heads})")
        if temporal == "gru" and width % 2:
            raise ValueError(f"width must be even for the bidirectional GRU, got {width}")
        self.steps, self.align, self.temporal = steps, align, temporal
        self.out_dim = width
        M = len(self.modalities)
        self.norms = nn.ModuleDict({m: nn.LayerNorm(d) for m, d in self.dims.items()})
        self.proj = nn.Linear(sum(self.dims.values()) + M, width)
        if temporal == "transformer":
            layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout, activation="gelu",
                                               batch_first=True, norm_first=True)
            self.model = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        else:
            self.model = nn.GRU(width, width // 2, num_layers=layers, batch_first=True, bidirectional=True,
                                dropout=dropout if layers > 1 else 0.0)
        self.norm = nn.LayerNorm(width)

    def forward(self, outputs: Mapping[str, Optional[EncoderOutput]], present: Optional[Tensor] = None) -> FusionOutput:
        """
        Args:
            outputs: ``{modality: EncoderOutput | None}``; ``tokens (B, T'_m, D_m)`` with
                ``mask (B, T'_m)`` are used.
            present: ``(B, M)`` bool, False where a modality is missing for a sample.

        Returns:
            ``embedding (B, width)`` (zeros for a sample with no modality); extras:
            ``present (B, M)``, ``tokens (B, steps, width)`` the fused sequence.
        """
        inp = self.gather(outputs, present, tokens=True)
        B, S = inp.batch, self.steps
        ref = next(o.tokens for o in inp.outputs if o is not None)
        parts = []
        for i, (m, o, mask) in enumerate(zip(self.modalities, inp.outputs, inp.masks)):
            if o is None:
                parts.append(ref.new_zeros(B, S, self.dims[m]))
                continue
            x = self.norms[m](align_tokens(o.tokens, mask, S, self.align))  # (B, S, D_m)
            parts.append(zero_missing(x, inp.present[:, i]))
        flags = inp.present.to(ref.dtype)[:, None, :].expand(B, S, -1)  # (B, S, M)
        h = self.proj(torch.cat([*parts, flags], dim=-1))  # (B, S, sum D_m + M) -> (B, S, W)
        if self.temporal == "transformer":
            pos = torch.arange(S, device=h.device, dtype=torch.float32)[None].expand(B, S)
            h = self.model(h + sinusoidal_encoding(pos, self.out_dim).to(h.dtype))
        else:
            h, _ = self.model(h)  # (B, S, 2 * W/2)
        h = self.norm(h)
        emb = zero_missing(h.mean(dim=1), inp.present.any(dim=1))  # (B, W)
        return FusionOutput(embedding=emb, logits=None, extras={"present": inp.present, "tokens": h})
