"""CTR-GCN on torch-geometric: the graph operator against a dense reference of the paper's
formula, PyG's two aggregation paths equal, the block structure, padding, the four streams."""

import numpy as np
import pytest
import torch

from multimodal_har.encoders import build_encoder
from multimodal_har.encoders.ctr_gcn import CTRGC, CTRGCN, MultiScaleTemporalConv, RefinedGraphAggregation
from multimodal_har.encoders.skeleton_gcn import PAPER_CHANNELS, partition_adjacency
from multimodal_har.skeleton import get_layout
from multimodal_har.skeleton.layouts import STREAMS

TINY = ((8, 1), (16, 2), (16, 1))


def reference_ctrgc(gc: CTRGC, x: torch.Tensor) -> torch.Tensor:
    """The paper's CTR-GC written out per subset with plain loops over joint pairs:
    ``M_k = A_k + alpha * xi_k(tanh(phi_k(x)[u] - psi_k(x)[v]))``, ``out[u] = sum_k sum_v M_k[u, v] W_k x[v]``."""
    N, _, T, V = x.shape
    K, R, C = gc.K, gc.R, gc.out_channels
    x1, x2 = gc.phi_psi(x).mean(2).view(N, 2, K, R, V).unbind(1)
    x3 = gc.value(x).view(N, K, C, T, V)
    w4 = gc.xi.weight.view(K, C, R)
    b4 = gc.xi.bias.view(K, C)
    out = torch.zeros(N, C, T, V)
    for k in range(K):
        for u in range(V):
            for v in range(V):
                corr = torch.tanh(x1[:, k, :, u] - x2[:, k, :, v])  # (N, R)
                m = gc.A[k, u, v] + gc.alpha * (corr @ w4[k].T + b4[k])  # (N, C)
                out[:, :, :, u] += m[:, :, None] * x3[:, k, :, :, v]
    return out


@pytest.mark.parametrize("aggregation", ["fused", "scatter"])
def test_ctrgc_equals_the_dense_reference(aggregation):
    torch.manual_seed(0)
    A = partition_adjacency("kinect_v1_20", "spatial")
    gc = CTRGC(in_channels=6, out_channels=5, adjacency=A, aggregation=aggregation)
    with torch.no_grad():
        gc.alpha.fill_(0.7)  # initialised at 0: the refinement must be switched on to be tested
        gc.A.add_(0.1 * torch.randn_like(gc.A))
    x = torch.randn(3, 4, 6, 20).transpose(1, 2).contiguous()  # (N, C, T, V)
    torch.testing.assert_close(gc(x), reference_ctrgc(gc, x), rtol=1e-4, atol=1e-5)


def test_pyg_fused_and_scatter_paths_agree_with_gradients():
    torch.manual_seed(0)
    V = 20
    x = torch.randn(2, 5, V, 6, requires_grad=True)
    A = torch.randn(2, 6, V, V, requires_grad=True)
    outs, grads = [], []
    for aggregation in ("fused", "scatter"):
        y = RefinedGraphAggregation(num_nodes=V, aggregation=aggregation)(x, A)
        (gx, gA) = torch.autograd.grad(y.square().sum(), (x, A))
        outs.append(y)
        grads.append((gx, gA))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="unknown aggregation 'dense'; valid choices: fused, scatter"):
        RefinedGraphAggregation(num_nodes=V, aggregation="dense")


def test_initial_topology_is_the_graph_and_refinement_starts_off():
    L = get_layout("kinect_v1_20")
    A = partition_adjacency(L, "spatial")
    gc = CTRGC(in_channels=3, out_channels=8, adjacency=A)
    assert gc.R == 8 and float(gc.alpha.detach()) == 0.0
    M = gc.topology(torch.randn(2, 3, 4, 20))
    assert M.shape == (2, 3, 8, 20, 20)
    # M[..., u, v] weights v -> u; partition_adjacency's [k, v, u] is indexed source first
    e, s = L.index("elbow_left"), L.index("shoulder_left")
    torch.testing.assert_close(M[0, 1, 0, e, s], A[1, s, e])
    torch.testing.assert_close(M[1, :, 3], A.transpose(1, 2))


def test_topology_pools_only_real_frames():
    torch.manual_seed(0)
    gc = CTRGC(in_channels=4, out_channels=8, adjacency=partition_adjacency("kinect_v1_20", "spatial"))
    with torch.no_grad():
        gc.alpha.fill_(1.0)
    x = torch.randn(1, 4, 6, 20)
    padded = torch.cat([x, torch.zeros(1, 4, 3, 20)], dim=2)
    frames = torch.tensor([[1.0] * 6 + [0.0] * 3])
    torch.testing.assert_close(gc.topology(padded, frames), gc.topology(x), rtol=1e-5, atol=1e-6)


