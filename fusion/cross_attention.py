"""Cross-modal attention fusion, Dyadformer-style.

Curto, Clapes, Selva, Smeureanu, Jacques Junior, Gallardo-Pujol, Guilera, Leiva, Moeslund,
Escalera, Palmero, "Dyadformer: A Multi-modal Transformer for Long-Range Modeling of Dyadic
Interactions", ICCV 2021 workshops. Each modality is a sequence of chunk embeddings with
positional encodings; per-modality self-attention encoders; cross-modal attention encoders
(queries from one modality, keys and values from the other); pooling and a head.

Here, for action recognition with any number of modalities (the encoders' token sequences
are the chunk embeddings):

1. per modality: a linear projection to ``width``, plus a sinusoidal encoding of each
   token's time (``extras["timestamps"] (B, T')`` in seconds from the encoder, scaled by
   ``time_scale`` positions per second, else the token index), plus a learned
   modality-type embedding;
2. ``self_layers`` pre-norm self-attention blocks per modality (weights not shared);
3. ``cross_layers`` cross-modal layers: every modality queries each other modality with its
   own attention (keys/values: that modality's tokens, padded and missing ones masked);
   the updates from the other modalities present in the sample are averaged, added as a
   residual, then a feed-forward; all modalities are updated in parallel from the previous
   layer's states;
4. a masked mean over each modality's valid tokens, a mean over the modalities present in
   the sample, LayerNorm: ``embedding (B, width)``; a head classifies it.

Departures, and why: Dyadformer has two modalities and two subjects; with ``M`` modalities
each pair has its own attention and a query modality averages what it gets from the others
(the average keeps the scale independent of how many are present). The cross-subject stage
is left out (one actor stream per sample here; several people are the encoders' business).
Pre-norm blocks (stable training without warm-up tricks). Timestamps, when given, place
modalities of different token rates on one time axis. Masked attention: a query whose key
modality has no valid token in a sample attends to one dummy position and its result is
discarded (excluded from the average), so an all-masked row never reaches the softmax: no
NaN, in the output or the gradient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import torch
from torch import Tensor, nn

from multimodal_har.encoders import EncoderOutput

from . import FusionOutput
from .base import Fusion, zero_missing
from .layers import sinusoidal_encoding


def key_padding(mask: Tensor) -> Tensor:
    """Token mask ``(B, T)`` (True = valid) -> ``key_padding_mask`` (True = ignore) for
    :class:`nn.MultiheadAttention`, with position 0 let through in rows that have no valid
    token (their result must be discarded by the caller), so that no softmax row is empty."""
    empty = ~mask.any(dim=1, keepdim=True)  # (B, 1)
    pad = ~mask
    return torch.cat([pad[:, :1] & ~empty, pad[:, 1:]], dim=1)


class FeedForward(nn.Sequential):
    def __init__(self, width: int, hidden: int, dropout: float) -> None:
        super().__init__(nn.LayerNorm(width), nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, width), nn.Dropout(dropout))


class SelfAttentionBlock(nn.Module):
    """Pre-norm transformer encoder block: ``x (B, T, W)``, ``mask (B, T)`` -> ``(B, T, W)``,
    attention ``(B, T, T)`` (mean over heads) or None."""

    def __init__(self, *, width: int, heads: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.ff = FeedForward(width, hidden, dropout)

    def forward(self, x: Tensor, mask: Tensor, need_weights: bool = False) -> tuple[Tensor, Optional[Tensor]]:
        h = self.norm(x)
        a, w = self.attn(h, h, h, key_padding_mask=key_padding(mask), need_weights=need_weights)
        x = x + self.drop(a)
        return x + self.ff(x), w


class CrossModalLayer(nn.Module):
    """Every modality attends to each other one; ``xs {m: (B, T_m, W)}``, ``masks {m: (B, T_m)}``
    -> updated ``xs``, attention ``{"q->k": (B, T_q, T_k)}`` (mean over heads) when asked."""

    def __init__(self, *, modalities: tuple[str, ...], width: int, heads: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm_q = nn.ModuleDict({m: nn.LayerNorm(width) for m in modalities})
        self.norm_kv = nn.ModuleDict({m: nn.LayerNorm(width) for m in modalities})
        self.attn = nn.ModuleDict({f"{q}->{k}": nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
                                   for q in modalities for k in modalities if k != q})
        self.drop = nn.Dropout(dropout)
        self.ff = nn.ModuleDict({m: FeedForward(width, hidden, dropout) for m in modalities})

    def forward(self, xs: dict[str, Tensor], masks: dict[str, Tensor],
                need_weights: bool = False) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        kv = {k: self.norm_kv[k](x) for k, x in xs.items()}
        pads = {k: key_padding(m) for k, m in masks.items()}
        out, weights = {}, {}
        for q, x in xs.items():
            hq = self.norm_q[q](x)
            total, count = torch.zeros_like(x), x.new_zeros(x.shape[0])
            for k in xs:
                if k == q:
                    continue
                a, w = self.attn[f"{q}->{k}"](hq, kv[k], kv[k], key_padding_mask=pads[k], need_weights=need_weights)
                has_k = masks[k].any(dim=1)  # (B,): otherwise a came from the dummy key: discard it
                total = total + zero_missing(a, has_k)
                count = count + has_k.to(x.dtype)
                if need_weights:
                    weights[f"{q}->{k}"] = zero_missing(w, has_k)
            x = x + self.drop(total / count.clamp(min=1.0)[:, None, None])
            out[q] = x + self.ff[q](x)
        return out, weights


class CrossAttentionFusion(Fusion):
    """Per-modality self-attention, then cross-modal attention, then pooling (see the module).

    Args:
        dims: each modality's encoder ``out_dim``.
        width: common width (``out_dim``); divisible by ``heads``.
        heads: attention heads.
        self_layers: self-attention blocks per modality.
        cross_layers: cross-modal layers.
        hidden: feed-forward width (default ``4 * width``).
        dropout: in attention and feed-forward.
        time_scale: positions per second for ``extras["timestamps"]`` (10: a tenth of a
            second is one position of the sinusoidal encoding).
    """

    def __init__(self, *, dims: Mapping[str, int], width: int = 128, heads: int = 4, self_layers: int = 1,
                 cross_layers: int = 1, hidden: Optional[int] = None, dropout: float = 0.1,
                 time_scale: float = 10.0) -> None:
        super().__init__(dims=dims)
        if width % heads:
            raise ValueError(f"width ({width}) must be divisible by heads ({heads})")
        if self_layers < 0 or cross_layers < 0:
            raise ValueError(f"layer counts must be >= 0, got self_layers={self_layers}, cross_layers={cross_layers}")
        self.out_dim = width
        self.time_scale = float(time_scale)
        hidden = 4 * width if hidden is None else hidden
        M = len(self.modalities)
        self.proj = nn.ModuleDict({m: nn.Linear(d, width) for m, d in self.dims.items()})
        self.type_embed = nn.Parameter(torch.randn(M, width) * 0.02)
        block = dict(width=width, heads=heads, hidden=hidden, dropout=dropout)
        self.self_blocks = nn.ModuleDict({m: nn.ModuleList(SelfAttentionBlock(**block) for _ in range(self_layers))
                                          for m in self.modalities})
        self.cross = nn.ModuleList(CrossModalLayer(modalities=self.modalities, **block) for _ in range(cross_layers))
        self.norm = nn.LayerNorm(width)

    def positions(self, m: str, o: EncoderOutput, mask: Tensor) -> Tensor:
        """``(B, T')`` positions of modality ``m``'s tokens: scaled timestamps or indices."""
        B, T = mask.shape
        ts = o.extras.get("timestamps") if isinstance(o.extras, Mapping) else None
        if ts is None:
            return torch.arange(T, device=mask.device, dtype=torch.float32)[None].expand(B, T)
        if tuple(ts.shape) != (B, T):
            raise ValueError(f"{m}: extras['timestamps'] must be (B, T') = ({B}, {T}) seconds, got {tuple(ts.shape)}")
        return torch.where(mask, ts.float() * self.time_scale, 0.0)  # padded entries may hold anything

    def forward(self, outputs: Mapping[str, Optional[EncoderOutput]], present: Optional[Tensor] = None,
                return_attention: bool = False) -> FusionOutput:
        """
        Args:
            outputs: ``{modality: EncoderOutput | None}``; ``tokens (B, T'_m, D_m)``,
                ``mask (B, T'_m)`` and optional ``extras["timestamps"] (B, T'_m)`` are used.
            present: ``(B, M)`` bool, False where a modality is missing for a sample.
            return_attention: put the attention maps (mean over heads) in the extras.

        Returns:
            ``embedding (B, width)`` (zeros for a sample with no modality); extras:
            ``present (B, M)``; with ``return_attention``: ``attention = {"self": {m: [(B, T_m,
            T_m)] per layer}, "cross": {"q->k": [(B, T_q, T_k)] per layer}}``, rows of a
            sample without the key modality all zero.
        """
        inp = self.gather(outputs, present, tokens=True)
        xs, masks = {}, {}
        attn: dict = {"self": {}, "cross": {}}
        for i, (m, o, mask) in enumerate(zip(self.modalities, inp.outputs, inp.masks)):
            if o is None:
                continue
            tok = torch.where(mask[..., None], o.tokens, 0.0)  # padded/missing tokens are never read
            pe = sinusoidal_encoding(self.positions(m, o, mask), self.out_dim).to(tok.dtype)
            x = self.proj[m](tok) + pe + self.type_embed[i]  # (B, T'_m, W)
            for blk in self.self_blocks[m]:
                x, w = blk(x, mask, need_weights=return_attention)
                if return_attention:
                    attn["self"].setdefault(m, []).append(zero_missing(w, mask.any(dim=1)))
            xs[m], masks[m] = x, mask
        for layer in self.cross:
            xs, ws = layer(xs, masks, need_weights=return_attention)
            for key, w in ws.items():
                attn["cross"].setdefault(key, []).append(w)
        pooled, weight = [], []
        for m, x in xs.items():
            w = masks[m].to(x.dtype)[..., None]  # (B, T, 1)
            pooled.append((self.norm(x) * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0))  # (B, W)
            weight.append(masks[m].any(dim=1))
        p = torch.stack(weight, dim=1).to(pooled[0].dtype)  # (B, M_given)
        emb = torch.einsum("bmw,bm->bw", torch.stack(pooled, dim=1), p / p.sum(dim=1, keepdim=True).clamp(min=1.0))
        extras = {"present": inp.present}
        if return_attention:
            extras["attention"] = attn
        return FusionOutput(embedding=emb, logits=None, extras=extras)
