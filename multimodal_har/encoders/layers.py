"""Small blocks shared by the encoders: masks and masked pooling."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def masked_mean(tokens: Tensor, mask: Tensor) -> Tensor:
    """``tokens (B, T, D)``, ``mask (B, T)`` bool -> ``(B, D)``: the mean over valid tokens
    (zeros for a sample with none)."""
    w = mask.to(tokens.dtype)[..., None]  # (B, T, 1)
    return (tokens * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)


def default_mask(mask: Optional[Tensor], batch: int, steps: int, device) -> Tensor:
    """``mask`` checked to be ``(batch, steps)`` and made bool, or all True when ``None``."""
    if mask is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    if tuple(mask.shape) != (batch, steps):
        raise ValueError(f"mask must be (B, T) = {(batch, steps)}, got {tuple(mask.shape)}")
    return mask.to(device=device, dtype=torch.bool)


def downsample_mask(mask: Tensor, steps: int) -> Tensor:
    """``(B, T)`` frame mask -> ``(B, steps)`` for features that cover ``T`` frames in
    ``steps`` equal windows: a window is valid when any of its frames is."""
    B, T = mask.shape
    if steps == T:
        return mask
    idx = torch.arange(steps, device=mask.device)
    start = (idx * T) // steps
    stop = torch.maximum(((idx + 1) * T + steps - 1) // steps, start + 1)
    c = torch.nn.functional.pad(mask.to(torch.int32).cumsum(dim=1), (1, 0))  # (B, T+1)
    return (c[:, stop] - c[:, start]) > 0
