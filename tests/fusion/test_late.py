"""Late fusion: fused probabilities checked against hand-computed values for every mode.

Every head is the identity (weight I, bias 0), so a modality's class probabilities are the
softmax of its pooled embedding, chosen to be round numbers:
rgb [ln 3, 0] -> [0.75, 0.25], flow [0, ln 4] -> [0.2, 0.8], pose [0, 0] -> [0.5, 0.5].
"""

import math

import pytest
import torch

from multimodal_har.fusion.late import LateFusion
from multimodal_har.encoders import EncoderOutput

RGB, FLOW, POSE = [math.log(3), 0.0], [0.0, math.log(4)], [0.0, 0.0]


def out(*rows):
    x = torch.tensor(rows, dtype=torch.float32)
    return EncoderOutput(pooled=x, tokens=x[:, None], mask=torch.ones(len(rows), 1, dtype=torch.bool))


def identity_heads(f: LateFusion) -> LateFusion:
    with torch.no_grad():
        for head in f.heads.values():
            head.weight.copy_(torch.eye(2))
            head.bias.zero_()
    return f.eval()


def fused(f, outputs, present=None):
    o = f(outputs, present)
    torch.testing.assert_close(o.logits.exp(), o.embedding)  # logits = log p
    torch.testing.assert_close(o.embedding.sum(-1), torch.ones(len(o.embedding)))
    return o


def test_mean_of_probabilities_renormalised_over_present_modalities():
    f = identity_heads(LateFusion(dims={"rgb": 2, "flow": 2, "pose": 2}, num_classes=2, mode="mean"))
    present = torch.tensor([[True, True, True], [True, True, False], [False, False, True]])
    o = fused(f, {"rgb": out(RGB, RGB, RGB), "flow": out(FLOW, FLOW, FLOW), "pose": out(POSE, POSE, POSE)}, present)
    expected = torch.tensor([[1.45 / 3, 1.55 / 3], [0.475, 0.525], [0.5, 0.5]])
    torch.testing.assert_close(o.embedding, expected)
    torch.testing.assert_close(o.extras["weights"], torch.tensor([[1 / 3] * 3, [0.5, 0.5, 0], [0, 0, 1.0]]))
    # cross-entropy on the logits is the negative log of the fused probability of the label
    loss = torch.nn.functional.cross_entropy(o.logits, torch.tensor([0, 1, 0]), reduction="none")
    torch.testing.assert_close(loss, -torch.log(torch.tensor([1.45 / 3, 0.525, 0.5])))
    torch.testing.assert_close(o.extras["modality_logits"]["flow"][:2], torch.tensor([FLOW] * 2))  # rows present


def test_fixed_tsn_weights_one_to_one_and_a_half():
    f = identity_heads(LateFusion(dims={"rgb": 2, "flow": 2}, num_classes=2, mode="fixed",
                                  weights={"flow": 1.5, "rgb": 1.0}))
    o = fused(f, {"rgb": out(RGB, RGB), "flow": out(FLOW, FLOW)}, torch.tensor([[True, True], [True, False]]))
    torch.testing.assert_close(o.embedding, torch.tensor([[1.05 / 2.5, 1.45 / 2.5], [0.75, 0.25]]))
    torch.testing.assert_close(o.extras["weights"], torch.tensor([[0.4, 0.6], [1.0, 0.0]]))
    # a sequence in modality order is the same thing
    g = identity_heads(LateFusion(dims={"rgb": 2, "flow": 2}, num_classes=2, mode="fixed", weights=[1, 1.5]))
    torch.testing.assert_close(g({"rgb": out(RGB), "flow": out(FLOW)}).embedding, o.embedding[:1])


def test_learned_weights_are_a_softmax_over_present_modalities():
    f = identity_heads(LateFusion(dims={"rgb": 2, "flow": 2}, num_classes=2, mode="learned", weights=[1, 3]))
    torch.testing.assert_close(f.weight_logits.detach().softmax(0), torch.tensor([0.25, 0.75]))
    o = fused(f, {"rgb": out(RGB, RGB), "flow": out(FLOW, FLOW)}, torch.tensor([[True, True], [True, False]]))
    torch.testing.assert_close(o.embedding, torch.tensor([[0.3375, 0.6625], [0.75, 0.25]]))
    o.logits[:, 0].sum().backward()
    assert f.weight_logits.grad is not None and f.weight_logits.grad.abs().sum() > 0
    equal = LateFusion(dims={"rgb": 2, "flow": 2}, num_classes=2, mode="learned")
    torch.testing.assert_close(equal.weight_logits.detach(), torch.zeros(2))  # equal weights by default


