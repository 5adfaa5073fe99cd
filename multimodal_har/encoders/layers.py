"""Small blocks shared by the encoders: masks, masked pooling and masked batch norm.

:class:`MaskedBatchNorm`: Batch normalisation whose statistics ignore padded time steps.

``nn.BatchNorm`` in training mode averages over every position of the batch, padding
included, so a batch of variable-length sequences is normalised with statistics that depend
on how much padding it carries (and on what the padding holds). :class:`MaskedBatchNorm`
computes the batch mean and variance over valid positions only; in eval mode it is exactly
``nn.BatchNorm`` (running statistics). Its parameters and buffers carry the same names as
``nn.BatchNorm*d`` (``weight``, ``bias``, ``running_mean``, ``running_var``,
``num_batches_tracked``), so state dicts of ordinary BN layers load into it.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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


class MaskedBatchNorm(nn.Module):
    """Batch norm over channel dim 1 of ``x (B, C, *S)``, statistics over valid positions.

    Args:
        num_features: ``C``.
        eps, momentum: as ``nn.BatchNorm`` (``momentum`` must be a float here).
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            x: ``(B, C, *S)``.
            mask: ``None`` (every position valid) or a bool tensor broadcastable to
                ``(B, 1, *S)``, True where a position is valid, e.g. ``(B, 1, T)`` for
                ``x (B, C, T)`` or ``(B, 1, T, 1)`` for ``x (B, C, T, F)``.

        Returns:
            ``(B, C, *S)``; invalid positions are normalised too (with the valid positions'
            statistics) and are the caller's to zero.
        """
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"expected x of shape (B, {self.num_features}, ...), got {tuple(x.shape)}")
        if not self.training or mask is None:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                training=self.training, momentum=self.momentum, eps=self.eps)
        shape = (x.shape[0], 1, *x.shape[2:])
        w = mask.to(x.dtype).expand(shape)  # (B, 1, *S)
        dims = [0, *range(2, x.ndim)]
        n = w.sum()
        mean = (x * w).sum(dims) / n.clamp(min=1.0)  # (C,)
        view = (1, -1) + (1,) * (x.ndim - 2)
        var = ((x - mean.view(view)) ** 2 * w).sum(dims) / n.clamp(min=1.0)  # biased, as BN normalises
        if n > 1:  # a batch with fewer than two valid positions says nothing about the variance
            with torch.no_grad():
                self.num_batches_tracked += 1
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach() * n / (n - 1), self.momentum)  # unbiased, as BN keeps
        y = (x - mean.view(view)) * torch.rsqrt(var.view(view) + self.eps)
        return y * self.weight.view(view) + self.bias.view(view)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
