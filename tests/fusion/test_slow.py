"""Slow fusion: the hierarchy, its temporal extents, padding parity, errors."""

import pytest
import torch

from multimodal_har.fusion.slow import SlowFusion, _Merge, pair_tree
from multimodal_har.encoders import EncoderOutput

from .common import DIMS, make_output


def test_default_tree_pairs_neighbours_level_by_level():
    assert pair_tree(["a"]) == ["a"]
    assert pair_tree(["a", "b"]) == ["a", "b"]
    assert pair_tree(["a", "b", "c"]) == [["a", "b"], ["c"]]
    assert pair_tree(["a", "b", "c", "d"]) == [["a", "b"], ["c", "d"]]
    assert pair_tree(list("abcde")) == [[["a", "b"], ["c", "d"]], [["e"]]]


def test_hierarchy_depth_lengths_and_lifted_branches():
    f = SlowFusion(dims=DIMS, width=8, steps=8)
    assert f.tree == (("a", "b"), ("c",)) and f.depth == 2 and f.lengths == [8, 4, 2]
    g = SlowFusion(dims=DIMS, width=8, steps=8, tree=[[["a", "b"]], "c"])
    assert g.depth == 3 and g.lengths == [8, 4, 2, 1]
    # "c" sits two levels below the root's other child: lifted by two single-child merges
    lifted = g.root.kids[1]
    assert isinstance(lifted, _Merge) and len(lifted.kids) == 1 and len(lifted.kids[0].kids) == 1
    out = g({m: make_output(2, 5, d) for m, d in DIMS.items()})
    assert out.embedding.shape == (2, 8) and out.extras["tokens"].shape == (2, 1, 8)


def test_temporal_extent_grows_up_the_hierarchy():
    """Steps 8, kernel 3, stride 2: the root's first step sees leaf steps 0-3 only, so a
    change at the last moment of a modality reaches the root's second step only."""
    torch.manual_seed(0)
    f = SlowFusion(dims=DIMS, width=8, steps=8).eval()
    outs = {m: make_output(1, 8, d) for m, d in DIMS.items()}
    ref = f(outs).extras["tokens"]
    late = outs["c"].tokens.clone()
    late[:, -1] = -late[:, -1]  # (not a constant shift: the leaf LayerNorm would remove it)
    got = f({**outs, "c": outs["c"]._replace(tokens=late)}).extras["tokens"]
    torch.testing.assert_close(got[:, 0], ref[:, 0])
    assert not torch.allclose(got[:, 1], ref[:, 1])


@pytest.mark.parametrize("align", ["pool", "interpolate"])
def test_padded_tokens_do_not_change_the_output(align):
    torch.manual_seed(0)
    f = SlowFusion(dims=DIMS, width=8, steps=4, align=align).eval()
    outs = {m: make_output(1, t, d) for (m, d), t in zip(DIMS.items(), (5, 3, 7))}
    ref = f(outs).embedding
    a = outs["a"]
    padded = EncoderOutput(a.pooled, torch.cat([a.tokens, torch.full((1, 3, 6), -1e4)], 1),
                           torch.cat([a.mask, torch.zeros(1, 3, dtype=torch.bool)], 1))
    torch.testing.assert_close(f({**outs, "a": padded}).embedding, ref, rtol=1e-5, atol=1e-6)


def test_one_modality_and_a_single_leaf_tree():
    torch.manual_seed(0)
    f = SlowFusion(dims={"pose": 4}, width=8, steps=4)
    assert f.tree == ("pose",) and f.depth == 1
    out = f({"pose": make_output(3, 6, 4)})
    assert out.embedding.shape == (3, 8)
    out.embedding.sum().backward()
    assert all(p.grad is not None for p in f.parameters())


def test_bad_trees_are_named():
    with pytest.raises(ValueError, match=r"tree must name every modality of dims exactly once \(a, b, c\), got a, b"):
        SlowFusion(dims=DIMS, tree=["a", "b"])
    with pytest.raises(ValueError, match="got a, b, c, a"):
        SlowFusion(dims=DIMS, tree=[["a", "b"], ["c", "a"]])
    with pytest.raises(ValueError, match="tree names unknown modality 'd'; valid: a, b, c"):
        SlowFusion(dims=DIMS, tree=[["a", "b"], ["c", "d"]])
    with pytest.raises(ValueError, match="a tree node must be a modality name or a non-empty list"):
        SlowFusion(dims=DIMS, tree=[["a", "b", "c"], []])
