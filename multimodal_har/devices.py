"""Which torch device a ``device`` setting names (the training engine and the GPU extractors)."""

from __future__ import annotations

import os
from typing import Union


def resolve_device(device: Union[str, "torch.device"] = "auto") -> "torch.device":  # noqa: F821
    """``"auto"``: ``cuda:$LOCAL_RANK`` (one process per GPU under ``torchrun``; ``cuda:0`` alone)
    when CUDA is available, else the CPU; anything else as ``torch.device`` reads it."""
    import torch

    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        return torch.device("cpu")
    return torch.device(device)
