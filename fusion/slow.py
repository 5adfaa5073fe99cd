"""Slow fusion: modalities merged progressively through a hierarchy.

Karpathy, Toderici, Shetty, Leung, Sukthankar, Fei-Fei, "Large-scale Video Classification
with Convolutional Neural Networks", CVPR 2014: slow fusion merges temporal information
progressively, each layer's convolution spanning more of time (temporal extents 4, 2, 2
with stride 2 in the paper) so that higher layers see more of the clip. Applied across
modalities: modalities are merged in groups through a tree, and every merge is a temporal
convolution with stride, so each level of the tree sees a coarser, longer extent of time.

* Every modality's tokens are aligned to ``steps`` common time steps (as in
  :mod:`fusion.early`: :func:`fusion.layers.align_tokens`), normalised and projected to
  ``width`` (the tree's leaves).
* A node merges its children: each child has its own temporal convolution (kernel
  ``kernel``, stride ``stride``); the results are averaged over the children present in the
  sample, then LayerNorm and GELU. With the defaults (steps 8, kernel 3, stride 2) a leaf
  step is 1/8 of the window, a level-1 node's step 1/4 (each sees 3 leaf steps), a level-2
  node's step 1/2 (7 leaf steps)...; the root's sequence is mean-pooled.
* The tree: ``tree=None`` pairs modalities in order, level after level
  (``a, b, c, d -> ((a, b), (c, d))``; ``a, b, c -> ((a, b), (c,))``), or any nesting of
  lists of modality names (``[["joint", "bone"], "motion"]``), each modality once. A
  branch shallower than its siblings is lifted by single-child nodes, so children of a
  node always have the same temporal resolution.

Departures, and why: the merge is a mean over present children of per-child convolutions
rather than one convolution over the concatenated channels (the two are equal up to the
1/n scale), so that a missing modality is left out and the scale does not depend on how
many modalities a sample has; a node with no child present outputs zeros and counts as
missing one level up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from multimodal_har.encoders import EncoderOutput

from . import FusionOutput
from .base import Fusion, zero_missing
from .layers import ALIGN_MODES, align_tokens

Tree = Union[str, Sequence["Tree"]]


def pair_tree(modalities: Sequence[str]) -> Tree:
    """Default hierarchy: pair neighbours level after level (``a, b, c -> ((a, b), (c,))``)."""
    level: list = list(modalities)
    while len(level) > 1:
        level = [level[i:i + 2] for i in range(0, len(level), 2)]
    return level if isinstance(level[0], str) else level[0]


class _Leaf(nn.Module):
    """Picks one modality's projected sequence from the leaves."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def forward(self, leaves: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        return leaves[self.index]


