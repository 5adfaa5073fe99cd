"""The multimodal classifier: per-modality encoders, one fusion module, one classifier head.

Composition by injection (as torchvision's ``RAFT(*, feature_encoder, ...)``): the model is
given its encoders and fusion module and checks on construction that they fit together
(every encoder exposes ``out_dim``; the fusion module was built for exactly the encoders'
modalities, with their widths). The modality order is the fusion module's: it is the column
order of ``present``.

Missing modalities follow the fusion interface (:mod:`fusion`): a modality absent for the whole
batch is not encoded at all; one absent for some samples is encoded on the samples that have
it only (a sub-batch, scattered back into zeros), so a hidden modality is never seen by its
encoder, and batch-norm statistics are not diluted by the zero rows of missing samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import combinations
from typing import Any, NamedTuple, Optional, Sequence

import torch
from torch import Tensor, nn

from multimodal_har.fusion import FusionOutput
from multimodal_har.encoders import EncoderOutput


class ModelOutput(NamedTuple):
    """Attributes:
        logits: ``(B, num_classes)`` class scores.
        fusion: the :class:`~fusion.FusionOutput` (``embedding (B, fusion.out_dim)``, ...).
        encoders: ``{modality: EncoderOutput}`` for the modalities that were encoded (rows of
            samples missing the modality are zeros with an all-False token mask).
    """

    logits: Tensor
    fusion: FusionOutput
    encoders: dict[str, EncoderOutput]


def subset_key(modalities: Sequence[str]) -> str:
    """``("rgb", "audio") -> "rgb+audio"``: how a modality subset is named in saved results."""
    return "+".join(modalities)


def nonempty_subsets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset, in the given order, smallest first (``2**M - 1`` of them)."""
    return [c for k in range(1, len(modalities) + 1) for c in combinations(modalities, k)]


def _batch_size(kwargs: Mapping[str, Any]) -> Optional[int]:
    for v in kwargs.values():
        if isinstance(v, Tensor) and v.ndim > 0:
            return v.shape[0]
    return None


def token_times(times: Tensor, mask: Tensor, token_mask: Tensor) -> Tensor:
    """Step times -> token times: ``times (B, T)`` seconds of the input steps, ``mask (B, T)``
    their validity, ``token_mask (B, T')`` the encoder's valid tokens -> ``(B, T')``.

    An encoder that pools ``n`` valid steps into ``n'`` valid tokens (strided convolutions,
    token windows) makes token ``j`` cover steps ``floor(j n / n')`` to ``ceil((j + 1) n / n') - 1``
    of the valid ones; its time is their mean. Padded tokens get 0."""
    times = times.to(torch.float32)
    mask = mask.to(torch.bool)
    n = mask.sum(dim=1, keepdim=True)  # (B, 1)
    k = token_mask.to(torch.bool).sum(dim=1, keepdim=True).clamp(min=1)  # (B, 1)
    j = torch.arange(token_mask.shape[1], device=times.device)[None]  # (1, T')
    lo = (j * n) // k  # (B, T')
    hi = torch.maximum(((j + 1) * n + k - 1) // k, lo + 1)
    rank = (mask.long().cumsum(dim=1) - 1)[:, None, :]  # (B, 1, T)
    inside = (rank >= lo[..., None]) & (rank < hi[..., None]) & mask[:, None, :]  # (B, T', T)
    w = inside.to(times.dtype)
    t = (w @ times[..., None])[..., 0] / w.sum(dim=2).clamp(min=1.0)  # (B, T')
    return torch.where(token_mask.to(torch.bool), t, 0.0)


def _with_times(out: EncoderOutput, times: Optional[tuple[Tensor, Tensor]]) -> EncoderOutput:
    """``out`` with ``extras["timestamps"] (B, T')`` from the input's step times, unless the
    encoder gave its own or has no tokens."""
    if times is None or out.tokens is None or out.mask is None:
        return out
    extras = dict(out.extras) if isinstance(out.extras, Mapping) else ({} if out.extras is None else None)
    if extras is None or "timestamps" in extras:
        return out
    t, m = times
    extras["timestamps"] = token_times(t.to(out.mask.device), m.to(out.mask.device), out.mask)
    return out._replace(extras=extras)


def _split_times(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], Optional[tuple[Tensor, Tensor]]]:
    """An input's kwargs -> (the encoder's kwargs, ``(times, mask)`` of its first timed kwarg or None)."""
    from multimodal_har.data.batch import is_times_key, mask_name

    enc = {k: v for k, v in kwargs.items() if not is_times_key(k)}
    for k in enc:
        tk = "times" if k == "x" else f"{k}_times"
        if tk in kwargs and mask_name(k) in kwargs:
            return enc, (kwargs[tk], kwargs[mask_name(k)])
    return enc, None


