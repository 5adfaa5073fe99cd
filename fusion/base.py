"""What every fusion method shares: the modality order, input checks, presence, masked weights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from multimodal_har.encoders import EncoderOutput


class FusionInputs(NamedTuple):
    """The checked inputs of one forward, in the module's modality order.

    Attributes:
        batch: ``B``.
        present: ``(B, M)`` bool, the caller's ``present`` AND given AND with a valid token.
        outputs: one :class:`EncoderOutput` per modality, ``None`` where missing for the batch.
        masks: ``(B, T'_m)`` bool token masks (ANDed with ``present``), ``None`` where the
            modality is missing or tokens were not asked for.
    """

    batch: int
    present: Tensor
    outputs: list[Optional[EncoderOutput]]
    masks: list[Optional[Tensor]]


class Fusion(nn.Module):
    """Base of the fusion methods: holds ``dims`` and checks inputs (see :mod:`fusion`).

    Args:
        dims: each modality's encoder ``out_dim``, in the modality order used by ``present``.
    """

    produces_logits = False
    out_dim: int

    def __init__(self, *, dims: Mapping[str, int]) -> None:
        super().__init__()
        if not isinstance(dims, Mapping) or not dims:
            raise ValueError(f"dims must be a non-empty dict {{modality: encoder out_dim}}, got {dims!r}")
        for name, d in dims.items():
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(f"modality names must be non-empty strings without '.', got {name!r}")
            if isinstance(d, bool) or not isinstance(d, int) or d < 1:
                raise ValueError(f"dims[{name!r}] must be a positive int (the encoder's out_dim), got {d!r}")
        self.modalities: tuple[str, ...] = tuple(dims)
        self.dims: dict[str, int] = dict(dims)

    def gather(self, outputs: Mapping[str, Optional[EncoderOutput]], present: Optional[Tensor] = None,
               *, tokens: bool = False) -> FusionInputs:
        """Check ``outputs`` / ``present`` against ``dims`` and resolve presence.

        ``tokens=True`` also checks ``tokens (B, T', D)`` and ``mask (B, T')`` (None: all valid).
        """
        if not isinstance(outputs, Mapping):
            raise ValueError(f"outputs must be a dict {{modality: EncoderOutput | None}}, got {type(outputs).__name__}")
        unknown = [k for k in outputs if k not in self.dims]
        if unknown:
            raise ValueError(f"unknown modalities {unknown}; this fusion module was built for "
                             f"{', '.join(self.modalities)}")
        given = [outputs.get(m) for m in self.modalities]
        first = next((o for o in given if o is not None), None)
        if first is None:
            raise ValueError(f"no modality given: expected an EncoderOutput for at least one of "
                             f"{', '.join(self.modalities)}")
        B, device = first.pooled.shape[0], first.pooled.device
        avail = []  # (B,) bool per modality
        masks: list[Optional[Tensor]] = []
        for m, o in zip(self.modalities, given):
            if o is None:
                avail.append(torch.zeros(B, dtype=torch.bool, device=device))
                masks.append(None)
                continue
            D = self.dims[m]
            if o.pooled.ndim != 2 or tuple(o.pooled.shape) != (B, D):
                raise ValueError(f"{m}: expected pooled of shape (B, D) = ({B}, {D}), got {tuple(o.pooled.shape)}")
            mask = None
            if tokens:
                if o.tokens is None or o.tokens.ndim != 3 or o.tokens.shape[0] != B or o.tokens.shape[2] != D:
                    got = None if o.tokens is None else tuple(o.tokens.shape)
                    raise ValueError(f"{m}: expected tokens of shape (B, T', D) = ({B}, T', {D}), got {got}")
                T = o.tokens.shape[1]
                if T < 1:
                    raise ValueError(f"{m}: tokens must hold at least one time step, got {tuple(o.tokens.shape)}")
                mask = o.mask
                if mask is None:
                    mask = torch.ones(B, T, dtype=torch.bool, device=device)
                elif tuple(mask.shape) != (B, T):
                    raise ValueError(f"{m}: expected mask of shape (B, T') = ({B}, {T}), got {tuple(mask.shape)}")
                mask = mask.to(device=device, dtype=torch.bool)
            elif o.mask is not None:  # only the presence it implies is used
                if o.mask.ndim != 2 or o.mask.shape[0] != B:
                    raise ValueError(f"{m}: expected mask of shape (B, T') with B = {B}, got {tuple(o.mask.shape)}")
                mask = o.mask.to(device=device, dtype=torch.bool)
            avail.append(mask.any(dim=1) if mask is not None else torch.ones(B, dtype=torch.bool, device=device))
            masks.append(mask)
        have = torch.stack(avail, dim=1)  # (B, M)
        if present is None:
            present = have
        else:
            if not isinstance(present, Tensor) or tuple(present.shape) != (B, len(self.modalities)):
                got = tuple(present.shape) if isinstance(present, Tensor) else type(present).__name__
                raise ValueError(f"present must be a (B, num_modalities) = ({B}, {len(self.modalities)}) bool "
                                 f"tensor, columns in the order {', '.join(self.modalities)}; got {got}")
            present = present.to(device=device, dtype=torch.bool) & have
        if tokens:
            masks = [None if k is None else k & present[:, i, None] for i, k in enumerate(masks)]
        else:
            masks = [None] * len(masks)
        return FusionInputs(batch=B, present=present, outputs=given, masks=masks)


def masked_softmax(scores: Tensor, present: Tensor) -> Tensor:
    """``scores (B, M)``, ``present (B, M)`` bool -> ``(B, M)`` softmax over the present
    entries, exactly 0 elsewhere; a row with nothing present is all zeros (no NaN, no
    NaN gradient: absent entries are filled with the dtype's lowest finite value, not -inf)."""
    low = torch.finfo(scores.dtype).min
    w = torch.softmax(scores.masked_fill(~present, low), dim=-1)
    return w * present.to(w.dtype)


def renormalise(weights: Tensor, present: Tensor) -> Tensor:
    """Non-negative ``weights (B, M)`` or ``(M,)`` -> ``(B, M)`` zero where absent, summing to 1
    over the present entries of each row (a row with nothing present: all zeros)."""
    w = weights.expand(present.shape) * present.to(weights.dtype)
    return w / w.sum(dim=-1, keepdim=True).clamp(min=torch.finfo(w.dtype).tiny)


def zero_missing(x: Tensor, present: Tensor) -> Tensor:
    """``x (B, ...)`` with the rows where ``present (B,)`` is False set to 0 (``where``, not a
    product, so NaN or inf in a missing input cannot leak into the output or the gradient)."""
    return torch.where(present.view(-1, *([1] * (x.ndim - 1))), x, torch.zeros((), dtype=x.dtype, device=x.device))
