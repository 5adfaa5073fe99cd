"""Late fusion of per-modality predictions.

Score fusion as in the two-stream network (Simonyan & Zisserman, "Two-Stream Convolutional
Networks for Action Recognition in Videos", NeurIPS 2014: the average of the streams'
softmax scores) and TSN (Wang et al., "Temporal Segment Networks", ECCV 2016: a weighted
average, RGB:flow = 1:1.5), with a learned alternative: softmax-normalised weights, or a
gate that weighs the modalities per sample from their embeddings (a mixture of experts
over modality classifiers). "Late" in the sense of Karpathy et al., CVPR 2014, taken to
the end: the modalities meet only at the class scores.

Each modality has its own linear head on its pooled embedding; the fused probability is
``p = sum_m w_m softmax(head_m(pooled_m))`` over the modalities present in the sample, the
weights renormalised over them (a missing modality is excluded, not counted as zero).

Departures, and why: we fuse probabilities, also for the weighted mode where TSN's code
sums raw scores, so that every mode has the same scale and missing modalities renormalise
cleanly; ``logits`` are ``log p`` (computed in log space), so cross-entropy on them is the
negative log-likelihood of the fused prediction.

``mode="poe"`` is the other classical score fusion, a product of experts (Hinton, "Training
Products of Experts by Minimizing Contrastive Divergence", Neural Computation 2002; the
"multiply the probabilities of separately trained models" ensemble): ``log p = log_softmax(
sum_m w_m log p_m)`` over the present modalities (weights: ``weights`` or 1). A confident
modality can veto the others, which a mean cannot; measured on UTD-MHAD skeleton + inertial,
the product of two separately trained models beat their mean (benchmarks/README.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from multimodal_har.encoders import EncoderOutput

from . import FusionOutput
from .base import Fusion, masked_softmax, renormalise, zero_missing

MODES = ("mean", "fixed", "learned", "gate", "poe")


class LateFusion(Fusion):
    """Per-modality linear heads whose class probabilities are averaged with weights.

    Args:
        dims: each modality's encoder ``out_dim``.
        num_classes: classes of every head.
        mode: how the present modalities are weighted:
            ``mean`` (equal weights), ``fixed`` (``weights``, e.g. TSN's rgb 1, flow 1.5),
            ``learned`` (one learnable score per modality, softmax over the present ones;
            initialised from ``weights`` when given, else equal) or ``gate`` (scores from a
            learned gate on the concatenated embeddings and presence, softmax per sample
            over the present ones) or ``poe`` (product of experts: the weighted sum of the
            present modalities' log-probabilities, renormalised; ``weights`` or 1 each).
        weights: ``{modality: weight > 0}`` or a sequence in modality order (``fixed``,
            ``learned``, ``poe``).
        gate_hidden: hidden width of the gate's MLP; 0: a single linear layer.
        dropout: on each pooled embedding before its head.

    ``out_dim = num_classes``; ``produces_logits = True``.
    """

    produces_logits = True

    def __init__(self, *, dims: Mapping[str, int], num_classes: int, mode: str = "mean",
                 weights: Union[Mapping[str, float], Sequence[float], None] = None, gate_hidden: int = 0,
                 dropout: float = 0.0) -> None:
        super().__init__(dims=dims)
        if mode not in MODES:
            raise ValueError(f"unknown late fusion mode {mode!r}; valid choices: {', '.join(MODES)}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        self.mode = mode
        self.num_classes = self.out_dim = num_classes
        M = len(self.modalities)
        self.heads = nn.ModuleDict({m: nn.Linear(d, num_classes) for m, d in self.dims.items()})
        self.drop = nn.Dropout(dropout)
        if weights is not None and mode not in ("fixed", "learned", "poe"):
            raise ValueError(f"weights are used by the 'fixed', 'learned' and 'poe' modes, not {mode!r}")
        if mode == "fixed" and weights is None:
            raise ValueError("mode 'fixed' needs weights, e.g. {'rgb': 1.0, 'flow': 1.5}")
        w = self._weights_tensor(weights) if weights is not None else torch.ones(M)
        self.register_buffer("fixed_weights", w if mode in ("fixed", "poe") else None)
        self.weight_logits = nn.Parameter(w.log()) if mode == "learned" else None
        self.gate = None
        if mode == "gate":
            n_in = sum(self.dims.values()) + M
            self.gate = (nn.Linear(n_in, M) if gate_hidden <= 0 else
                         nn.Sequential(nn.Linear(n_in, gate_hidden), nn.ReLU(), nn.Linear(gate_hidden, M)))

    def _weights_tensor(self, weights: Union[Mapping[str, float], Sequence[float]]) -> Tensor:
        if isinstance(weights, Mapping):
            if set(weights) != set(self.modalities):
                raise ValueError(f"weights must name every modality ({', '.join(self.modalities)}), "
                                 f"got {', '.join(map(str, weights))}")
            values = [float(weights[m]) for m in self.modalities]
        else:
            values = [float(v) for v in weights]
            if len(values) != len(self.modalities):
                raise ValueError(f"weights must hold {len(self.modalities)} values in the order "
                                 f"{', '.join(self.modalities)}, got {len(values)}")
        if not all(v > 0 for v in values):
            raise ValueError(f"weights must be > 0 (a modality to ignore is left out of dims), got {values}")
        return torch.tensor(values)

    def forward(self, outputs: Mapping[str, Optional[EncoderOutput]], present: Optional[Tensor] = None) -> FusionOutput:
        """
        Args:
            outputs: ``{modality: EncoderOutput | None}``; only ``pooled (B, D_m)`` is used.
            present: ``(B, M)`` bool, False where a modality is missing for a sample.

        Returns:
            ``logits (B, C)`` = ``log p``, ``embedding (B, C)`` = ``p`` (uniform for a sample
            with no modality); extras: ``weights (B, M)`` (zero where missing, rows sum to 1),
            ``modality_logits {m: (B, C)}`` for the modalities given (rows where ``m`` is
            missing: the head applied to zeros, to be ignored), ``present (B, M)``.
        """
        inp = self.gather(outputs, present)
        B, C = inp.batch, self.num_classes
        ref = next(o.pooled for o in inp.outputs if o is not None)
        log_probs, modality_logits, feats = [], {}, []
        for i, (m, o) in enumerate(zip(self.modalities, inp.outputs)):
            if o is None:
                log_probs.append(ref.new_zeros(B, C, dtype=torch.float32))
                feats.append(ref.new_zeros(B, self.dims[m]))
                continue
            x = zero_missing(o.pooled, inp.present[:, i])
            feats.append(x)
            z = self.heads[m](self.drop(x))  # (B, C)
            modality_logits[m] = z
            log_probs.append(torch.log_softmax(z.float(), dim=-1))
        lp = torch.stack(log_probs, dim=1)  # (B, M, C)
        if self.mode == "poe":
            return self._product(lp, inp.present, modality_logits)
        w = self._weights(feats, inp.present).float()  # (B, M)
        # log p = logsumexp_m(log w_m + log p_m) over the present m; absent entries get the
        # lowest finite value (not -inf) so that an empty row stays finite, gradient included.
        tiny, low = torch.finfo(torch.float32).tiny, torch.finfo(torch.float32).min
        s = (w.clamp(min=tiny).log()[..., None] + lp).masked_fill(~inp.present[..., None], low)
        logits = torch.logsumexp(s, dim=1)  # (B, C)
        empty = ~inp.present.any(dim=1, keepdim=True)  # (B, 1)
        logits = torch.where(empty, -math.log(C), logits)  # uniform
        extras = {"weights": w, "modality_logits": modality_logits, "present": inp.present}
        return FusionOutput(embedding=logits.exp(), logits=logits, extras=extras)

    def _product(self, lp: Tensor, present: Tensor, modality_logits: dict) -> FusionOutput:
        """Product of experts: ``lp (B, M, C)`` log-probabilities -> ``log_softmax(sum_m w_m
        lp_m)`` over the present modalities; uniform for a sample with none."""
        w = self.fixed_weights.to(lp.device, torch.float32).expand(present.shape) * present.float()  # (B, M)
        # where, not a product: a missing modality's log-probabilities are never read
        s = torch.where(present[..., None], w[..., None] * lp, 0.0).sum(dim=1)  # (B, C)
        logits = torch.log_softmax(s, dim=-1)  # all-zero rows (nothing present) give uniform
        extras = {"weights": w / w.sum(dim=1, keepdim=True).clamp(min=torch.finfo(w.dtype).tiny),
                  "modality_logits": modality_logits, "present": present}
        return FusionOutput(embedding=logits.exp(), logits=logits, extras=extras)

    def _weights(self, feats: list[Tensor], present: Tensor) -> Tensor:
        """``(B, M)`` fusion weights, zero where missing, rows summing to 1 (or all zero)."""
        if self.mode == "mean":
            return renormalise(torch.ones(present.shape[1], device=present.device), present)
        if self.mode == "fixed":
            return renormalise(self.fixed_weights, present)
        if self.mode == "learned":
            return masked_softmax(self.weight_logits.expand(present.shape), present)
        g = torch.cat([*feats, present.to(feats[0].dtype)], dim=1)  # (B, sum D_m + M)
        return masked_softmax(self.gate(g).float(), present)
