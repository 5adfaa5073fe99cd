"""ST-GCN on torch-geometric: partitions, parity with a dense reference, masks, gradients."""

import numpy as np
import pytest
import torch

from multimodal_har.encoders import ENCODERS, build_encoder
from multimodal_har.encoders.skeleton_gcn import (STGCN, SpatialGraphConv, bone_parents, hops_to_center,
                                                  make_streams, partition_adjacency)
from multimodal_har.skeleton import get_layout
from tests.multimodal_har.gradients import assert_every_parameter_has_a_finite_gradient

SMALL = ((16, 1), (16, 1), (32, 2), (32, 1))


@pytest.mark.parametrize("layout", ["kinect_v1_20", "ntu_25", "coco_17", "h36m_17", "mediapipe_33"])
@pytest.mark.parametrize("strategy,k", [("uniform", 1), ("distance", 2), ("spatial", 3)])
def test_partitions_cover_each_neighbourhood_once(layout, strategy, k):
    L = get_layout(layout)
    A = partition_adjacency(L, strategy)
    assert A.shape == (k, L.num_joints, L.num_joints)
    torch.testing.assert_close(A.sum(dim=(0, 1)), torch.ones(L.num_joints))  # each target's weights sum to 1
    support = (A > 0).sum(0)
    assert support.max() == 1  # an edge is in one partition only
    assert (support.sum(0) == torch.tensor([1 + sum(j in b for b in L.bones) for j in L.joints])).all()


def test_spatial_partition_on_the_kinect_skeleton():
    L = get_layout("kinect_v1_20")
    hop = hops_to_center(L)
    assert hop[L.index(L.center)] == 0 and hop[L.index("hand_left")] == 6  # spine_base, spine_mid, spine_shoulder, shoulder, elbow, wrist, hand
    A = partition_adjacency(L, "spatial")
    e, w = L.index("elbow_left"), L.index("wrist_left")
    # messages into the elbow: itself (root), the shoulder (centripetal), the wrist (centrifugal)
    assert A[0, e, e] > 0 and A[1, L.index("shoulder_left"), e] > 0 and A[2, w, e] > 0
    with pytest.raises(ValueError, match="unknown partition strategy 'nope'; valid choices: uniform"):
        partition_adjacency(L, "nope")


def test_message_passing_equals_the_dense_formula():
    torch.manual_seed(0)
    A = partition_adjacency("kinect_v1_20", "spatial")
    conv = SpatialGraphConv(in_channels=5, out_channels=7, adjacency=A)
    with torch.no_grad():
        conv.importance.uniform_(0.5, 1.5)  # not all ones, so importance must be applied per edge
    x = torch.randn(4, 20, 5)
    h = conv.lin(x).view(4, 20, 3, 7)  # (B, V, K, C)
    ref = torch.einsum("bvkc,kvw->bwc", h, conv.dense_adjacency())
    torch.testing.assert_close(conv(x), ref, rtol=1e-5, atol=1e-5)


def test_shapes_out_dim_gradients_and_streams():
    torch.manual_seed(0)
    enc = build_encoder("skeleton_gcn", layout="kinect_v1_20", streams=("joint", "bone", "motion"), channels=SMALL)
    x = torch.randn(3, 24, 2, 20, 3)
    x[:, :, 1] = 0  # nobody in slot 1
    out = enc(x)
    assert enc.out_dim == 32
    assert out.pooled.shape == (3, 32) and out.tokens.shape == (3, 12, 32) and out.mask.shape == (3, 12)
    assert torch.isfinite(out.pooled).all()
    out.pooled.sum().backward()
    assert_every_parameter_has_a_finite_gradient(enc)


