"""ST-GCN: Yan, Xiong, Lin, "Spatial Temporal Graph Convolutional Networks for
Skeleton-Based Action Recognition", AAAI 2018, on torch-geometric message passing.

* The graph is any layout of :mod:`multimodal_har.skeleton.layouts` (its bones, its centre).
* Spatial graph convolution with the paper's partition strategies: ``uniform`` (one
  group), ``distance`` (the joint itself / its neighbours) and ``spatial`` (the joint /
  neighbours closer to the centre / farther from it). Distances are hops to the layout's
  centre joint (the paper's reference code does the same; the paper speaks of the
  skeleton's gravity centre). Each target joint's incoming weights are normalised by its
  degree, then multiplied by a learnable importance per edge.
* Messages run through :class:`torch_geometric.nn.MessagePassing` over the ``V`` joints
  of all ``N*M*T`` skeletons at once (``node_dim=-2``: one shared ``edge_index``).
* Each block: graph conv, BN, ReLU, temporal conv (kernel 9 over time), BN, dropout,
  residual, ReLU; the paper's 10 blocks (64 x4, 128 x3 with stride 2 first, 256 x3 with
  stride 2 first) by default; data batch-norm over ``V*C`` at the input.
* Departures, and why: frames beyond a sample's length are zeroed after every block, so a
  padded batch gives the same output as the unpadded sample (the temporal convolution's
  own zero padding then sees the same zeros); people are pooled by a mean over the people
  present in a sample rather than over all ``M`` slots, so an empty second slot does not
  halve the features.
* Input streams: ``joint`` coordinates, ``bone`` vectors (joint minus its parent),
  ``motion`` (next frame minus this one) and ``bone_motion``, concatenated along channels.
"""

from __future__ import annotations

from collections import deque
from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from multimodal_har.skeleton.layouts import STREAMS, Layout, get_layout

from . import EncoderOutput
from .layers import masked_mean
from .pyg_templates import generated_code_dir

STRATEGIES = ("uniform", "distance", "spatial")
PAPER_CHANNELS = ((64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1), (256, 2), (256, 1), (256, 1))


def hops_to_center(layout: Layout) -> list[int]:
    """Bone hops from every joint to the layout's centre joint."""
    nbrs: list[list[int]] = [[] for _ in range(layout.num_joints)]
    for a, b in layout.bones:
        i, j = layout.index(a), layout.index(b)
        nbrs[i].append(j)
        nbrs[j].append(i)
    hop = [-1] * layout.num_joints
    c = layout.index(layout.center)
    hop[c], queue = 0, deque([c])
    while queue:
        i = queue.popleft()
        for j in nbrs[i]:
            if hop[j] < 0:
                hop[j] = hop[i] + 1
                queue.append(j)
    return hop


def partition_adjacency(layout: Layout | str, strategy: str = "spatial") -> Tensor:
    """``(K, V, V)`` adjacency per partition, ``A[k, v, w]``: weight of the message from
    joint ``v`` to joint ``w``; each target ``w``'s weights sum to 1 over all partitions."""
    layout = get_layout(layout)
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown partition strategy {strategy!r}; valid choices: {', '.join(STRATEGIES)}")
    V = layout.num_joints
    near = torch.eye(V)
    for a, b in layout.bones:
        i, j = layout.index(a), layout.index(b)
        near[i, j] = near[j, i] = 1.0
    norm = near / near.sum(dim=0, keepdim=True)  # column w: divided by the degree of w
    if strategy == "uniform":
        return norm[None]
    if strategy == "distance":
        eye = torch.eye(V)
        return torch.stack([norm * eye, norm * (1 - eye)])
    hop = torch.tensor(hops_to_center(layout), dtype=torch.float32)
    hv, hw = hop[:, None], hop[None, :]  # source v, target w
    return torch.stack([norm * (hv == hw), norm * (hv < hw), norm * (hv > hw)])


