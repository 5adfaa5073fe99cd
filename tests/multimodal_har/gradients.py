"""One check shared by the model tests: after ``backward()``, every trainable parameter of a
module has a gradient and it is finite."""

from __future__ import annotations

import torch


def assert_every_parameter_has_a_finite_gradient(module: torch.nn.Module, what: str = "") -> None:
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{what}: parameters without a gradient: {missing}"
    bad = [n for n, p in module.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"{what}: non-finite gradients in {bad}"
