"""CTR-GCN: Chen, Zhang, Yuan, Li, Deng, Hu, "Channel-wise Topology Refinement Graph
Convolution for Skeleton-Based Action Recognition", ICCV 2021, on torch-geometric.

The paper's block structure:

* **CTR-GC** (channel-wise topology refinement graph convolution), for each of the ``K``
  subsets of the skeleton graph (the spatial partition of :func:`partition_adjacency`: the
  joint with its same-depth neighbours, those closer to the centre, those farther):
  ``x1 = phi(x)``, ``x2 = psi(x)`` (one convolution) pooled over time (``R`` channels, 8 for a raw-coordinate
  input, else ``C_in / 8``); the channel-wise correlation ``tanh(x1[u] - x2[v])``, lifted to
  ``C_out`` channels by ``xi``, scaled by a learnable ``alpha`` (initialised 0) and added to a
  learnable shared topology ``A_k`` (initialised from the graph); the refined ``(C_out, V, V)``
  topology of each sample aggregates ``x3 = W(x)`` along joints; the ``K`` subsets are summed.
  Unit: ``ReLU(BN(sum_k CTR-GC_k(x)) + residual(x))``.
* **Multi-scale temporal convolution**: four branches of ``C_out / 4`` channels (a 1x1
  bottleneck, then a kernel-5 temporal conv with dilation 1; the same with dilation 2; a 1x1
  bottleneck then a 3-frame max pool; a plain 1x1), concatenated.
* **Block** = CTR-GC unit, multi-scale temporal conv, residual (identity or a strided 1x1
  conv), ReLU; the paper's 10 blocks (64 x4, 128 x3 with stride 2 first, 256 x3 with stride 2
  first), a data batch norm at the input, global pooling.

On torch-geometric: :class:`RefinedGraphAggregation` is a
:class:`~torch_geometric.nn.MessagePassing` over the complete joint graph (the refined topology
has a weight for every ordered joint pair, per sample and channel). Passed the complete graph's
``edge_index`` it runs PyG's gather / message / scatter-add (``message``); passed the graph as a
sparse adjacency (the default) PyG calls its fused ``message_and_aggregate``, which contracts
the dense ``(V, V)`` topologies with one ``einsum`` (under ``torch.compile``, which has no sparse
tensors, and while a CUDA graph is captured, that method is called directly: the model compiles
to one graph and captures in one CUDA graph). The two are tested equal to each other and to
a dense reference of the paper's formula (``tests/multimodal_har/encoders/test_ctr_gcn.py``).

Departures, as in :mod:`.skeleton_gcn`: padded frames are zeroed after every block and left out
of the time pooling of ``phi`` / ``psi``, so a padded batch gives the unpadded sample's output;
people are pooled over those present.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from multimodal_har.skeleton.layouts import Layout

from .pyg_templates import generated_code_dir
from .skeleton_gcn import PAPER_CHANNELS, SkeletonGraphEncoder, block_residual, partition_adjacency

AGGREGATIONS = ("fused", "scatter")


class RefinedGraphAggregation(MessagePassing):
    """``out[n, t, u, :] = sum_v A[n, :, u, v] * x[n, t, v, :]`` on the complete graph of ``V`` joints.

    ``x``: ``(N, T, V, D)`` node features; ``A``: ``(N, D, V, V)`` a topology per sample and
    channel, ``A[n, d, u, v]`` the weight of the message from joint ``v`` to joint ``u``.
    """

    def __init__(self, *, num_nodes: int, aggregation: str = "fused") -> None:
        with generated_code_dir():  # PyG writes its generated propagate module now; not into /tmp
            super().__init__(aggr="add", node_dim=-2)
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}; valid choices: {', '.join(AGGREGATIONS)}")
        self.aggregation = aggregation
        V = num_nodes
        src = torch.arange(V).repeat(V)  # edge e = u * V + v carries v -> u
        dst = torch.arange(V).repeat_interleave(V)
        self.register_buffer("edge_index", torch.stack([src, dst]), persistent=False)
        self.num_nodes = V

    def forward(self, x: Tensor, A: Tensor) -> Tensor:
        V = self.num_nodes
        if self.aggregation == "scatter":
            N, D = A.shape[:2]
            w = A.reshape(N, D, V * V).transpose(1, 2)[:, None]  # (N, 1, E, D), edge e = u * V + v
            return self.propagate(self.edge_index, x=x, weight=w, size=(V, V))
        if torch.compiler.is_compiling() or (x.is_cuda and torch.cuda.is_current_stream_capturing()):
            # torch.compile has no sparse tensors, and a CUDA graph wants no host-built ones: the fused op itself
            return self.message_and_aggregate(self.edge_index, x=x, weight=A)
        adj_t = torch.sparse_coo_tensor(self.edge_index.flip(0), torch.ones(V * V, device=x.device), (V, V),
                                        check_invariants=False)  # the complete graph, adj_t[target, source]
        return self.propagate(adj_t, x=x, weight=A, size=(V, V))

    def message(self, x_j: Tensor, weight: Tensor) -> Tensor:
        # x_j (N, T, E, D), weight (N, 1, E, D): the edges' weights
        return x_j * weight

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor, weight: Tensor) -> Tensor:
        # adj_t is the complete graph and weight (N, D, V, V) holds every (u, v) weight: a dense contraction
        return torch.einsum("nduv,ntvd->ntud", weight, x)


class CTRGC(nn.Module):
    """All ``K`` subsets' CTR-GCs, summed: ``(N, C_in, T, V) -> (N, C_out, T, V)``.

    ``frames`` ``(N, T)``: 1 for real frames; ``phi`` / ``psi`` are averaged over those only.
    """

    def __init__(self, *, in_channels: int, out_channels: int, adjacency: Tensor, aggregation: str = "fused") -> None:
        super().__init__()
        K, V, _ = adjacency.shape
        R = 8 if in_channels <= 16 else in_channels // 8
        self.K, self.R, self.out_channels = K, R, out_channels
        self.phi_psi = nn.Conv2d(in_channels, 2 * K * R, 1)  # phi's K*R channels, then psi's: one kernel
        self.value = nn.Conv2d(in_channels, K * out_channels, 1)
        self.xi = nn.Conv2d(K * R, K * out_channels, 1, groups=K)
        # the paper's A is (v -> u) indexed [u, v]; partition_adjacency's is [source, target]
        self.A = nn.Parameter(adjacency.transpose(1, 2).clone())
        self.alpha = nn.Parameter(torch.zeros(1))
        self.aggregate = RefinedGraphAggregation(num_nodes=V, aggregation=aggregation)

    def topology(self, x: Tensor, frames: Optional[Tensor] = None) -> Tensor:
        """``(N, K, C_out, V, V)``: each sample's refined topology, ``[..., u, v]`` for ``v -> u``."""
        N, _, T, V = x.shape
        x12 = self.phi_psi(x)  # (N, 2KR, T, V)
        if frames is None:
            x12 = x12.mean(dim=2)
        else:
            w = frames[:, None, :, None].to(x12.dtype)
            x12 = (x12 * w).sum(dim=2) / w.sum(dim=2).clamp(min=1.0)  # (N, 2KR, V)
        x1, x2 = x12.chunk(2, dim=1)
        corr = torch.tanh(x1[..., :, None] - x2[..., None, :])  # (N, KR, V, V)
        refine = self.xi(corr).view(N, self.K, self.out_channels, V, V)
        return self.A[None, :, None] + self.alpha * refine

    def forward(self, x: Tensor, frames: Optional[Tensor] = None) -> Tensor:
        N, _, T, V = x.shape
        A = self.topology(x, frames).flatten(1, 2)  # (N, K*C_out, V, V)
        h = self.value(x).permute(0, 2, 3, 1)  # (N, T, V, K*C_out)
        out = self.aggregate(h, A)  # (N, T, V, K*C_out)
        out = out.view(N, T, V, self.K, self.out_channels).sum(dim=3)
        # contiguous: the permuted view has channels-last strides, which oneDNN carries on to the
        # temporal module's strided 1x1 convolution, whose CPU weight gradient then corrupts the heap
        # (torch 2.14, seen in mhar train; ST-GCN's block has the same guard)
        return out.permute(0, 3, 1, 2).contiguous()  # (N, C_out, T, V)