def test_multiscale_temporal_conv_branches_and_stride():
    tcn = MultiScaleTemporalConv(in_channels=16, out_channels=32, stride=2)
    assert len(tcn.branches) == 3 and tcn.bottleneck[0].out_channels == 3 * 8  # + the plain 1x1 branch
    assert tcn(torch.randn(2, 16, 9, 20)).shape == (2, 32, 5, 20)
    with pytest.raises(ValueError, match="multiple of the 4 branches"):
        MultiScaleTemporalConv(in_channels=16, out_channels=30)


def test_paper_structure_and_size():
    enc = CTRGCN(layout="ntu_25")  # NTU's 25 joints, the paper's setting
    assert len(enc.blocks) == 10 and enc.out_dim == 256 and [c for c, _ in PAPER_CHANNELS][-1] == 256
    n = sum(p.numel() for p in enc.parameters())
    assert 1.3e6 < n < 1.5e6  # the paper reports 1.46 M with its 60-class classifier (15 k)
    out = enc(torch.randn(2, 16, 2, 25, 3))
    assert out.pooled.shape == (2, 256) and out.tokens.shape == (2, 4, 256)


def test_four_streams_and_registry():
    assert STREAMS == ("joint", "bone", "motion", "bone_motion")
    L = get_layout("kinect_v1_20")
    x = np.random.default_rng(0).normal(size=(5, 1, 20, 3)).astype(np.float32)
    bm = L.stream(x, "bone_motion")
    bone = L.stream(x, "bone")
    np.testing.assert_allclose(bm[:-1], bone[1:] - bone[:-1])
    assert not bm[-1].any()
    enc = build_encoder("ctr_gcn", layout="kinect_v1_20", streams=STREAMS, channels=TINY)
    out = enc(torch.randn(2, 8, 1, 20, 3))
    assert out.pooled.shape == (2, 16) and out.mask.shape == (2, 4)
    with pytest.raises(ValueError, match="unknown input stream 'speed'; valid choices: joint, bone, motion, bone_mo"):
        build_encoder("ctr_gcn", layout="kinect_v1_20", streams=("speed",))


@pytest.mark.parametrize("name", ["ctr_gcn", "skeleton_gcn"])
def test_compiles_to_one_graph(name):
    """torch.compile without graph breaks (fullgraph=True raises at the first): the CTR-GCN's
    fused aggregation avoids sparse tensors while compiling; same output as eager."""
    torch.manual_seed(0)
    enc = build_encoder(name, layout="kinect_v1_20", channels=TINY).eval()
    x = torch.randn(2, 8, 1, 20, 3)
    mask = torch.tensor([[True] * 8, [True] * 5 + [False] * 3])
    with torch.no_grad():
        ref = enc(x, mask).pooled
        got = torch.compile(enc, backend="eager", fullgraph=True)(x, mask).pooled
    torch.testing.assert_close(got, ref)


def test_ctrgc_output_is_contiguous():
    """A channels-last view into the temporal module's strided 1x1 convolution corrupted the
    heap in its CPU weight gradient (oneDNN, torch 2.14; seen in ``mhar train``)."""
    gc = CTRGC(in_channels=4, out_channels=8, adjacency=partition_adjacency("kinect_v1_20", "spatial"))
    assert gc(torch.randn(2, 4, 6, 20)).is_contiguous()


def test_the_four_stream_config_trains_and_is_its_streams_ensemble(tmp_path):
    """configs/utd_mhad_skeleton_4stream.yaml on real UTD-MHAD skeletons (subject 1 trains,
    subject 3 tests; tiny CTR-GCNs, one stage-1 epoch): the run ends as the late ensemble."""
    from multimodal_har.data.importers import import_dataset
    from multimodal_har.experiment import load_experiment
    from multimodal_har.engine import load_checkpoint
    from multimodal_har.train import train
    from tests.conftest import ROOT, SHARED

    store = tmp_path / "utd"
    import_dataset("utd_mhad", SHARED / "utd_mhad_train", store, modalities="skeleton", subjects=[1, 3],
                   actions=[1, 2, 3])
    sets = [f"data.store={store}", f"run_dir={tmp_path / 'run'}", "data.num_workers=0", "train.pretrain_epochs=1",
            "data.id_splits={train: ['*_s1_*'], test: ['*_s3_*']}"]
    sets += [f"model.encoders.{m}.kwargs.channels=[[8, 1], [16, 2]]" for m in STREAMS]
    cfg = load_experiment(ROOT / "configs/utd_mhad_skeleton_4stream.yaml", sets)
    summary = train(cfg, quiet=True)
    assert summary["status"] == "completed" and summary["epochs_done"] == 1
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    for m in STREAMS:  # each stream's late head is its stage-1 classifier
        torch.testing.assert_close(ck["model"][f"fusion.heads.{m}.weight"], ck["pretrain_heads"][f"{m}.weight"])
