"""Fusion: the ways modality embeddings are combined (late, early, slow, cross-attention...).

One file per method, registered lazily in :data:`FUSION`; ``build_fusion(name, **kwargs)``
builds one, and an unknown name lists the choices. Classes stay usable without the registry.

The interface every method follows
----------------------------------
*Construction*: keyword-only arguments, always ``dims: dict[str, int]``: each modality's
encoder ``out_dim``, in a fixed modality order (the dict's order), e.g.
``{"rgb": 512, "flow": 512, "pose": 256}``. Methods that produce class scores take
``num_classes``. Every module exposes ``out_dim`` (the width of ``embedding``),
``modalities`` (the names in order) and ``produces_logits``.

*Forward*: ``forward(outputs, present=None) -> FusionOutput``.

* ``outputs``: ``{name: EncoderOutput | None}``; a modality absent from the dict or ``None``
  is missing for the whole batch. Each :class:`~multimodal_har.encoders.EncoderOutput` has
  ``pooled (B, D)``, ``tokens (B, T', D)`` and ``mask (B, T')`` (``T'`` may differ between
  modalities); a name the module was not built for is an error.
* ``present``: ``(B, num_modalities)`` bool, columns in the order of ``dims``; False where a
  modality is missing for one sample (default: all present). It is combined with what is
  given: a modality that is ``None``, or whose token mask has no valid token in a sample,
  is missing there too. Missing inputs are never read: their values may be anything.
* Every method handles any non-empty subset of modalities per sample, and the output for a
  sample equals the output for that sample alone with its missing modalities left out (the
  parity the tests check). A sample with no modality at all gets zeros (uniform
  probabilities for ``late``), never NaN.

Embedding or scores: the split
------------------------------
Fusion methods that combine *features* (``concat``, ``early``, ``slow``,
``cross_attention``) return an ``embedding (B, out_dim)`` and ``logits=None``; a separate
head (``nn.Linear(fusion.out_dim, num_classes)``) classifies it. ``late`` fuses per-modality
*predictions*, so it holds one linear head per modality and returns ``logits (B, num_classes)``
(the log of the fused class probabilities, ready for cross-entropy) with
``produces_logits = True``; its ``embedding`` is the fused probabilities themselves
(``out_dim == num_classes``), so a stacked classifier can still be put on top. A model uses
``out.logits`` when it is not None, else ``head(out.embedding)``.

>>> from multimodal_har.fusion import build_fusion
>>> fuse = build_fusion("late", dims={"rgb": 512, "flow": 512}, num_classes=101,
...                     mode="fixed", weights={"rgb": 1.0, "flow": 1.5})  # TSN's 1:1.5
"""

from __future__ import annotations

from typing import Any, NamedTuple

from multimodal_har.registry import Registry

FUSION = Registry("fusion method")
FUSION.register("concat", "multimodal_har.fusion.concat:ConcatFusion")
FUSION.register("late", "multimodal_har.fusion.late:LateFusion")
FUSION.register("early", "multimodal_har.fusion.early:EarlyFusion")
FUSION.register("slow", "multimodal_har.fusion.slow:SlowFusion")
FUSION.register("cross_attention", "multimodal_har.fusion.cross_attention:CrossAttentionFusion")


class FusionOutput(NamedTuple):
    """Attributes:
        embedding: ``(B, out_dim)`` the fused representation (``late``: fused probabilities).
        logits: ``(B, num_classes)`` class scores for methods that produce them, else None.
        extras: a dict; always ``"present"``: the ``(B, num_modalities)`` bool presence the
            method used; the rest is documented by each method (fusion weights, attention...).
    """

    embedding: Any
    logits: Any = None
    extras: Any = None


def build_fusion(name: str, /, **kwargs: Any):
    return FUSION.build(name, **kwargs)


__all__ = ["FUSION", "FusionOutput", "build_fusion"]