class SpatialGraphConv(MessagePassing):
    """``x (B, V, C_in) -> (B, V, C_out)``: ``out[w] = sum_k sum_v A_k[v, w] * I_e * W_k x[v]``.

    One linear layer gives every partition's transform (``K * C_out`` channels); each edge
    ``v -> w`` of partition ``k`` carries ``A_k[v, w]`` times its learnable importance ``I_e``.
    """

    def __init__(self, *, in_channels: int, out_channels: int, adjacency: Tensor,
                 edge_importance: bool = True) -> None:
        with generated_code_dir():  # PyG writes its generated propagate module now; not into /tmp
            super().__init__(aggr="add", node_dim=-2)
        K = adjacency.shape[0]
        k, src, dst = adjacency.nonzero(as_tuple=True)
        self.out_channels = out_channels
        self.lin = nn.Linear(in_channels, K * out_channels)
        self.register_buffer("edge_index", torch.stack([src, dst]))
        self.register_buffer("edge_part", k)
        self.register_buffer("edge_weight", adjacency[k, src, dst])
        self.importance = nn.Parameter(torch.ones(len(k))) if edge_importance else None

    def forward(self, x: Tensor) -> Tensor:
        B, V, _ = x.shape
        h = self.lin(x)  # (B, V, K*C_out)
        w = self.edge_weight if self.importance is None else self.edge_weight * self.importance
        return self.propagate(self.edge_index, x=h, weight=w, size=(V, V))

    def message(self, x_j: Tensor, weight: Tensor) -> Tensor:
        # x_j: (B, E, K*C_out) -> the slice of each edge's partition, (B, E, C_out)
        B, E, _ = x_j.shape
        x_j = x_j.view(B, E, -1, self.out_channels)
        part = self.edge_part.view(1, E, 1, 1).expand(B, E, 1, self.out_channels)
        return x_j.gather(2, part).squeeze(2) * weight.view(1, E, 1)

    def dense_adjacency(self) -> Tensor:
        """The effective ``(K, V, V)`` matrices (for tests and visualisation)."""
        K = int(self.edge_part.max()) + 1
        V = int(self.edge_index.max()) + 1
        A = torch.zeros(K, V, V, device=self.edge_weight.device)
        w = self.edge_weight if self.importance is None else self.edge_weight * self.importance
        A[self.edge_part, self.edge_index[0], self.edge_index[1]] = w
        return A


def block_residual(in_channels: int, out_channels: int, stride: int = 1) -> nn.Module:
    """A GCN block's residual ``(N, C_in, T, V) -> (N, C_out, T / stride, V)``: the identity
    when the shapes agree, else a strided 1x1 convolution and batch norm (ST-GCN, CTR-GCN)."""
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, (stride, 1)), nn.BatchNorm2d(out_channels))


