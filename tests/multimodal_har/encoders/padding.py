"""Helpers shared by the encoder tests: length masks and the "each sample of a padded batch
equals that sample alone" check."""

from __future__ import annotations

import torch


def lengths_mask(lengths, T: int) -> torch.Tensor:
    """``(B, T)`` bool, True for the first ``lengths[b]`` steps."""
    return torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]


def assert_each_sample_equals_itself_alone(enc, xs, *, nan_row: int, rtol: float, atol: float) -> None:
    """Pad ``xs`` (each ``(T_b, F)``) to one batch whose padding is junk (noise x 1000, NaN in
    row ``nan_row``); every sample's tokens, token mask and pooled output must equal what the
    encoder gives for it alone."""
    lengths = [len(x) for x in xs]
    T = max(lengths)
    batch = torch.randn(len(xs), T, *xs[0].shape[1:]) * 1e3
    batch[nan_row, lengths[nan_row]:] = float("nan")
    for i, x in enumerate(xs):
        batch[i, : len(x)] = x
    got = enc(batch, lengths_mask(lengths, T))
    for i, x in enumerate(xs):
        ref = enc(x[None])
        n = ref.tokens.shape[1]
        torch.testing.assert_close(got.tokens[i, :n], ref.tokens[0], rtol=rtol, atol=atol)
        assert got.mask[i, :n].all() and not got.mask[i, n:].any()
        torch.testing.assert_close(got.pooled[i], ref.pooled[0], rtol=rtol, atol=atol)


def pad_skeletons(seqs) -> tuple[torch.Tensor, torch.Tensor]:
    """Real skeleton sequences (``.keypoint`` ``(T_b, M, V, C)``) -> a zero-padded batch
    ``(B, T, M, V, C)`` and its ``(B, T)`` mask."""
    T = max(len(s.keypoint) for s in seqs)
    x = torch.zeros(len(seqs), T, *seqs[0].keypoint.shape[1:])
    for b, s in enumerate(seqs):
        x[b, : len(s.keypoint)] = torch.from_numpy(s.keypoint)
    return x, lengths_mask([len(s.keypoint) for s in seqs], T)