class MultiScaleTemporalConv(nn.Module):
    """CTR-GCN's temporal module: ``(N, C_in, T, V) -> (N, C_out, T / stride, V)``, four branches."""

    def __init__(self, *, in_channels: int, out_channels: int, kernel_t: int = 5, stride: int = 1,
                 dilations: Sequence[int] = (1, 2)) -> None:
        super().__init__()
        branches = len(dilations) + 2
        if out_channels % branches:
            raise ValueError(f"out_channels ({out_channels}) must be a multiple of the {branches} branches")
        c = self.branch_channels = out_channels // branches
        # the 1x1 bottlenecks of the dilated and max-pool branches as one convolution (per-channel
        # batch norm makes it the same as one each; fewer kernels for these launch-bound nets)
        nb = len(dilations) + 1
        self.bottleneck = nn.Sequential(nn.Conv2d(in_channels, nb * c, 1), nn.BatchNorm2d(nb * c),
                                        nn.ReLU(inplace=True))
        self.branches = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(c, c, (kernel_t, 1), (stride, 1), ((kernel_t - 1) * d // 2, 0), (d, 1)),
                           nn.BatchNorm2d(c)) for d in dilations]
            + [nn.Sequential(nn.MaxPool2d((3, 1), (stride, 1), (1, 0)), nn.BatchNorm2d(c))])
        self.pointwise = nn.Sequential(nn.Conv2d(in_channels, c, 1, (stride, 1)), nn.BatchNorm2d(c))

    def forward(self, x: Tensor) -> Tensor:
        # the max pool follows a ReLU (values >= 0), so zeroed padding frames never win it
        hs = self.bottleneck(x).split(self.branch_channels, dim=1)
        return torch.cat([b(h) for b, h in zip(self.branches, hs)] + [self.pointwise(x)], dim=1)