class _Merge(nn.Module):
    """Children ``(B, L, W)`` each, with presence ``(B,)`` -> ``(B, L', W)``, presence ``(B,)``;
    ``L' = floor((L + 2 * (kernel // 2) - kernel) / stride) + 1``."""

    def __init__(self, kids: list[nn.Module], *, width: int, kernel: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.kids = nn.ModuleList(kids)
        self.convs = nn.ModuleList(nn.Conv1d(width, width, kernel, stride, kernel // 2) for _ in kids)
        self.norm = nn.LayerNorm(width)
        self.drop = nn.Dropout(dropout)

    def forward(self, leaves: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        hs, ps = [], []
        for kid, conv in zip(self.kids, self.convs):
            x, p = kid(leaves)
            hs.append(conv(x.transpose(1, 2)).transpose(1, 2))  # (B, L, W) -> (B, W, L') -> (B, L', W)
            ps.append(p)
        present = torch.stack(ps, dim=1)  # (B, K)
        w = present.to(hs[0].dtype)
        w = w / w.sum(dim=1, keepdim=True).clamp(min=1.0)  # mean over present children
        h = torch.einsum("bklw,bk->blw", torch.stack(hs, dim=1), w)  # (B, K, L', W) -> (B, L', W)
        h = self.drop(nn.functional.gelu(self.norm(h)))
        any_present = present.any(dim=1)
        return zero_missing(h, any_present), any_present


class SlowFusion(Fusion):
    """Hierarchical fusion at increasing temporal extents (see the module docstring).

    Args:
        dims: each modality's encoder ``out_dim``.
        tree: nesting of modality names, each once; None: :func:`pair_tree`.
        steps: common number of time steps of the leaves.
        align: ``pool`` or ``interpolate`` (see :func:`fusion.layers.alignment_weights`).
        width: channels of every node (``out_dim``).
        kernel, stride: each merge's temporal convolution.
        dropout: after each merge.
    """

    def __init__(self, *, dims: Mapping[str, int], tree: Optional[Tree] = None, steps: int = 8,
                 align: str = "pool", width: int = 128, kernel: int = 3, stride: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__(dims=dims)
        if align not in ALIGN_MODES:
            raise ValueError(f"unknown alignment {align!r}; valid choices: {', '.join(ALIGN_MODES)}")
        if steps < 1 or kernel < 1 or stride < 1:
            raise ValueError(f"steps, kernel and stride must be >= 1, got {steps}, {kernel}, {stride}")
        self.steps, self.align, self.out_dim = steps, align, width
        self._conv = dict(width=width, kernel=kernel, stride=stride, dropout=dropout)
        tree = pair_tree(self.modalities) if tree is None else tree
        if isinstance(tree, str):
            tree = [tree]
        self.tree = self._normalise(tree)
        seen = _names(self.tree)
        if sorted(seen) != sorted(self.modalities):
            raise ValueError(f"tree must name every modality of dims exactly once "
                             f"({', '.join(self.modalities)}), got {', '.join(seen)}")
        self.norms = nn.ModuleDict({m: nn.LayerNorm(d) for m, d in self.dims.items()})
        self.proj = nn.ModuleDict({m: nn.Linear(d, width) for m, d in self.dims.items()})
        self.root, self.depth = self._build(self.tree)
        self.lengths = [steps]  # sequence length at each level, leaves first
        for _ in range(self.depth):
            self.lengths.append((self.lengths[-1] + 2 * (kernel // 2) - kernel) // stride + 1)

    def _normalise(self, tree: Tree) -> Tree:
        if isinstance(tree, str):
            if tree not in self.dims:
                raise ValueError(f"tree names unknown modality {tree!r}; valid: {', '.join(self.modalities)}")
            return tree
        if not isinstance(tree, Sequence) or not tree:
            raise ValueError(f"a tree node must be a modality name or a non-empty list of nodes, got {tree!r}")
        return tuple(self._normalise(t) for t in tree)

    def _build(self, tree: Tree) -> tuple[nn.Module, int]:
        """A tree -> (module, height); leaves have height 0."""
        if isinstance(tree, str):
            return _Leaf(self.modalities.index(tree)), 0
        kids = [self._build(t) for t in tree]
        height = max(h for _, h in kids)
        lifted = []
        for node, h in kids:
            for _ in range(height - h):  # a shallower branch: single-child merges to the same resolution
                node = _Merge([node], **self._conv)
            lifted.append(node)
        return _Merge(lifted, **self._conv), height + 1

    def forward(self, outputs: Mapping[str, Optional[EncoderOutput]], present: Optional[Tensor] = None) -> FusionOutput:
        """
        Args:
            outputs: ``{modality: EncoderOutput | None}``; ``tokens (B, T'_m, D_m)`` with
                ``mask (B, T'_m)`` are used.
            present: ``(B, M)`` bool, False where a modality is missing for a sample.

        Returns:
            ``embedding (B, width)`` (zeros for a sample with no modality); extras:
            ``present (B, M)``, ``tokens (B, lengths[-1], width)`` the root's sequence.
        """
        inp = self.gather(outputs, present, tokens=True)
        B, S = inp.batch, self.steps
        ref = next(o.tokens for o in inp.outputs if o is not None)
        leaves = []
        for i, (m, o, mask) in enumerate(zip(self.modalities, inp.outputs, inp.masks)):
            if o is None:
                leaves.append((ref.new_zeros(B, S, self.out_dim), inp.present[:, i]))
                continue
            x = self.proj[m](self.norms[m](align_tokens(o.tokens, mask, S, self.align)))  # (B, S, W)
            leaves.append((zero_missing(x, inp.present[:, i]), inp.present[:, i]))
        h, any_present = self.root(leaves)  # (B, L, W)
        emb = zero_missing(h.mean(dim=1), any_present)
        return FusionOutput(embedding=emb, logits=None, extras={"present": inp.present, "tokens": h})


def _names(tree: Tree) -> list[str]:
    return [tree] if isinstance(tree, str) else [n for t in tree for n in _names(t)]
