"""Shared inputs for the fusion tests: tiny dims and random EncoderOutputs (no encoder needed)."""

from __future__ import annotations

import itertools

import torch

from multimodal_har.fusion import build_fusion
from multimodal_har.encoders import EncoderOutput

DIMS = {"a": 6, "b": 4, "c": 5}
STEPS = {"a": 5, "b": 3, "c": 7}  # tokens per modality: deliberately different
SUBSETS = [s for r in (1, 2, 3) for s in itertools.combinations(DIMS, r)]  # the 7 non-empty subsets
TINY = {
    "concat": dict(indicator=True),
    "late": dict(num_classes=3, mode="gate", gate_hidden=4),
    "early": dict(width=8, heads=2, steps=4, layers=1),
    "slow": dict(width=8, steps=4),
    "cross_attention": dict(width=8, heads=2, self_layers=1, cross_layers=2, hidden=16),
}


def build(name: str, **kw):
    return build_fusion(name, dims=DIMS, **{**TINY[name], **kw})


def make_output(B: int, T: int, D: int, lengths=None) -> EncoderOutput:
    """Random tokens ``(B, T, D)``; ``lengths`` per sample (default all ``T``); pooled = mean of the valid tokens."""
    tokens = torch.randn(B, T, D)
    lengths = torch.full((B,), T) if lengths is None else torch.as_tensor(lengths)
    mask = torch.arange(T)[None] < lengths[:, None]
    pooled = (tokens * mask[..., None]).sum(1) / lengths.clamp(min=1)[:, None]
    return EncoderOutput(pooled=pooled, tokens=tokens, mask=mask)


def make_outputs(B: int = 3, seed: int = 0) -> dict[str, EncoderOutput]:
    torch.manual_seed(seed)
    return {m: make_output(B, STEPS[m], d) for m, d in DIMS.items()}


def take(o: EncoderOutput, rows) -> EncoderOutput:
    """The samples ``rows`` of an EncoderOutput (extras: per-sample tensors taken too)."""
    extras = None if o.extras is None else {k: v[rows] for k, v in o.extras.items()}
    return EncoderOutput(o.pooled[rows], o.tokens[rows], o.mask[rows], extras)


def poison(o: EncoderOutput, rows) -> EncoderOutput:
    """NaN in every value of the samples ``rows`` (to prove missing inputs are never read)."""
    pooled, tokens = o.pooled.clone(), o.tokens.clone()
    pooled[rows] = float("nan")
    tokens[rows] = float("nan")
    return EncoderOutput(pooled, tokens, o.mask, o.extras)


def with_grad(outputs: dict[str, EncoderOutput]) -> dict[str, EncoderOutput]:
    """The same outputs as leaves that require grad (to check what reaches the encoders)."""
    return {m: o._replace(pooled=o.pooled.detach().requires_grad_(), tokens=o.tokens.detach().requires_grad_())
            for m, o in outputs.items()}
