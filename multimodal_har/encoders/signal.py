"""Temporal convolutional network for multichannel time series (wearable IMU, physiological
sensors): Bai, Kolter, Koltun, "An Empirical Evaluation of Generic Convolutional and
Recurrent Networks for Sequence Modeling", arXiv:1803.01271, 2018.

* As in the paper: residual blocks of two dilated causal 1-D convolutions, each with weight
  normalisation, ReLU and dropout; the dilation doubles per block (1, 2, 4, ...); a 1x1
  convolution on the residual path when the widths differ; ReLU after the sum. Causal
  convolutions are left zero padding by ``(kernel_size - 1) * dilation`` (the paper's
  "chomp" of symmetric padding, done as a left pad).
* Weight norm rather than batch norm, as the paper: it has no batch statistics, so it is
  the same in training and eval, the same for any padding, and keeps the network causal in
  training too (BN's statistics would mix in future and padded steps).
* Receptive field: ``1 + 2 * (kernel_size - 1) * (2 ** len(channels) - 1)`` steps (two
  convolutions per block); the output at step ``t`` sees inputs ``t - receptive_field + 1``
  to ``t``, never later ones, so right padding cannot change a valid step.
* ``input_norm``: an optional per-channel batch norm of the raw input whose training
  statistics count valid steps only (sensor channels have wildly different scales:
  m/s^2, rad/s, uS). It is the one place where padding could leak in, hence the mask.
* ``token_stride``: tokens are averaged over non-overlapping windows of ``token_stride``
  steps (ceil: a partial last window is kept, averaged over its valid steps), so fusion gets
  ``T' = ceil(T / token_stride)`` tokens. The pooled embedding is the masked mean over every
  valid step before that pooling, so it does not depend on ``token_stride``.
* Steps outside the mask are zeroed at the input (after ``input_norm``), so holes in a
  mask (dropped sensor samples) read as zeros rather than as whatever the padding holds.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from . import EncoderOutput
from .layers import MaskedBatchNorm, default_mask, masked_mean


class CausalConv1d(nn.Module):
    """Weight-normalised dilated causal convolution: ``(B, C_in, T) -> (B, C_out, T)``; the
    output at ``t`` depends on inputs ``t - (kernel_size - 1) * dilation`` to ``t``."""

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.left = (kernel_size - 1) * dilation
        self.conv = weight_norm(nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(nn.functional.pad(x, (self.left, 0)))  # (B, C_in, left + T) -> (B, C_out, T)


class TemporalBlock(nn.Module):
    """The paper's residual block: ``(B, C_in, T) -> (B, C_out, T)``."""

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int, dilation: int,
                 dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            CausalConv1d(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size,
                         dilation=dilation),
            nn.ReLU(), nn.Dropout(dropout),
            CausalConv1d(in_channels=out_channels, out_channels=out_channels, kernel_size=kernel_size,
                         dilation=dilation),
            nn.ReLU(), nn.Dropout(dropout))
        self.downsample = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        res = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.net(x) + res)


def masked_avg_tokens(steps: Tensor, valid: Tensor, stride: int) -> tuple[Tensor, Tensor]:
    """``steps (B, T, D)``, ``valid (B, T)`` -> ``(B, ceil(T / stride), D)`` means over the
    valid steps of each window, and the windows' mask (a window is valid if any step is)."""
    B, T, D = steps.shape
    To = math.ceil(T / stride)
    w = nn.functional.pad(valid.to(steps.dtype), (0, To * stride - T))  # (B, To*stride)
    x = nn.functional.pad(steps * valid[..., None], (0, 0, 0, To * stride - T))  # (B, To*stride, D)
    total = x.view(B, To, stride, D).sum(dim=2)  # (B, To, D)
    count = w.view(B, To, stride).sum(dim=2)  # (B, To)
    return total / count.clamp(min=1.0)[..., None], count > 0


class TemporalConvNet(nn.Module):
    """TCN encoder for ``(B, T, C)`` multichannel time series.

    Args:
        in_channels: ``C``, sensor channels (e.g. 3 for one accelerometer, 6 with a gyroscope).
        channels: width of each residual block; block ``i`` has dilation ``2 ** i``.
        kernel_size: of every causal convolution (>= 2).
        dropout: after each convolution's ReLU.
        token_stride: steps averaged into one output token (1: a token per step).
        input_norm: per-channel batch norm of the input over valid steps.
    """

    def __init__(self, *, in_channels: int, channels: Sequence[int] = (64, 64, 128, 128), kernel_size: int = 3,
                 dropout: float = 0.1, token_stride: int = 1, input_norm: bool = True) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty sequence of positive widths, got {tuple(channels)}")
        if kernel_size < 2:
            raise ValueError(f"kernel_size must be >= 2 (1 would see a single step), got {kernel_size}")
        if token_stride < 1:
            raise ValueError(f"token_stride must be >= 1, got {token_stride}")
        self.in_channels, self.kernel_size, self.token_stride = in_channels, kernel_size, token_stride
        self.input_norm = MaskedBatchNorm(in_channels) if input_norm else None
        blocks, c = [], in_channels
        for i, c_out in enumerate(channels):
            blocks.append(TemporalBlock(in_channels=c, out_channels=c_out, kernel_size=kernel_size,
                                        dilation=2 ** i, dropout=dropout))
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.out_dim = c

    @property
    def receptive_field(self) -> int:
        """Input steps that one output step sees: ``t - receptive_field + 1`` to ``t``."""
        return 1 + 2 * (self.kernel_size - 1) * (2 ** len(self.blocks) - 1)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> EncoderOutput:
        """
        Args:
            x: ``(B, T, C)`` samples over time, ``C = in_channels``, ``T >= 1``.
            mask: ``(B, T)`` bool, True for real steps (default: all); meant for right
                padding (valid steps first).

        Returns:
            pooled ``(B, D)`` (masked mean over valid steps), tokens ``(B, T', D)`` (zero at
            invalid tokens), mask ``(B, T')``; ``D = out_dim``,
            ``T' = ceil(T / token_stride)``.
        """
        if x.ndim != 3 or x.shape[2] != self.in_channels or x.shape[1] < 1:
            raise ValueError(f"expected x of shape (B, T, {self.in_channels}) (time steps by sensor channels) "
                             f"with T >= 1, got {tuple(x.shape)}")
        B, T, _ = x.shape
        valid = default_mask(mask, B, T, x.device)
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        h = torch.where(valid[..., None], x, zero).transpose(1, 2)  # (B, C, T); junk may be NaN
        if self.input_norm is not None:
            h = torch.where(valid[:, None], self.input_norm(h, valid[:, None]), zero)
        steps = self.blocks(h).transpose(1, 2)  # (B, D, T) -> (B, T, D)
        pooled = masked_mean(steps, valid)  # (B, D)
        if self.token_stride == 1:
            tokens = steps * valid[..., None]
        else:
            tokens, valid = masked_avg_tokens(steps, valid, self.token_stride)  # (B, T', D)
        return EncoderOutput(pooled=pooled, tokens=tokens, mask=valid)
