"""Input corruptions for robustness curves: noisy poses, silent audio, frozen video.

Each is a pure function of one modality's batch input ``{"x": (B, T, ...), "mask": (B, T)}``
(the batch format of :func:`multimodal_har.data.dataset.collate`; ``mask`` True on valid
steps, optional) and a ``strength`` in ``[0, 1]``: the fraction of each sample's valid time
steps affected, ``round(strength * L)`` of its ``L`` valid steps (0: the input unchanged).
They return a new dict (other keys passed through, the input untouched) and never touch
padded steps. Randomness comes from an optional ``torch.Generator`` (CPU) for reproducible
curves.

* :func:`pose_noise`: Gaussian noise of ``sigma`` metres (store poses are 3D joints in
  metres) added to the coordinates of randomly chosen frames; empty person slots (all-zero
  joints in a frame) stay empty, so the noise makes no phantom people.
* :func:`audio_silence`: a contiguous run of log-mel frames, at a random position, set to the
  floor: ``log(log_eps)`` of the audio extractor (``log(0 + 1e-6)``: digital silence) or,
  with ``floor="min"``, the sample's own minimum over its valid frames (for spectrograms
  normalised some other way).
* :func:`frozen_frames`: the video stalls on the window's first frame: the first
  ``round(strength * (L - 1))`` frames after it repeat it (strength 1: the whole window is
  that frame). Works for frames, segments or flow stacks: anything ``(B, T, ...)``.

:func:`corrupt_batch` applies one by name (:data:`CORRUPTIONS`) to a model input of a batch;
:func:`corruption_of_kind` is the one a stream kind declares (``Kind.corruption``,
:mod:`multimodal_har.data.kinds`), which the robustness curves apply.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Optional, Union

import torch
from torch import Tensor

SILENCE_LOGMEL = math.log(1e-6)  # extractors.audio.AudioConfig.log_eps: log(mel power 0 + eps)


def _unpack(inp: Mapping[str, Any], strength: float, min_dim: int) -> tuple[Tensor, Tensor]:
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"strength must be in [0, 1] (fraction of the sample affected), got {strength}")
    if "x" not in inp:
        raise ValueError(f"expected an input dict with 'x' (B, T, ...) and optional 'mask' (B, T), got keys {list(inp)}")
    x = inp["x"]
    if not isinstance(x, Tensor) or x.dim() < min_dim:
        raise ValueError(f"x must be a tensor with at least {min_dim} dims (B, T, ...), got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    mask = inp.get("mask")
    if mask is None:
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    if mask.shape != x.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool (B, T) = {tuple(x.shape[:2])}, got {mask.dtype} {tuple(mask.shape)}")
    return x, mask


def _counts(mask: Tensor, strength: float, offset: int = 0) -> Tensor:
    """``(B,)`` affected steps per sample: ``round(strength * (L - offset))`` (half up)."""
    n = mask.sum(dim=1) - offset
    return torch.floor(strength * n.clamp(min=0).double() + 0.5).long()


def _rank(mask: Tensor) -> Tensor:
    """``(B, T)``: index of each valid step among the sample's valid steps (-1 on padding)."""
    return torch.where(mask, mask.long().cumsum(dim=1) - 1, torch.full_like(mask, -1, dtype=torch.long))


def _uniform(shape: tuple[int, ...], generator: Optional[torch.Generator], device) -> Tensor:
    return torch.rand(shape, generator=generator, dtype=torch.float64).to(device)


def pose_noise(inp: Mapping[str, Any], strength: float, *, sigma: float = 0.05, coords: int = 3,
               generator: Optional[torch.Generator] = None) -> dict[str, Any]:
    """Gaussian noise (std ``sigma`` metres) on the first ``coords`` channels of
    ``round(strength * L)`` randomly chosen valid frames of each sample.

    Args:
        inp: ``{"x": (B, T, M, V, C) or (B, T, V, C), "mask": (B, T)}``.
    Returns:
        the same dict with a new ``x`` of the same shape.
    """
    x, mask = _unpack(inp, strength, 4)
    if sigma < 0 or not 1 <= coords <= x.shape[-1]:
        raise ValueError(f"need sigma >= 0 and 1 <= coords <= C = {x.shape[-1]}, got {sigma}, {coords}")
    B, T = mask.shape
    n = _counts(mask, strength)  # (B,)
    # random order of the valid frames: random keys, padding last
    keys = torch.where(mask, _uniform((B, T), generator, x.device), torch.full((B, T), 2.0, dtype=torch.float64,
                                                                                device=x.device))
    order = keys.argsort(dim=1).argsort(dim=1)  # (B, T) position of each step in the random order
    hit = mask & (order < n[:, None])  # (B, T)
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float64).to(x.device, x.dtype) * sigma
    noise[..., coords:] = 0
    # a person slot is empty in a frame when all its joints are zero: (B, T, [M,] V, C) -> (B, T, [M,] 1, 1)
    occupied = (x != 0).any(dim=-1, keepdim=True).any(dim=-2, keepdim=True)
    sel = hit.view(B, T, *([1] * (x.dim() - 2)))
    return {**inp, "x": torch.where(sel & occupied, x + noise, x)}


