"""Small blocks shared by the fusion methods: time alignment of token sequences and
sinusoidal encodings of (possibly fractional) positions."""

from __future__ import annotations

import math

import torch
from torch import Tensor

ALIGN_MODES = ("pool", "interpolate")


def alignment_weights(mask: Tensor, steps: int, mode: str = "pool") -> Tensor:
    """``mask (B, T)`` bool -> ``W (B, steps, T)``: ``W @ tokens`` resamples each sample's
    valid tokens to ``steps`` equal divisions of its own valid time span.

    The ``n`` valid tokens of a sample (in order, wherever they sit) are taken to cover
    normalised time ``[0, 1]`` evenly, token ``r`` the interval ``[r/n, (r+1)/n)``;
    output step ``j`` covers ``[j/steps, (j+1)/steps)``.

    * ``pool``: adaptive average pooling over valid tokens: step ``j`` is the mean of the
      tokens ``floor(j*n/steps) .. ceil((j+1)*n/steps) - 1`` (at least one); with
      ``n < steps`` a token is repeated, with ``n > steps`` nothing is skipped.
    * ``interpolate``: linear interpolation at the step centres ``(j + 0.5) / steps``
      (``align_corners=False`` convention, clamped to the first/last valid token).

    Padded tokens get weight 0; a sample with no valid token gets an all-zero row.
    """
    if mode not in ALIGN_MODES:
        raise ValueError(f"unknown alignment {mode!r}; valid choices: {', '.join(ALIGN_MODES)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    B, T = mask.shape
    n = mask.sum(dim=1)  # (B,)
    rank = (mask.long().cumsum(dim=1) - 1)[:, None, :]  # (B, 1, T): index among the valid tokens
    j = torch.arange(steps, device=mask.device)[None, :]  # (1, S)
    valid = mask[:, None, :]  # (B, 1, T)
    if mode == "pool":
        start = (j * n[:, None]) // steps  # (B, S)
        stop = torch.maximum(((j + 1) * n[:, None] + steps - 1) // steps, start + 1)
        inside = (rank >= start[..., None]) & (rank < stop[..., None]) & valid  # (B, S, T)
        return inside.float() / (stop - start)[..., None].float()
    nf = n.clamp(min=1).float()[:, None]  # (B, 1)
    pos = ((j + 0.5) * nf / steps - 0.5).clamp(min=0.0)
    pos = torch.minimum(pos, nf - 1)  # (B, S) fractional index among the valid tokens
    i0 = pos.floor()
    frac = (pos - i0)[..., None]  # (B, S, 1)
    i0 = i0.long()[..., None]
    i1 = torch.minimum(i0 + 1, (nf.long() - 1)[..., None])
    w = (rank == i0).float() * (1 - frac) + (rank == i1).float() * frac  # (B, S, T)
    return w * valid


def align_tokens(tokens: Tensor, mask: Tensor, steps: int, mode: str = "pool") -> Tensor:
    """``tokens (B, T, D)``, ``mask (B, T)`` bool -> ``(B, steps, D)``: the valid part of each
    sample resampled to ``steps`` steps (see :func:`alignment_weights`); padded tokens are
    never read (zeroed first, so even NaN there cannot leak), a sample with none gives zeros."""
    W = alignment_weights(mask, steps, mode).to(tokens.dtype)  # (B, S, T)
    x = torch.where(mask[..., None], tokens, torch.zeros((), dtype=tokens.dtype, device=tokens.device))
    return W @ x  # (B, S, T) @ (B, T, D) -> (B, S, D)


def sinusoidal_encoding(positions: Tensor, width: int, base: float = 10000.0) -> Tensor:
    """``positions (B, T)`` float (token index or scaled time, fractional allowed) ->
    ``(B, T, width)``: ``[sin(p * f_i), cos(p * f_i)]`` with ``f_i = base^(-2i/width)``
    (Vaswani et al. 2017, sines and cosines in two halves rather than interleaved)."""
    half = (width + 1) // 2
    freq = torch.exp(-math.log(base) * 2 * torch.arange(half, device=positions.device, dtype=torch.float32) / width)
    angle = positions.float()[..., None] * freq  # (B, T, half)
    return torch.cat([angle.sin(), angle.cos()], dim=-1)[..., :width]