def _scatter(out: EncoderOutput, rows: Tensor, batch: int) -> EncoderOutput:
    """An encoder output over the sub-batch ``rows`` -> over the whole batch (zeros elsewhere,
    token mask False). Tensor extras with the sub-batch as leading dimension are scattered
    too; other extras are kept as they are."""
    def put(x: Tensor) -> Tensor:
        full = x.new_zeros((batch, *x.shape[1:]))
        full[rows] = x
        return full

    n = rows.numel()
    extras = out.extras
    if isinstance(extras, Mapping):
        extras = {k: put(v) if isinstance(v, Tensor) and v.ndim > 0 and v.shape[0] == n else v
                  for k, v in extras.items()}
    return EncoderOutput(pooled=put(out.pooled), tokens=None if out.tokens is None else put(out.tokens),
                         mask=None if out.mask is None else put(out.mask), extras=extras)


class MultimodalClassifier(nn.Module):
    """Encoders -> fusion -> head.

    Args:
        encoders: ``{modality: encoder}``; every encoder has an int ``out_dim`` and returns an
            :class:`~multimodal_har.encoders.EncoderOutput`.
        fusion: a fusion module (:mod:`fusion`) built with ``dims = {m: encoders[m].out_dim}``.
        num_classes: number of classes.
        head: the classifier on the fused embedding (default ``nn.Linear(fusion.out_dim,
            num_classes)``); must be None when the fusion produces logits itself (``late``).
        head_dropout: dropout on the embedding before the head.
        ensemble: feature-level fusion on top of an ensemble: one linear classifier per modality
            on its pooled embedding, and ``logits = head(fused) + sum_m log_softmax(head_m(pooled_m))``
            over the modalities present (a product of experts plus a learned cross-modal
            correction). The fused head starts at zero, so a model whose per-modality heads start
            from separately trained classifiers (``train.init_from`` / ``pretrain_epochs``) starts
            as their product-of-experts ensemble and moves from it only where training says so
            (zero-initialised residual branches: Goyal et al. 2017, Bachlechner et al. "ReZero", 2020).
            The per-modality logits are in ``fusion.extras["modality_logits"]`` (for the
            auxiliary loss). Ignored by fusions that produce logits themselves (``late``).
    """

    def __init__(self, *, encoders: Mapping[str, nn.Module], fusion: nn.Module, num_classes: int,
                 head: Optional[nn.Module] = None, head_dropout: float = 0.0, ensemble: bool = False) -> None:
        super().__init__()
        if not isinstance(encoders, Mapping) or not encoders:
            raise ValueError(f"encoders must be a non-empty dict {{modality: nn.Module}}, got {encoders!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        for m, enc in encoders.items():
            if not isinstance(enc, nn.Module):
                raise ValueError(f"encoder {m!r} must be an nn.Module, got {type(enc).__name__}")
            d = getattr(enc, "out_dim", None)
            if isinstance(d, bool) or not isinstance(d, int) or d < 1:
                raise ValueError(f"encoder {m!r} ({type(enc).__name__}) must expose an int out_dim >= 1, got {d!r}")
        for attr in ("modalities", "out_dim", "produces_logits"):
            if not hasattr(fusion, attr):
                raise ValueError(f"fusion ({type(fusion).__name__}) has no {attr!r}: expected a module of "
                                 f"the fusion package (build_fusion)")
        if set(fusion.modalities) != set(encoders) or len(fusion.modalities) != len(encoders):
            raise ValueError(f"the fusion module was built for modalities {list(fusion.modalities)} but the "
                             f"encoders are for {list(encoders)}: build it with dims="
                             f"{{m: encoders[m].out_dim}}")
        dims = getattr(fusion, "dims", None)
        if isinstance(dims, Mapping):
            wrong = {m: (dims[m], encoders[m].out_dim) for m in dims if dims[m] != encoders[m].out_dim}
            if wrong:
                raise ValueError("fusion dims differ from the encoders' out_dim: "
                                 + ", ".join(f"{m}: fusion {a} vs encoder {b}" for m, (a, b) in wrong.items()))
        self.modalities: tuple[str, ...] = tuple(fusion.modalities)
        self.num_classes = num_classes
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        self.fusion = fusion
        if fusion.produces_logits:
            if head is not None:
                raise ValueError(f"{type(fusion).__name__} produces class scores itself: give no head")
            c = getattr(fusion, "num_classes", num_classes)
            if c != num_classes:
                raise ValueError(f"the fusion module was built for {c} classes, the model for {num_classes}")
            self.head = None
        else:
            head = nn.Linear(fusion.out_dim, num_classes) if head is None else head
            self.head = nn.Sequential(nn.Dropout(head_dropout), head)
        self.modality_heads = None
        if ensemble and self.head is not None:
            self.modality_heads = nn.ModuleDict({m: nn.Linear(encoders[m].out_dim, num_classes)
                                                 for m in self.modalities})
            last = [mod for mod in self.head.modules() if isinstance(mod, nn.Linear)][-1]
            nn.init.zeros_(last.weight)  # the fused correction starts at zero: the model starts as the ensemble
            nn.init.zeros_(last.bias)

    # -- the two halves of a forward -------------------------------------------------------------
    def presence(self, inputs: Mapping[str, Mapping[str, Any]], present: Optional[Tensor] = None) -> Tensor:
        """``(B, M)`` bool: ``present`` (default all True) AND the modality is in ``inputs``."""
        unknown = [k for k in inputs if k not in self.encoders]
        if unknown:
            raise ValueError(f"inputs for unknown modalities {unknown}; the model has {', '.join(self.modalities)}")
        sizes = {m: _batch_size(kw) for m, kw in inputs.items()}
        sizes = {m: b for m, b in sizes.items() if b is not None}
        if present is not None:
            B = present.shape[0]
            device = present.device
        elif sizes:
            B = next(iter(sizes.values()))
            device = next(v for kw in inputs.values() for v in kw.values() if isinstance(v, Tensor)).device
        else:
            raise ValueError(f"no input tensor given: expected inputs for at least one of {', '.join(self.modalities)}")
        bad = {m: b for m, b in sizes.items() if b != B}
        if bad:
            raise ValueError(f"every input must hold B = {B} samples; got {bad}")
        if present is None:
            present = torch.ones(B, len(self.modalities), dtype=torch.bool, device=device)
        elif tuple(present.shape) != (B, len(self.modalities)):
            raise ValueError(f"present must be (B, M) = ({B}, {len(self.modalities)}) bool, columns in the "
                             f"order {', '.join(self.modalities)}; got {tuple(present.shape)}")
        given = torch.tensor([m in inputs for m in self.modalities], device=present.device)
        return present.to(torch.bool) & given

    def encode(self, inputs: Mapping[str, Mapping[str, Any]], present: Tensor) -> dict[str, EncoderOutput]:
        """Run each encoder on the samples that have its modality.

        Args:
            inputs: ``{modality: {kwarg: (B, ...)}}``, each called as ``encoder(**kwargs)``;
                step times (``times`` / ``{kwarg}_times`` ``(B, T)`` seconds and their masks,
                from the dataset's ``token_times``) are not passed: they become the tokens'
                ``extras["timestamps"]`` (:func:`token_times`) where the encoder gives none.
            present: ``(B, M)`` bool (from :meth:`presence`).

        Returns:
            ``{modality: EncoderOutput over the whole batch}`` for the modalities present in at
            least one sample.
        """
        B = present.shape[0]
        out: dict[str, EncoderOutput] = {}
        for i, m in enumerate(self.modalities):
            col = present[:, i]
            if m not in inputs or not bool(col.any()):
                continue  # absent for the whole batch: not run
            kwargs, times = _split_times(inputs[m])  # step times are not encoder arguments
            if bool(col.all()):
                out[m] = _with_times(self.encoders[m](**kwargs), times)
                continue
            rows = col.nonzero(as_tuple=True)[0]  # (n,)
            sub = {k: v.index_select(0, rows.to(v.device)) if isinstance(v, Tensor) and v.ndim > 0 else v
                   for k, v in kwargs.items()}
            sub_times = None if times is None else tuple(v.index_select(0, rows.to(v.device)) for v in times)
            out[m] = _scatter(_with_times(self.encoders[m](**sub), sub_times), rows, B)
        return out

    def fuse(self, encoded: Mapping[str, EncoderOutput], present: Tensor,
             modalities: Optional[Sequence[str]] = None) -> tuple[Tensor, FusionOutput]:
        """Fusion and head over ``encoded``, restricted to ``modalities`` (default: all).

        Returns ``logits (B, num_classes)`` and the :class:`~fusion.FusionOutput`. A sample with
        none of its modalities left gets the fusion's empty output (zeros / uniform).
        """
        if modalities is not None:
            unknown = [m for m in modalities if m not in self.encoders]
            if unknown or not modalities:
                raise ValueError(f"modalities must be a non-empty subset of {', '.join(self.modalities)}; "
                                 f"got {list(modalities)}")
            keep = torch.tensor([m in modalities for m in self.modalities], device=present.device)
            present = present & keep
        outputs = {}
        for i, m in enumerate(self.modalities):
            if encoded.get(m) is not None and bool(present[:, i].any()):
                outputs[m] = encoded[m]
        if not outputs:  # nothing at all in this batch: the fusion's "no modality" answer
            B = present.shape[0]
            ref = next(iter(encoded.values()), None)
            dtype = torch.float32 if ref is None else ref.pooled.dtype
            emb = torch.zeros(B, self.fusion.out_dim, device=present.device, dtype=dtype)
            if self.head is None:
                logits = torch.full((B, self.num_classes), -math.log(self.num_classes), device=present.device)
                return logits, FusionOutput(embedding=logits.exp(), logits=logits, extras={"present": present})
            return self.head(emb), FusionOutput(embedding=emb, logits=None, extras={"present": present})
        fused = self.fusion(outputs, present)
        logits = fused.logits if fused.logits is not None else self.head(fused.embedding)
        if self.modality_heads is not None:
            logits, fused = self._ensemble(logits, fused, outputs)
        return logits, fused

    def _ensemble(self, logits: Tensor, fused: FusionOutput, outputs: Mapping[str, EncoderOutput]):
        """``logits (B, C)`` of the fused head plus the present modalities' log-probabilities."""
        from multimodal_har.fusion.base import zero_missing

        present = fused.extras["present"]
        per = {}
        total = logits.float()
        for i, m in enumerate(self.modalities):
            if m not in outputs:
                continue
            z = self.modality_heads[m](zero_missing(outputs[m].pooled, present[:, i]))  # (B, C)
            per[m] = z
            total = total + zero_missing(torch.log_softmax(z.float(), dim=-1), present[:, i])
        extras = {**fused.extras, "modality_logits": per}
        return total, fused._replace(extras=extras)

    # -- forwards ----------------------------------------------------------------------------------
    def forward(self, inputs: Mapping[str, Mapping[str, Any]], present: Optional[Tensor] = None) -> ModelOutput:
        """
        Args:
            inputs: ``{modality: {kwarg: tensor}}``, e.g. ``{"joint": {"x": (B, T, M, V, C),
                "mask": (B, T)}}`` (the batch format of :mod:`multimodal_har.data.dataset`); a
                modality missing from the dict is missing for every sample.
            present: ``(B, M)`` bool, columns in :attr:`modalities` order; False hides a
                modality of a sample (default: all present).

        Returns:
            :class:`ModelOutput` with ``logits (B, num_classes)``.
        """
        present = self.presence(inputs, present)
        encoded = self.encode(inputs, present)
        logits, fused = self.fuse(encoded, present)
        return ModelOutput(logits=logits, fusion=fused, encoders=encoded)

    def forward_subset(self, inputs: Mapping[str, Mapping[str, Any]], present: Optional[Tensor] = None, *,
                       modalities: Sequence[str]) -> ModelOutput:
        """:meth:`forward` with only ``modalities`` available (the others hidden for every
        sample, through the missing-modality path; their encoders are not run)."""
        present = self.presence(inputs, present)
        if not modalities or any(m not in self.encoders for m in modalities):
            raise ValueError(f"modalities must be a non-empty subset of {', '.join(self.modalities)}; "
                             f"got {list(modalities)}")
        keep = torch.tensor([m in modalities for m in self.modalities], device=present.device)
        present = present & keep
        encoded = self.encode(inputs, present)
        logits, fused = self.fuse(encoded, present)
        return ModelOutput(logits=logits, fusion=fused, encoders=encoded)

    def subset_logits(self, inputs: Mapping[str, Mapping[str, Any]], present: Optional[Tensor] = None,
                      subsets: Optional[Sequence[Sequence[str]]] = None) -> dict[str, Tensor]:
        """``{"rgb+audio": (B, num_classes)}`` logits for every subset (default: every non-empty
        one), each equal to :meth:`forward_subset`'s, encoding every modality once (in eval
        mode an encoder's output for a sample does not depend on the other modalities)."""
        present = self.presence(inputs, present)
        encoded = self.encode(inputs, present)
        subsets = nonempty_subsets(self.modalities) if subsets is None else subsets
        return {subset_key(s): self.fuse(encoded, present, s)[0] for s in subsets}