def audio_silence(inp: Mapping[str, Any], strength: float, *, floor: Union[float, str, None] = None,
                  generator: Optional[torch.Generator] = None) -> dict[str, Any]:
    """A contiguous run of ``round(strength * L)`` valid log-mel frames, at a random start,
    set to the silence floor (``None``: :data:`SILENCE_LOGMEL`; ``"min"``: the sample's minimum
    over its valid frames; or a float).

    Args:
        inp: ``{"x": (B, T, n_mels), "mask": (B, T)}``.
    Returns:
        the same dict with a new ``x (B, T, n_mels)``.
    """
    x, mask = _unpack(inp, strength, 3)
    B, T = mask.shape
    if floor is None:
        fill = torch.full((B,), SILENCE_LOGMEL, dtype=x.dtype, device=x.device)
    elif floor == "min":
        big = torch.finfo(x.dtype).max
        fill = torch.where(mask.view(B, T, *([1] * (x.dim() - 2))), x, torch.full_like(x, big)).flatten(1).amin(dim=1)
    elif isinstance(floor, (int, float)):
        fill = torch.full((B,), float(floor), dtype=x.dtype, device=x.device)
    else:
        raise ValueError(f"floor must be None, 'min' or a float, got {floor!r}")
    n = _counts(mask, strength)
    span = (mask.sum(dim=1) - n + 1).double()  # possible start positions, >= 1
    start = torch.floor(_uniform((B,), generator, x.device) * span).long()  # (B,)
    r = _rank(mask)
    hit = mask & (r >= start[:, None]) & (r < (start + n)[:, None])  # (B, T)
    sel = hit.view(B, T, *([1] * (x.dim() - 2)))
    return {**inp, "x": torch.where(sel, fill.view(B, *([1] * (x.dim() - 1))), x)}


def frozen_frames(inp: Mapping[str, Any], strength: float, *, generator: Optional[torch.Generator] = None
                  ) -> dict[str, Any]:
    """The ``round(strength * (L - 1))`` valid frames after the first valid one replaced by it
    (deterministic; ``generator`` is accepted for a uniform signature and unused).

    Args:
        inp: ``{"x": (B, T, ...) frames / segments / flow stacks, "mask": (B, T)}``.
    Returns:
        the same dict with a new ``x`` of the same shape.
    """
    x, mask = _unpack(inp, strength, 2)
    B, T = mask.shape
    n = _counts(mask, strength, offset=1)
    r = _rank(mask)
    hit = (r >= 1) & (r <= n[:, None])  # (B, T)
    first = x[torch.arange(B, device=x.device), mask.long().argmax(dim=1)]  # (B, ...) first valid frame
    sel = hit.view(B, T, *([1] * (x.dim() - 2)))
    return {**inp, "x": torch.where(sel, first.unsqueeze(1), x)}


CORRUPTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "pose_noise": pose_noise, "audio_silence": audio_silence, "frozen_frames": frozen_frames}


def corruption_of_kind(kind: str) -> Optional[str]:
    """The corruption (:data:`CORRUPTIONS` name) that stream kind ``kind`` declares, None if none
    (signals) or if the kind is unknown ("": a stream whose kind was never resolved)."""
    from multimodal_har.data.kinds import get_kind, kind_names

    if kind not in kind_names():
        return None
    name = get_kind(kind).corruption
    if name is not None and name not in CORRUPTIONS:
        raise ValueError(f"stream kind {kind!r} declares corruption {name!r}, which is not one of "
                         f"{', '.join(CORRUPTIONS)}")
    return name


def corrupt_batch(batch: Mapping[str, Any], modality: str, corruption: str, strength: float, *,
                  generator: Optional[torch.Generator] = None, **kwargs: Any) -> dict[str, Any]:
    """A shallow copy of ``batch`` with ``batch["inputs"][modality]`` corrupted by the
    corruption named ``corruption`` (:data:`CORRUPTIONS`; ``kwargs`` go to it)."""
    if corruption not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; choose one of {', '.join(CORRUPTIONS)}")
    if modality not in batch.get("inputs", {}):
        raise ValueError(f"batch has no input {modality!r}; it has {list(batch.get('inputs', {}))}")
    inputs = dict(batch["inputs"])
    inputs[modality] = CORRUPTIONS[corruption](inputs[modality], strength, generator=generator, **kwargs)
    return {**batch, "inputs": inputs}