class CTRGCNBlock(nn.Module):
    """``(N, C_in, T, V) -> (N, C_out, T / stride, V)``: CTR-GC unit, multi-scale TCN, residual."""

    def __init__(self, *, in_channels: int, out_channels: int, adjacency: Tensor, stride: int = 1,
                 residual: bool = True, kernel_t: int = 5, dilations: Sequence[int] = (1, 2),
                 aggregation: str = "fused") -> None:
        super().__init__()
        self.gcn = CTRGC(in_channels=in_channels, out_channels=out_channels, adjacency=adjacency,
                         aggregation=aggregation)
        self.gcn_bn = nn.BatchNorm2d(out_channels)
        nn.init.constant_(self.gcn_bn.weight, 1e-6)  # the paper's: a unit starts as its residual
        self.gcn_down = block_residual(in_channels, out_channels)
        self.tcn = MultiScaleTemporalConv(in_channels=out_channels, out_channels=out_channels, kernel_t=kernel_t,
                                          stride=stride, dilations=dilations)
        self.residual = block_residual(in_channels, out_channels, stride) if residual else None

    def forward(self, x: Tensor, frames: Optional[Tensor] = None) -> Tensor:
        h = torch.relu(self.gcn_bn(self.gcn(x, frames)) + self.gcn_down(x))
        if frames is not None:
            h = h * frames[:, None, :, None]  # the temporal convolutions see zeros past the end
        h = self.tcn(h)
        if self.residual is not None:
            h = h + self.residual(x)
        return torch.relu(h)


class CTRGCN(SkeletonGraphEncoder):
    """CTR-GCN encoder over skeleton sequences of any registered layout.

    Args:
        layout: a layout name or :class:`Layout`.
        in_channels: coordinates per joint (3 for x, y, z).
        streams: input streams, concatenated: ``joint``, ``bone``, ``motion``, ``bone_motion``
            (the paper trains one model per stream and ensembles them).
        channels: ``(out_channels, temporal_stride)`` per block (the paper's 10 by default;
            each a multiple of 4, the temporal branches).
        kernel_t, dilations: the multi-scale temporal convolution (paper: 5 and ``(1, 2)``).
        aggregation: ``fused`` (PyG's fused sparse path, one einsum) or ``scatter`` (PyG's
            gather / scatter over the ``V * V`` edges; same result, more memory).
    """

    def __init__(self, *, layout: str | Layout, in_channels: int = 3, streams: Sequence[str] = ("joint",),
                 channels: Sequence[tuple[int, int]] = PAPER_CHANNELS, kernel_t: int = 5,
                 dilations: Sequence[int] = (1, 2), aggregation: str = "fused") -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must name at least one block")
        c = self._setup_input(layout, in_channels, streams)
        A = partition_adjacency(self.layout, "spatial")
        blocks = []
        for k, (c_out, stride) in enumerate(channels):
            blocks.append(CTRGCNBlock(in_channels=c, out_channels=c_out, adjacency=A, stride=stride,
                                      residual=k > 0, kernel_t=kernel_t, dilations=dilations,
                                      aggregation=aggregation))
            c = c_out
        self.blocks = nn.ModuleList(blocks)
        self.strides = [s for _, s in channels]
        self.out_dim = c
        for m in self.modules():  # the paper's initialisation of the convolutions
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
