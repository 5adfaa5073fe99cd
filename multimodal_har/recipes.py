"""Training recipes that make a jointly trained fusion learn every modality (stage 2 of ``mhar train``).

Why they exist: trained jointly end to end, a fused model tends to lean on the modality that
lowers the loss fastest and under-train the others ("modality competition": Wang, Tran,
Feiszli, "What Makes Training Multi-modal Classification Networks Hard?", CVPR 2020; Peng,
Wei, Deng, Wang, Hu, "Balanced Multimodal Learning via On-the-fly Gradient Modulation", CVPR
2022; Du et al., "On Uni-Modal Feature Learning in Supervised Multi-Modal Learning", ICML
2023). Measured on UTD-MHAD skeleton + inertial (benchmarks/README.md), most jointly trained
fusions did worse than multiplying two separately trained models. The pieces, each a
``train`` config key:

* ``pretrain_epochs`` / ``pretrain_lr`` (stage 1, in :mod:`multimodal_har.train`): every encoder
  first trained alone with its own linear head, as a separately trained model would be.
  :func:`init_late_heads` then starts a ``late`` fusion's heads from those heads, so that stage 2
  starts from the separately trained ensemble (``mode="poe"``: their product) and can only
  move away from it where the training loss says so.
* ``init_from``: stage 1 done elsewhere: each encoder (and its head) loaded from a separately
  trained run of that modality (:func:`load_trained_encoders`), so that stage 2 starts from
  exactly the models whose product is the ensemble baseline.
* ``freeze_encoders`` / ``encoder_lr_scale``: in stage 2, keep the pre-trained encoders fixed,
  or fine-tune them at ``encoder_lr_scale * lr`` (per-group learning rates) while the fusion
  learns at ``lr``.
* ``aux_loss_weight``: per-modality cross-entropy added to the fused loss (deep supervision of
  each modality; Wang et al. 2020's uni-modal terms with fixed weights): ``loss = CE(fused) +
  w * mean_m CE(head_m(encoder_m))``. The heads are the ``late`` fusion's own per-modality heads
  (so each is trained on its modality alone, which also makes the subset paths that the
  ablation reads trained ones), else the stage-1 heads.
* ``ogm_alpha``: OGM-GE (Peng et al. 2022). Each step, the dominant modality's encoder gradient
  is scaled down by ``1 - tanh(alpha * (rho_m - 1))`` where ``rho_m`` is the ratio of its
  summed true-class confidence to the mean of the other modalities', and Gaussian noise with
  the gradient's own standard deviation is added to every encoder's weight gradients
  (generalisation enhancement). Departure, and why: the paper reads each modality's confidence
  off its share of a linear fused head; we read it off the per-modality heads (the ``late``
  heads or the auxiliary ones), which exist for every fusion method and for any number of
  modalities; with more than two modalities ``rho_m`` compares ``m`` to the mean of the rest.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model import ModelOutput, MultimodalClassifier


def is_late(model: MultimodalClassifier) -> bool:
    """Whether the fusion has one linear head per modality (``late``)."""
    return isinstance(getattr(model.fusion, "heads", None), nn.ModuleDict) and model.fusion.produces_logits


def modality_heads(model: MultimodalClassifier) -> Optional[nn.ModuleDict]:
    """The model's own per-modality classifiers whose predictions it combines (``late``'s heads,
    or those of ``model.ensemble``), else None."""
    if is_late(model):
        return model.fusion.heads
    return getattr(model, "modality_heads", None)


class FusionWithHeads(nn.Module):
    """Stage 2 with per-modality predictions beside the fused one.

    ``forward(inputs, present) -> (ModelOutput, {modality: logits (B, C)}, present (B, M))``:
    the per-modality logits are the ``late`` fusion's own (``extras["modality_logits"]``) or
    ``heads[m](pooled_m)``; ``present`` is the presence the fusion used (rows where a modality
    is absent are to be ignored)."""

    def __init__(self, model: MultimodalClassifier, heads: Optional[nn.ModuleDict]) -> None:
        super().__init__()
        self.model = model
        self.late = modality_heads(model) is not None  # the model's own heads (late, ensemble)
        if not self.late and heads is None:
            raise ValueError("per-modality heads are needed for a model without its own (late and ensemble have them)")
        self.heads = None if self.late else heads

    def forward(self, inputs, present: Optional[Tensor] = None) -> tuple[ModelOutput, dict[str, Tensor], Tensor]:
        out = self.model(inputs, present)
        used = out.fusion.extras["present"]
        if self.late:
            per = dict(out.fusion.extras.get("modality_logits", {}))
        else:
            per = {m: self.heads[m](o.pooled) for m, o in out.encoders.items()}
        return out, per, used


def modality_loss(logits: dict[str, Tensor], present: Tensor, labels: Tensor, modalities, smoothing: float) -> Tensor:
    """Mean cross-entropy over every (labelled sample, present modality) pair; a zero that still
    reaches every head when there is none."""
    total, count = None, 0
    for i, m in enumerate(modalities):
        if m not in logits:
            continue
        rows = present[:, i] & (labels >= 0)
        if not bool(rows.any()):
            continue
        ce = F.cross_entropy(logits[m][rows].float(), labels[rows], reduction="sum", label_smoothing=smoothing)
        total = ce if total is None else total + ce
        count += int(rows.sum())
    if total is None:
        return sum(v.sum() * 0.0 for v in logits.values())
    return total / count


def ogm_coefficients(logits: dict[str, Tensor], present: Tensor, labels: Tensor, modalities,
                     alpha: float) -> dict[str, float]:
    """OGM's per-modality gradient coefficients ``{m: k_m in (0, 1]}`` for one batch.

    ``s_m`` is the sum over the batch's labelled samples that have every given modality of
    the softmax probability of the true class under ``m``'s head; ``rho_m = s_m / mean_{k != m}
    s_k``; ``k_m = 1 - tanh(alpha * (rho_m - 1))`` when ``rho_m > 1``, else 1."""
    names = [m for m in modalities if m in logits]
    if len(names) < 2 or alpha <= 0:
        return {m: 1.0 for m in names}
    cols = [list(modalities).index(m) for m in names]
    rows = present[:, cols].all(dim=1) & (labels >= 0)
    if not bool(rows.any()):
        return {m: 1.0 for m in names}
    y = labels[rows]
    s = {m: float(torch.softmax(logits[m][rows].detach().float(), dim=-1).gather(1, y[:, None]).sum())
         for m in names}
    out = {}
    for m in names:
        rest = sum(s[k] for k in names if k != m) / (len(names) - 1)
        rho = s[m] / max(rest, 1e-8)
        out[m] = 1.0 - math.tanh(alpha * (rho - 1.0)) if rho > 1.0 else 1.0
    return out


@torch.no_grad()
def modulate_gradients(model: MultimodalClassifier, coeffs: dict[str, float], generator: Optional[torch.Generator] = None,
                       noise: bool = True) -> None:
    """Scale each encoder's gradients by ``coeffs[m]`` and (GE) add ``N(0, std(grad))`` to its
    weight gradients (parameters with more than one dimension), in place, after ``backward``."""
    for m, k in coeffs.items():
        for p in model.encoders[m].parameters():
            if p.grad is None:
                continue
            if k != 1.0:
                p.grad.mul_(k)
            if noise and p.ndim > 1 and p.grad.numel() > 1:
                std = float(p.grad.std())
                if math.isfinite(std) and std > 0:
                    p.grad.add_(torch.randn(p.grad.shape, generator=generator, dtype=p.grad.dtype,
                                            device=p.grad.device) * std)


@torch.no_grad()
def init_late_heads(model: MultimodalClassifier, heads: nn.ModuleDict) -> bool:
    """Copy stage-1 heads into the model's own per-modality heads (``late`` fusion's, or
    ``model.ensemble``'s; same shapes); returns whether it did (False for other models)."""
    own = modality_heads(model)
    if own is None:
        return False
    for m, head in own.items():
        if m in heads and head.weight.shape == heads[m].weight.shape:
            head.load_state_dict(heads[m].state_dict())
    return True


