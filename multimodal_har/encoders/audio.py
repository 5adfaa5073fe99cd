"""Audio CNN over log-mel spectrograms, after PANNs CNN14: Kong, Cao, Iqbal, Wang, Wang,
Plumbley, "PANNs: Large-Scale Pretrained Audio Neural Networks for Audio Pattern
Recognition", IEEE/ACM TASLP 2020 (and, before it, VGGish: Hershey et al., ICASSP 2017).

* Input: ``(B, T, n_mels)`` log-mel frames as ``mhar extract audio`` stores them
  (``logmel``: 16 kHz, 25 ms window, 10 ms hop, 64 mel bands by default; see
  :mod:`extractors.audio`), with a ``(B, T)`` validity mask.
* As in PANNs: a batch norm over the mel bands of the input (``bn0``: each band normalised
  on its own), then conv blocks of [3x3 conv (no bias), BN, ReLU] x 2, 2x2 average pooling
  and dropout (0.2) after each block; CNN14's first four blocks (64, 128, 256, 512) by
  default. The frequency axis is then averaged away, leaving one token per time step of the
  last block: ``T' = ceil(T / time_downsampling)``, ``time_downsampling = 2 ** len(channels)``
  by default (16 frames = 160 ms per token).
* ``embed_dim``: PANNs' ``fc1`` (linear + ReLU), applied to every token here rather than to
  the clip embedding, so tokens and pooled embedding share one space; ``None`` skips it.
* ``pooling``: ``"mean"`` (default, masked mean over valid tokens, like the other encoders)
  or ``"meanmax"`` (PANNs: masked mean + masked max over time).

Departures, and why (all so that padding never changes the valid part):
* Frames beyond a sample's length are set to zero before every convolution, so the
  convolution sees exactly what its own zero padding shows the unpadded sample.
* Pooling is a masked average: each window's sum over its valid frames divided by their
  number, with windows that overhang the end (odd lengths) kept, as ``ceil_mode``. A padded
  frame therefore never enters a window's value, whatever it holds (NaN included).
* Batch norm statistics in training mode are taken over valid frames only
  (:class:`~multimodal_har.encoders.layers.MaskedBatchNorm`), so training on padded
  batches sees the same statistics as on unpadded ones. In eval mode this is plain BN.
* PANNs' 3-frame max+avg smoothing over time before the global pooling is left out: the
  tokens are meant for a fusion module that models time itself.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from . import EncoderOutput
from .layers import MaskedBatchNorm, default_mask, masked_mean

POOLINGS = ("mean", "meanmax")


def masked_avg_pool(h: Tensor, valid: Tensor, time: int, freq: int) -> tuple[Tensor, Tensor]:
    """Average pooling over (time, freq) windows that counts valid frames only.

    Args:
        h: ``(B, C, T, F)`` features, zero at invalid frames.
        valid: ``(B, T)`` bool.
        time, freq: window (= stride) along each axis; a partial last window is kept.

    Returns:
        ``(B, C, ceil(T / time), ceil(F / freq))`` and its ``(B, ceil(T / time))`` mask.
    """
    B, C, T, Fq = h.shape
    To, Fo = math.ceil(T / time), math.ceil(Fq / freq)
    h = nn.functional.pad(h, (0, Fo * freq - Fq, 0, To * time - T))  # (B, C, To*time, Fo*freq)
    w_t = nn.functional.pad(valid.to(h.dtype), (0, To * time - T))  # (B, To*time)
    w_f = nn.functional.pad(h.new_ones(Fq), (0, Fo * freq - Fq))  # (Fo*freq,)
    total = h.view(B, C, To, time, Fo, freq).sum(dim=(3, 5))  # (B, C, To, Fo)
    n_t = w_t.view(B, To, time).sum(dim=2)  # (B, To): valid frames per time window
    n_f = w_f.view(Fo, freq).sum(dim=1)  # (Fo,): real bands per frequency window
    count = n_t[:, None, :, None] * n_f  # (B, 1, To, Fo)
    return total / count.clamp(min=1.0), n_t > 0


class ConvBlock(nn.Module):
    """PANNs' ``ConvBlock``: ``(B, C_in, T, F) -> (B, C_out, ceil(T / pool_t), ceil(F / pool_f))``."""

    def __init__(self, *, in_channels: int, out_channels: int, pool_t: int = 2, pool_f: int = 2,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = MaskedBatchNorm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = MaskedBatchNorm(out_channels)
        self.pool_t, self.pool_f = pool_t, pool_f
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """``x (B, C_in, T, F)`` zero at invalid frames, ``valid (B, T)`` -> pooled ``x``
        (zero at invalid frames) and its mask."""
        m = valid[:, None, :, None]  # (B, 1, T, 1)
        h = torch.relu(self.bn1(self.conv1(x), m)) * m  # zero again: BN's shift moved them
        h = torch.relu(self.bn2(self.conv2(h), m)) * m
        h, valid = masked_avg_pool(h, valid, self.pool_t, self.pool_f)
        return self.dropout(h), valid


class AudioCNN(nn.Module):
    """CNN14-style encoder over variable-length log-mel spectrograms.

    Args:
        n_mels: mel bands of the input (64 as ``mhar extract audio`` stores by default).
        channels: output channels of each conv block (CNN14's first four by default; CNN14
            has six: ``(64, 128, 256, 512, 1024, 2048)``).
        time_pools: time pooling factor after each block (default 2 each, as PANNs); the
            frequency axis is always pooled by 2 (ceil).
        dropout: after each block and before ``fc1`` (PANNs: 0.2 and 0.5; one value here).
        embed_dim: width of the per-token ``fc1`` (linear + ReLU); ``None``: no ``fc1``,
            ``out_dim = channels[-1]``.
        pooling: ``"mean"`` or ``"meanmax"`` (see the module docstring).
    """

    def __init__(self, *, n_mels: int = 64, channels: Sequence[int] = (64, 128, 256, 512),
                 time_pools: Optional[Sequence[int]] = None, dropout: float = 0.2,
                 embed_dim: Optional[int] = None, pooling: str = "mean") -> None:
        super().__init__()
        if n_mels < 1:
            raise ValueError(f"n_mels must be >= 1, got {n_mels}")
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty sequence of positive widths, got {tuple(channels)}")
        time_pools = tuple(time_pools) if time_pools is not None else (2,) * len(channels)
        if len(time_pools) != len(channels) or min(time_pools) < 1:
            raise ValueError(f"time_pools must give one factor >= 1 per block ({len(channels)}), "
                             f"got {time_pools}")
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; valid choices: {', '.join(POOLINGS)}")
        if embed_dim is not None and embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1 or None, got {embed_dim}")
        self.n_mels, self.pooling, self.time_pools = n_mels, pooling, time_pools
        self.bn0 = MaskedBatchNorm(n_mels)  # per mel band, as PANNs' bn0
        blocks, c = [], 1
        for c_out, p in zip(channels, time_pools):
            blocks.append(ConvBlock(in_channels=c, out_channels=c_out, pool_t=p, dropout=dropout))
            c = c_out
        self.blocks = nn.ModuleList(blocks)
        if embed_dim is None:
            self.fc1 = None
            self.out_dim = c
        else:
            self.fc1 = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, embed_dim), nn.ReLU())
            self.out_dim = embed_dim

    @property
    def time_downsampling(self) -> int:
        """Input frames per output token: ``T' = ceil(T / time_downsampling)``."""
        return math.prod(self.time_pools)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> EncoderOutput:
        """
        Args:
            x: ``(B, T, n_mels)`` log-mel frames (the stored ``logmel`` layout), ``T >= 1``.
            mask: ``(B, T)`` bool, True for real frames (default: all).

        Returns:
            pooled ``(B, D)``, tokens ``(B, T', D)`` (zero at invalid tokens), mask
            ``(B, T')``; ``D = out_dim``, ``T' = ceil(T / time_downsampling)``. A sample with
            no valid frame gets a zero pooled embedding.
        """
        if x.ndim != 3 or x.shape[2] != self.n_mels or x.shape[1] < 1:
            raise ValueError(f"expected log-mel frames x of shape (B, T, {self.n_mels}) with T >= 1 "
                             f"(the layout `mhar extract audio` stores), got {tuple(x.shape)}")
        B, T, _ = x.shape
        valid = default_mask(mask, B, T, x.device)
        x = torch.where(valid[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))  # junk may be NaN
        h = self.bn0(x.transpose(1, 2), valid[:, None, :])  # (B, n_mels, T): a channel per band
        h = h.transpose(1, 2)[:, None] * valid[:, None, :, None]  # (B, 1, T, n_mels)
        for block in self.blocks:
            h, valid = block(h, valid)  # (B, C, T_k, F_k)
        tokens = h.mean(dim=3).transpose(1, 2)  # (B, C, T', F') -> (B, T', C)
        if self.fc1 is not None:
            tokens = self.fc1(tokens)  # (B, T', D)
        tokens = tokens * valid[..., None]
        pooled = masked_mean(tokens, valid)  # (B, D)
        if self.pooling == "meanmax":
            peak = tokens.masked_fill(~valid[..., None], float("-inf")).amax(dim=1)  # (B, D)
            pooled = pooled + torch.where(valid.any(dim=1, keepdim=True), peak, torch.zeros_like(peak))
        return EncoderOutput(pooled=pooled, tokens=tokens, mask=valid)
