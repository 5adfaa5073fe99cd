"""Batches of :class:`~multimodal_har.data.dataset.StoreDataset` samples, and their last step on
the training device.

:func:`collate` pads every input along its first (segment / time) axis and adds masks.
Frames (rgb, flow) can travel as **uint8 crops** with a per-sample, per-channel scale and
offset instead of normalised float32: a quarter of the bytes through the workers' shared
memory, the pinned buffer and the host-to-device copy, and no per-pixel float work on the
loader's CPUs. :func:`finish_batch` then computes ``x * scale + offset`` where the batch is
(``multimodal_har.train.to_device`` calls it after the copy), so a finished batch holds the
same normalised values as one the workers normalised themselves.

Sample and batch formats::

    sample = {"id", "label", "inputs": {input: {kwarg: array}}, "start", "stop",
              ["affine": {input: {kwarg: (scale (C,), offset (C,))}}]}   # for uint8 arrays
    batch  = {"ids", "label" (B,), "inputs": {input: {kwarg: (B, T, ...), "mask": (B, T)}},
              "present": (B, len(modalities)), "start" (B,), "stop" (B,),
              ["affine": {input: {kwarg: (scale (B, C), offset (B, C))}}]}  # until finish_batch

``C`` is axis 1 of a sample's array (axis 2 of the batch's): the 3 colour channels of rgb, the
``2L`` interleaved components of a 2D flow stack, the 2 components of a 3D one.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
import torch


def mask_name(kwarg: str) -> str:
    """The batch key of ``kwarg``'s ``(B, T)`` mask: ``mask`` for ``x``, else ``{kwarg}_mask``."""
    return "mask" if kwarg == "x" else f"{kwarg}_mask"


def times_name(kwarg: str) -> str:
    """The batch key of the ``(B, T)`` step times of ``kwarg``: ``times`` for ``x``, else ``{kwarg}_times``
    (collate pads them like any kwarg and adds their mask, ``times_mask``)."""
    return "times" if kwarg == "x" else f"{kwarg}_times"


def is_times_key(key: str) -> bool:
    """Whether a batch key holds step times or their mask (not an encoder argument)."""
    return key in ("times", "times_mask") or key.endswith("_times") or key.endswith("_times_mask")


def apply_affine(x: Any, scale: Any, offset: Any) -> np.ndarray:
    """A sample's uint8 ``(T, C, ...)`` array -> float32 ``x * scale + offset`` per channel."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x.astype(np.float32) * np.reshape(scale, shape) + np.reshape(offset, shape)).astype(np.float32)


def collate(samples: list[dict[str, Any]], modalities: list[str],
            shapes: Optional[Mapping[tuple[str, str], tuple[int, ...]]] = None) -> dict[str, Any]:
    """Stack samples into a batch, padding every kwarg along its first (time / segment) axis.

    Returns the batch of the module docstring; a missing stream is zeros with an all-False
    mask. A kwarg absent from every sample appears only if ``shapes`` gives its per-frame
    shape (as ``(1, ...)`` zeros). A kwarg whose samples all came as uint8 with an affine stays
    uint8 (zeros where padded) and its ``(B, C)`` scales and offsets go to ``batch["affine"]``
    (zero for a sample without it); mixed with float samples, the uint8 ones are finished here.
    """
    B = len(samples)
    batch_inputs: dict[str, dict[str, torch.Tensor]] = {}
    affine: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
    present = torch.zeros(B, len(modalities), dtype=torch.bool)
    for j, name in enumerate(modalities):
        kwargs = list(dict.fromkeys([k for (n, k) in (shapes or {}) if n == name]
                                    + [k for smp in samples for k in smp["inputs"].get(name, {})]))
        out: dict[str, torch.Tensor] = {}
        for kw in kwargs:
            arrays = [smp["inputs"].get(name, {}).get(kw) for smp in samples]
            affs = [smp.get("affine", {}).get(name, {}).get(kw) for smp in samples]
            given = [a for a in arrays if a is not None]
            trailing = tuple(given[0].shape[1:]) if given else tuple((shapes or {}).get((name, kw), ()))
            if not given and (name, kw) not in (shapes or {}):
                continue
            bad = sorted({tuple(a.shape[1:]) for a in given} - {trailing})
            if bad:
                raise ValueError(f"input {name!r} kwarg {kw!r}: samples of per-step shapes {trailing} and {bad} "
                                 f"in one batch (set crop / max_people so that they agree)")
            deferred = bool(given) and all(f is not None for a, f in zip(arrays, affs) if a is not None)
            if not deferred:  # float samples; any uint8 one is finished now
                arrays = [a if f is None or a is None else apply_affine(a, *f) for a, f in zip(arrays, affs)]
            t_max = max([len(a) for a in given], default=1)
            x = torch.zeros(B, t_max, *trailing, dtype=torch.uint8 if deferred else torch.float32)
            mask = torch.zeros(B, t_max, dtype=torch.bool)
            if deferred:
                C = trailing[0]
                scale, offset = torch.zeros(B, C), torch.zeros(B, C)
                affine.setdefault(name, {})[kw] = (scale, offset)
            for i, a in enumerate(arrays):
                if a is not None:
                    x[i, :len(a)] = torch.as_tensor(a)
                    mask[i, :len(a)] = True
                    present[i, j] = True
                    if deferred:
                        scale[i], offset[i] = (torch.as_tensor(np.asarray(v, np.float32)) for v in affs[i])
            out[kw], out[mask_name(kw)] = x, mask
        batch_inputs[name] = out
    batch = {"ids": [s["id"] for s in samples],
             "label": torch.tensor([s["label"] for s in samples], dtype=torch.long),
             "inputs": batch_inputs, "present": present,
             "start": torch.tensor([s["start"] for s in samples], dtype=torch.float64),
             "stop": torch.tensor([s["stop"] for s in samples], dtype=torch.float64)}
    if affine:
        batch["affine"] = affine
    return batch


def finish_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """Turn a batch's uint8 inputs into normalised float32 where they are (call it after moving
    the batch to the device); padded steps stay zero. Removes ``batch["affine"]``; the inputs'
    dicts are updated in place. A batch without uint8 inputs is returned as it is."""
    for name, kws in batch.pop("affine", {}).items():
        inputs = batch["inputs"][name]
        for kw, (scale, offset) in kws.items():
            x, mask = inputs[kw], inputs[mask_name(kw)]  # (B, T, C, ...), (B, T)
            shape = (x.shape[0], 1, x.shape[2]) + (1,) * (x.dim() - 3)
            y = torch.addcmul(offset.to(x.device).view(shape), x.float(), scale.to(x.device).view(shape))
            inputs[kw] = y * mask.view(*mask.shape, *(1,) * (x.dim() - 2))
    return batch


__all__ = ["collate", "finish_batch", "apply_affine", "mask_name", "times_name", "is_times_key"]