@pytest.mark.parametrize("streams", [("joint",), ("joint", "bone", "motion")])
def test_padded_frames_and_empty_person_slots_do_not_change_the_output(streams):
    torch.manual_seed(0)
    enc = STGCN(layout="kinect_v1_20", channels=SMALL, streams=streams).eval()
    x = torch.randn(1, 13, 1, 20, 3)
    ref = enc(x)
    padded = torch.cat([x, torch.randn(1, 7, 1, 20, 3)], dim=1)  # garbage beyond the end
    mask = torch.zeros(1, 20, dtype=torch.bool)
    mask[:, :13] = True
    got = enc(padded, mask)
    n = ref.tokens.shape[1]
    torch.testing.assert_close(got.tokens[:, :n], ref.tokens, rtol=1e-4, atol=1e-5)
    assert got.mask[0, :n].all() and not got.mask[0, n:].any()
    torch.testing.assert_close(got.pooled, ref.pooled, rtol=1e-4, atol=1e-5)
    two = torch.cat([x, torch.zeros_like(x)], dim=2)  # a second, empty person slot
    torch.testing.assert_close(enc(two).pooled, ref.pooled, rtol=1e-4, atol=1e-5)


def test_bone_and_motion_streams():
    L = get_layout("kinect_v1_20")
    x = torch.zeros(1, 3, 1, 20, 3)
    x[0, :, 0, L.index("elbow_left")] = torch.tensor([1.0, 2.0, 3.0])
    x[0, 2, 0, L.index("elbow_left"), 0] = 5.0
    s = make_streams(x, L, ["bone", "motion"])
    assert s.shape == (1, 3, 1, 20, 6)
    np.testing.assert_allclose(s[0, 0, 0, L.index("elbow_left"), :3], [1, 2, 3])  # elbow - shoulder (0)
    np.testing.assert_allclose(s[0, 1, 0, L.index("elbow_left"), 3:], [4, 0, 0])  # frame 2 - frame 1
    assert (s[0, 2, ..., 3:] == 0).all()  # no motion after the last frame
    mask = torch.tensor([[True, True, False]])  # frame 2 is padding: frame 1 has no next frame
    s = make_streams(x, L, ["bone", "motion"], mask)
    assert (s[0, 1:, ..., 3:] == 0).all() and (s[0, 2] == 0).all()


@pytest.mark.parametrize("layout", ["kinect_v1_20", "ntu_25", "coco_17", "mediapipe_33"])
def test_bone_streams_from_the_parent_index_equal_the_layouts(layout):
    # the encoders' device-side parent index (what CUDA-graph capture needs) gives Layout.stream's values
    L = get_layout(layout)
    x = torch.randn(2, 6, 2, L.num_joints, 3)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    streams = ["joint", "bone", "motion", "bone_motion"]
    torch.testing.assert_close(make_streams(x, L, streams, mask, bone_parents(L)), make_streams(x, L, streams, mask),
                               rtol=0, atol=0)


def test_wrong_inputs_are_named():
    enc = STGCN(layout="kinect_v1_20", channels=SMALL)
    with pytest.raises(ValueError, match=r"expected x of shape \(B, T, M, 20, 3\) for layout kinect_v1_20"):
        enc(torch.randn(2, 10, 1, 25, 3))
    with pytest.raises(ValueError, match=r"mask must be \(B, T\)"):
        enc(torch.randn(2, 10, 1, 20, 3), torch.ones(2, 9, dtype=torch.bool))
    with pytest.raises(ValueError, match="unknown input stream 'velocity'; valid choices: joint, bone, motion"):
        STGCN(layout="kinect_v1_20", streams=("velocity",))
    with pytest.raises(ValueError, match="unknown encoder 'gcn'; valid choices: .*skeleton_gcn"):
        build_encoder("gcn")
    assert "skeleton_gcn" in ENCODERS


def test_cpu_backward_through_strided_residuals_does_not_crash():
    """torch 2.14's oneDNN backward of a strided 1x1 convolution on channels-last strides
    corrupts the heap (a segfault); the encoder keeps its feature maps contiguous. Run in a
    child process so a crash fails this test instead of killing the suite."""
    import subprocess
    import sys

    code = ("import torch\n"
            "from multimodal_har.encoders.skeleton_gcn import STGCN\n"
            "enc = STGCN(layout='kinect_v1_20', channels=((8, 1), (16, 2), (16, 1), (32, 2)))\n"
            "for _ in range(3):\n"
            "    enc(torch.randn(4, 100, 1, 20, 3)).pooled.sum().backward()\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (r.returncode, r.stderr[-2000:])
