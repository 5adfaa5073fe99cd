"""The contract every registered fusion method meets (timm test_models style): shapes and
``out_dim``, every subset of 3 modalities, parity between a modality missing for a sample and
one left out, no NaN anywhere (even with NaN in the missing inputs), gradients, input errors."""

import pytest
import torch

from multimodal_har.fusion import FUSION

from .common import DIMS, SUBSETS, build, make_outputs, poison, take, with_grad

NAMES = FUSION.names()


def check_output(f, out, B):
    assert out.embedding.shape == (B, f.out_dim)
    assert torch.isfinite(out.embedding).all()
    if f.produces_logits:
        assert out.logits.shape == (B, f.num_classes) and torch.isfinite(out.logits).all()
    else:
        assert out.logits is None
    assert out.extras["present"].shape == (B, len(DIMS)) and out.extras["present"].dtype == torch.bool


@pytest.mark.parametrize("name", NAMES)
def test_every_subset_left_out_equals_marked_missing(name):
    torch.manual_seed(0)
    f = build(name).eval()
    full = make_outputs(B=3)
    for subset in SUBSETS:
        given = {m: full[m] for m in subset}
        out = f(given)
        check_output(f, out, 3)
        # the same subset, with every modality passed but the others marked missing (and NaN)
        present = torch.tensor([[m in subset for m in DIMS]] * 3)
        marked = {m: (o if m in subset else poison(o, slice(None))) for m, o in full.items()}
        out2 = f(marked, present)
        torch.testing.assert_close(out2.embedding, out.embedding, rtol=1e-5, atol=1e-6)
        assert (out2.extras["present"] == present).all()
        none = {m: (full[m] if m in subset else None) for m in DIMS}  # None: missing for the batch
        torch.testing.assert_close(f(none).embedding, out.embedding, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_a_modality_missing_for_one_sample_equals_that_sample_without_it(name):
    """A batch of 7 samples, each with another subset: row b equals sample b alone, given
    only its modalities. Missing entries hold NaN: they must never be read."""
    torch.manual_seed(0)
    f = build(name).eval()
    B = len(SUBSETS)
    full = make_outputs(B=B, seed=1)
    present = torch.tensor([[m in s for m in DIMS] for s in SUBSETS])  # (7, 3)
    inputs = {m: poison(o, ~present[:, i]) for i, (m, o) in enumerate(full.items())}
    out = f(inputs, present)
    check_output(f, out, B)
    for b, subset in enumerate(SUBSETS):
        alone = f({m: take(full[m], [b]) for m in subset})
        torch.testing.assert_close(out.embedding[b:b + 1], alone.embedding, rtol=1e-4, atol=1e-5)
        if f.produces_logits:
            torch.testing.assert_close(out.logits[b:b + 1], alone.logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    f = build(name).train()
    inputs = with_grad(make_outputs(B=4))
    out = f(inputs)
    loss = out.embedding.square().sum() + (0 if out.logits is None else out.logits.logsumexp(-1).sum())
    loss.backward()
    bad = [n for n, p in f.named_parameters()
           if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not bad
    for m, o in inputs.items():  # the gradient reaches every encoder, through what the method reads
        used = o.pooled.grad if name in ("concat", "late") else o.tokens.grad
        assert used is not None and torch.isfinite(used).all() and used.abs().sum() > 0, m


@pytest.mark.parametrize("name", NAMES)
def test_mixed_subsets_and_an_empty_sample_train_without_nan(name):
    """Training mode, per-sample subsets (one sample with nothing): finite output and gradients;
    the empty sample gets zeros (uniform probabilities for late fusion)."""
    torch.manual_seed(0)
    f = build(name).train()
    B = len(SUBSETS) + 1
    full = make_outputs(B=B, seed=2)
    present = torch.tensor([[m in s for m in DIMS] for s in SUBSETS] + [[False] * 3])
    inputs = with_grad({m: poison(o, ~present[:, i]) for i, (m, o) in enumerate(full.items())})
    out = f(inputs, present)
    check_output(f, out, B)
    if f.produces_logits:
        torch.testing.assert_close(out.embedding[-1], torch.full((f.num_classes,), 1 / f.num_classes))
        (torch.nn.functional.cross_entropy(out.logits, torch.arange(B) % f.num_classes)).backward()
    else:
        assert (out.embedding[-1] == 0).all()
        out.embedding.square().sum().backward()
    for n, p in f.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), n
    for i, (m, o) in enumerate(inputs.items()):  # nothing flows back into the missing (NaN) entries
        for g in (o.pooled.grad, o.tokens.grad):
            if g is not None:
                assert torch.isfinite(g).all() and (g[~present[:, i]] == 0).all(), m


@pytest.mark.parametrize("name", NAMES)
def test_wrong_inputs_are_named(name):
    f = build(name)
    outs = make_outputs(B=2)
    with pytest.raises(ValueError, match=r"unknown modalities \['d'\]; this fusion module was built for a, b, c"):
        f({**outs, "d": outs["a"]})
    with pytest.raises(ValueError, match="no modality given: expected an EncoderOutput for at least one of a, b, c"):
        f({"a": None})
    with pytest.raises(ValueError, match=r"b: expected pooled of shape \(B, D\) = \(2, 4\), got \(2, 5\)"):
        f({**outs, "b": outs["c"]})
    with pytest.raises(ValueError, match=r"present must be a \(B, num_modalities\) = \(2, 3\) bool tensor, "
                                         r"columns in the order a, b, c; got \(2, 2\)"):
        f(outs, torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"expected mask of shape \(B, T'\)"):
        f({**outs, "a": outs["a"]._replace(mask=torch.ones(3, 5, dtype=torch.bool))})