class STGCNBlock(nn.Module):
    """``(NM, C_in, T, V) -> (NM, C_out, T / stride, V)``."""

    def __init__(self, *, in_channels: int, out_channels: int, adjacency: Tensor, stride: int = 1,
                 kernel_t: int = 9, dropout: float = 0.0, residual: bool = True,
                 edge_importance: bool = True) -> None:
        super().__init__()
        self.gcn = SpatialGraphConv(in_channels=in_channels, out_channels=out_channels, adjacency=adjacency,
                                    edge_importance=edge_importance)
        self.pre = nn.Sequential(nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
        self.tcn = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, (kernel_t, 1), (stride, 1), ((kernel_t - 1) // 2, 0)),
            nn.BatchNorm2d(out_channels), nn.Dropout(dropout))
        self.residual = block_residual(in_channels, out_channels, stride) if residual else None

    def forward(self, x: Tensor, frames: Optional[Tensor] = None) -> Tensor:
        """``frames``: ``(NM, T)`` 1 for real frames; the others are zeroed before the
        temporal convolution, which then sees what its own zero padding would give."""
        NM, C, T, V = x.shape
        h = self.gcn(x.permute(0, 2, 3, 1).reshape(NM * T, V, C))  # (NM*T, V, C_out)
        # contiguous: the permuted view has channels-last strides, which oneDNN propagates to
        # the strided 1x1 residual convolution, whose CPU backward crashes in torch 2.14
        h = self.pre(h.view(NM, T, V, -1).permute(0, 3, 1, 2).contiguous())  # (NM, C_out, T, V)
        if frames is not None:
            h = h * frames[:, None, :, None]
        h = self.tcn(h)
        if self.residual is not None:
            h = h + self.residual(x)
        return torch.relu(h)


def make_streams(x: Tensor, layout: Layout, streams: Sequence[str], mask: Optional[Tensor] = None,
                 parent: Optional[Tensor] = None) -> Tensor:
    """``(B, T, M, V, C)`` joints -> ``(B, T, M, V, C * len(streams))``.

    With ``mask`` ``(B, T)``, frames beyond a sample's length are zeroed first and the last
    valid frame's motion is zero (it has no next frame), as at the end of an unpadded
    sequence: padding never leaks into a valid frame's streams. ``parent`` ``(V,)``, on
    ``x``'s device (:func:`bone_parents`), computes the bone streams without copying an index
    from the host: what CUDA-graph capture needs (the same values as :meth:`Layout.stream`)."""
    if mask is not None:
        x = x * mask[:, :, None, None, None]
    out = []
    for s in streams:
        if parent is not None and s in ("bone", "bone_motion"):
            h = x - x.index_select(-2, parent)  # the root is its own parent: zero
            h = layout.stream(h, "motion") if s == "bone_motion" else h
        else:
            h = layout.stream(x, s)  # (B, T, M, V, C)
        if s in ("motion", "bone_motion") and mask is not None:
            h[:, :-1] *= mask[:, 1:, None, None, None]  # the next frame is padding: zero
        out.append(h)
    return torch.cat(out, dim=-1)


def bone_parents(layout: Layout) -> Tensor:
    """``(V,)`` int64: each joint's parent in the bone tree, the root its own (bone = x - x[parent])."""
    parent = torch.arange(layout.num_joints)
    child, par = layout.edges
    parent[torch.from_numpy(child)] = torch.from_numpy(par)
    return parent


class SkeletonGraphEncoder(nn.Module):
    """What every skeleton GCN here shares: input checks, the input streams, the data batch
    norm over ``V*C``, padding kept at zero after every block, and pooling over joints and
    the people present. A subclass builds ``self.blocks`` (each ``block(h, frames)``:
    ``(NM, C, T, V) -> (NM, C', T / stride, V)``), ``self.strides`` and ``self.out_dim``."""

    def _setup_input(self, layout: str | Layout, in_channels: int, streams: Sequence[str]) -> int:
        self.layout = get_layout(layout)
        for s in streams:
            if s not in STREAMS:
                raise ValueError(f"unknown input stream {s!r}; valid choices: {', '.join(STREAMS)}")
        if not streams:
            raise ValueError(f"streams must name at least one of {', '.join(STREAMS)}")
        self.streams = tuple(streams)
        self.in_channels = in_channels
        c_in = in_channels * len(self.streams)
        self.data_bn = nn.BatchNorm1d(self.layout.num_joints * c_in)
        self.register_buffer("bone_parent", bone_parents(self.layout), persistent=False)
        return c_in

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> EncoderOutput:
        """
        Args:
            x: ``(B, T, M, V, C)`` joint coordinates; an absent person is all zeros.
            mask: ``(B, T)`` bool, True for real frames (default: all).

        Returns:
            pooled ``(B, D)``, tokens ``(B, T', D)`` (mean over joints and present people),
            mask ``(B, T')``; ``T' = ceil(T / prod(strides))``.
        """
        if x.ndim != 5 or x.shape[3] != self.layout.num_joints or x.shape[4] != self.in_channels:
            raise ValueError(f"expected x of shape (B, T, M, {self.layout.num_joints}, {self.in_channels}) "
                             f"for layout {self.layout.name}, got {tuple(x.shape)}")
        B, T, M, V, _ = x.shape
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=x.device)
        if mask.shape != (B, T):
            raise ValueError(f"mask must be (B, T) = {(B, T)}, got {tuple(mask.shape)}")
        person = (x != 0).flatten(3).any(-1).any(1)  # (B, M): people present anywhere
        x = make_streams(x, self.layout, self.streams, mask, self.bone_parent)
        C = x.shape[-1]
        h = x.permute(0, 2, 3, 4, 1).reshape(B * M, V * C, T)  # (B*M, V*C, T)
        h = self.data_bn(h).view(B * M, V, C, T).permute(0, 2, 3, 1).contiguous()  # (B*M, C, T, V)
        m = mask.repeat_interleave(M, dim=0).to(h.dtype)  # (B*M, T)
        h = h * m[:, None, :, None]
        for block, stride in zip(self.blocks, self.strides):
            h = block(h, m)
            m = m[:, ::stride]
            h = h * m[:, None, :, None]  # padded frames stay exactly zero
        tokens = h.mean(dim=3).view(B, M, self.out_dim, -1)  # (B, M, D, T')
        w = person.to(h.dtype)
        w = w / w.sum(dim=1, keepdim=True).clamp(min=1.0)  # mean over present people
        tokens = torch.einsum("bmdt,bm->btd", tokens, w)  # (B, T', D)
        out_mask = m.view(B, M, -1)[:, 0] > 0  # (B, T')
        return EncoderOutput(pooled=masked_mean(tokens, out_mask), tokens=tokens, mask=out_mask)


class STGCN(SkeletonGraphEncoder):
    """ST-GCN encoder over skeleton sequences of any registered layout.

    Args:
        layout: a layout name or :class:`Layout`.
        in_channels: coordinates per joint (3 for x, y, z).
        streams: input streams, concatenated: ``joint``, ``bone``, ``motion``, ``bone_motion``.
        strategy: partition strategy (``uniform``, ``distance``, ``spatial``).
        channels: ``(out_channels, temporal_stride)`` per block (the paper's 10 by default).
        dropout: after each temporal convolution.
        edge_importance: learnable importance per graph edge.
    """

    def __init__(self, *, layout: str | Layout, in_channels: int = 3, streams: Sequence[str] = ("joint",),
                 strategy: str = "spatial", channels: Sequence[tuple[int, int]] = PAPER_CHANNELS,
                 dropout: float = 0.0, edge_importance: bool = True) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must name at least one block")
        c = self._setup_input(layout, in_channels, streams)
        A = partition_adjacency(self.layout, strategy)
        blocks = []
        for k, (c_out, stride) in enumerate(channels):
            blocks.append(STGCNBlock(in_channels=c, out_channels=c_out, adjacency=A, stride=stride,
                                     dropout=dropout, residual=k > 0, edge_importance=edge_importance))
            c = c_out
        self.blocks = nn.ModuleList(blocks)
        self.strides = [s for _, s in channels]
        self.out_dim = c