def test_gate_conditioned_on_the_inputs():
    f = identity_heads(LateFusion(dims={"rgb": 2, "flow": 2}, num_classes=2, mode="gate"))
    with torch.no_grad():  # gate input [rgb(2) | flow(2) | presence(2)]: score_rgb = rgb[0], score_flow = 0
        f.gate.weight.zero_()
        f.gate.weight[0, 0] = 1.0
        f.gate.bias.zero_()
    o = fused(f, {"rgb": out(RGB, [0.0, 0.0], RGB), "flow": out(FLOW, FLOW, FLOW)},
              torch.tensor([[True, True], [True, True], [True, False]]))
    torch.testing.assert_close(o.extras["weights"], torch.tensor([[0.75, 0.25], [0.5, 0.5], [1.0, 0.0]]))
    torch.testing.assert_close(o.embedding, torch.tensor([[0.6125, 0.3875], [0.35, 0.65], [0.75, 0.25]]))
    with torch.no_grad():  # a bias alone: weights [0.2, 0.8] whatever the input
        f.gate.weight.zero_()
        f.gate.bias.copy_(torch.tensor([0.0, math.log(4)]))
    o = fused(f, {"rgb": out(RGB), "flow": out(FLOW)})
    torch.testing.assert_close(o.embedding, torch.tensor([[0.31, 0.69]]))


def test_confident_heads_stay_finite_in_log_space():
    f = identity_heads(LateFusion(dims={"rgb": 2, "flow": 2}, num_classes=2))
    o = f({"rgb": out([200.0, -200.0]), "flow": out([300.0, -300.0])})
    torch.testing.assert_close(o.logits[0, 1], torch.tensor(-400.0 - math.log(2)), rtol=1e-5, atol=1e-3)


def test_product_of_experts_multiplies_the_present_modalities_probabilities():
    f = identity_heads(LateFusion(dims={"rgb": 2, "flow": 2, "pose": 2}, num_classes=2, mode="poe"))
    present = torch.tensor([[True, True, False], [True, True, True], [False, False, True], [False, False, False]])
    o = fused(f, {"rgb": out(RGB, RGB, RGB, RGB), "flow": out(FLOW, FLOW, FLOW, FLOW),
                  "pose": out(POSE, POSE, POSE, POSE)}, present)
    # 0.75 * 0.2 : 0.25 * 0.8 = 0.15 : 0.2; the uniform pose expert changes nothing; pose alone
    # is uniform, and so is a sample with no modality
    expected = torch.tensor([[3 / 7, 4 / 7], [3 / 7, 4 / 7], [0.5, 0.5], [0.5, 0.5]])
    torch.testing.assert_close(o.embedding, expected)
    torch.testing.assert_close(o.extras["weights"][0], torch.tensor([0.5, 0.5, 0.0]))
    # weights are exponents: rgb squared, 0.5625 * 0.2 : 0.0625 * 0.8
    g = identity_heads(LateFusion(dims={"rgb": 2, "flow": 2}, num_classes=2, mode="poe", weights=[2, 1]))
    torch.testing.assert_close(fused(g, {"rgb": out(RGB), "flow": out(FLOW)}).embedding,
                               torch.tensor([[0.1125 / 0.1625, 0.05 / 0.1625]]))
    # a missing modality's values are never read: NaN there changes nothing (rgb alone, squared:
    # 0.5625 : 0.0625)
    nan = out([float("nan"), 0.0])
    o2 = fused(g, {"rgb": out(RGB), "flow": nan}, torch.tensor([[True, False]]))
    torch.testing.assert_close(o2.embedding, torch.tensor([[0.9, 0.1]]))


def test_wrong_settings_are_named():
    dims = {"rgb": 2, "flow": 2}
    with pytest.raises(ValueError, match="unknown late fusion mode 'max'; valid choices: mean, fixed, learned, gate, poe"):
        LateFusion(dims=dims, num_classes=2, mode="max")
    with pytest.raises(ValueError, match="mode 'fixed' needs weights"):
        LateFusion(dims=dims, num_classes=2, mode="fixed")
    with pytest.raises(ValueError, match=r"weights must name every modality \(rgb, flow\), got rgb"):
        LateFusion(dims=dims, num_classes=2, mode="fixed", weights={"rgb": 1})
    with pytest.raises(ValueError, match="weights must hold 2 values in the order rgb, flow, got 3"):
        LateFusion(dims=dims, num_classes=2, mode="fixed", weights=[1, 1, 1])
    with pytest.raises(ValueError, match="weights must be > 0"):
        LateFusion(dims=dims, num_classes=2, mode="fixed", weights=[1, 0])
    with pytest.raises(ValueError, match="weights are used by the 'fixed', 'learned' and 'poe' modes, not 'mean'"):
        LateFusion(dims=dims, num_classes=2, weights=[1, 2])
    with pytest.raises(ValueError, match="num_classes must be an int >= 2, got 1"):
        LateFusion(dims=dims, num_classes=1)