def load_trained_encoders(model: MultimodalClassifier, heads: nn.ModuleDict, sources: dict[str, str]) -> list[str]:
    """Stage 1 from separately trained runs: ``sources = {modality: run dir or checkpoint}``.

    Each named encoder gets the weights of the same-named encoder of that run's checkpoint
    (``last.pt`` of a run directory), and ``heads[modality]`` that run's classifier of the
    modality: its stage-1 head (``pretrain_heads``), its ``late`` head, or, for a run of that
    one modality, its linear head. Returns one line per modality saying what was loaded.
    ``ValueError`` names a missing modality or a shape that does not fit."""
    from pathlib import Path

    from .engine import load_checkpoint

    lines = []
    for m, src in sources.items():
        if m not in model.encoders:
            raise ValueError(f"train.init_from names {m!r}, which is not a modality of this model "
                             f"({', '.join(model.modalities)})")
        path = Path(src)
        path = path / "last.pt" if path.is_dir() else path
        ck = load_checkpoint(path)
        state = ck["model"]
        prefix = f"encoders.{m}."
        enc = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not enc:
            mods = sorted({k.split(".")[1] for k in state if k.startswith("encoders.")})
            raise ValueError(f"train.init_from.{m}: {path} has no encoder {m!r} (it has {mods})")
        try:
            model.encoders[m].load_state_dict(enc)
        except RuntimeError as e:
            raise ValueError(f"train.init_from.{m}: the encoder of {path} does not fit this model's: {e}") from None
        head, where = None, "no head"
        if f"{m}.weight" in ck.get("pretrain_heads", {}):
            head, where = {k.split(".", 1)[1]: v for k, v in ck["pretrain_heads"].items() if k.startswith(f"{m}.")}, \
                "its stage-1 head"
        elif f"fusion.heads.{m}.weight" in state:
            head, where = {k.rsplit(".", 1)[1]: v for k, v in state.items() if k.startswith(f"fusion.heads.{m}.")}, \
                "its late head"
        elif {k.split(".")[1] for k in state if k.startswith("encoders.")} == {m} \
                and "head.1.weight" in state:
            head, where = {"weight": state["head.1.weight"], "bias": state["head.1.bias"]}, "its classifier"
        if head is not None and head["weight"].shape == heads[m].weight.shape:
            heads[m].load_state_dict(head)
        else:
            where = "no head of the right shape: the head starts untrained"
        lines.append(f"{m}: encoder of {path} (epoch {ck.get('epoch')}), {where}")
    return lines


def encoder_param_groups(model: MultimodalClassifier, others: list[nn.Parameter], *, lr: float, scale: float,
                         weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: the encoders' trainable parameters at ``lr * scale``, the rest (fusion,
    heads) at ``lr``; weight decay on matrices only (biases and norms: none)."""
    enc = [p for p in model.encoders.parameters() if p.requires_grad]
    ids = {id(p) for p in enc}
    rest = [p for p in others if id(p) not in ids and p.requires_grad]
    groups = []
    for params, group_lr in ((enc, lr * scale), (rest, lr)):
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        groups += [{"params": decay, "weight_decay": weight_decay, "lr": group_lr},
                   {"params": no_decay, "weight_decay": 0.0, "lr": group_lr}]
    return [g for g in groups if g["params"]]


__all__ = ["FusionWithHeads", "encoder_param_groups", "init_late_heads", "is_late", "load_trained_encoders",
           "modality_loss",
           "modulate_gradients", "ogm_coefficients"]
