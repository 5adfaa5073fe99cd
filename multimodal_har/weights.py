"""Pretrained weights for torchvision models: by enum name, from a local file, or none.

Shared by :func:`multimodal_har.flow.raft.load_raft` and the video encoders
(:mod:`multimodal_har.encoders.two_stream`). A weights *spec* is one of:

* ``None`` or ``"none"``: random weights;
* a torchvision weights name (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ``"ResNet18_Weights.DEFAULT"``)
  or enum member, downloaded into torch's hub cache on first use;
* a path to a checkpoint file: a state dict, or a dict holding one under ``"state_dict"`` or
  ``"model"``; a ``module.`` prefix (``DataParallel``) is stripped.

Every file is read with ``torch.load(..., weights_only=True)`` (tensors and plain containers
only), the cached downloads included, which torchvision itself would unpickle without that
restriction. Offline, a download fails with :class:`WeightsUnavailable`, whose message names the URL, the
cache path where torch looks for the file, and how to pass the file instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional

import torch

FILE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


class WeightsUnavailable(RuntimeError):
    """Pretrained weights could not be loaded (typically: offline, not in the cache)."""


def is_random(spec: Any) -> bool:
    """``True`` for the specs meaning random weights: ``None`` and ``"none"``."""
    return spec is None or (isinstance(spec, str) and spec.lower() == "none")


def local_file(spec: Any) -> Optional[Path]:
    """The path ``spec`` names when it names a checkpoint file (an existing path, or a name
    ending in a checkpoint suffix, existing or not), else ``None`` (a weights name)."""
    if not isinstance(spec, (str, os.PathLike)):
        return None
    path = Path(os.path.expanduser(str(spec)))
    return path if path.suffix in FILE_SUFFIXES or path.exists() else None


def load_state_file(path: str | os.PathLike, *, what: str = "model") -> dict[str, torch.Tensor]:
    """A checkpoint file's state dict (unwrapped from ``state_dict`` / ``model``, ``module.``
    stripped), on the CPU.

    Raises:
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} checkpoint {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict):
        state = state.get("state_dict", state.get("model", state))
    return {k.removeprefix("module."): v for k, v in state.items()}


def weight_names(enum: Any) -> list[str]:
    """``"DEFAULT"`` then the enum's other members, for error messages."""
    return ["DEFAULT"] + [m for m in enum.__members__ if m != "DEFAULT"]


def resolve_weights(enum: Any, spec: Any, *, what: str) -> Any:
    """The member of the torchvision weights ``enum`` that ``spec`` names: a member, its name,
    or ``"<EnumName>.<name>"``.

    Raises:
        ValueError: an unknown name, or weights of another model; the message lists the choices.
    """
    from torchvision.models import WeightsEnum

    choices = f"choices: {', '.join(weight_names(enum))}, a file path, or none"
    if isinstance(spec, enum):
        return spec
    if isinstance(spec, WeightsEnum):
        raise ValueError(f"{what} takes {enum.__name__}, got {type(spec).__name__}.{spec.name}; {choices}")
    name = str(spec)
    if "." in name:
        prefix, name = name.rsplit(".", 1)
        if prefix != enum.__name__:
            raise ValueError(f"{what} takes {enum.__name__}, got {spec!r}; {choices}")
    try:
        return enum[name]
    except KeyError:
        raise ValueError(f"unknown {what} weights {spec!r}; {choices}") from None


def cache_path(weights: Any) -> Path:
    """Where ``torch.hub`` keeps (and first looks for) the file of a weights enum member."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def cached_weights(weights: Any) -> Optional[Path]:
    """The file of a torchvision weights enum member if torch's cache holds it, else None
    (nothing is downloaded)."""
    path = cache_path(weights)
    return path if path.is_file() else None


def cached_raft() -> Optional[tuple[str, Path]]:
    """``(model, file)`` of a torchvision RAFT whose default weights are in torch's cache (the
    small one first: the one a CPU can afford), else None (nothing is downloaded)."""
    import torchvision.models.optical_flow as of

    for model, enum in (("raft_small", of.Raft_Small_Weights), ("raft_large", of.Raft_Large_Weights)):
        path = cached_weights(enum.DEFAULT)
        if path is not None:
            return model, path
    return None


def build_pretrained(builder: Callable[..., torch.nn.Module], weights: Any, *, what: str,
                     progress: bool = False, flag: str = "--weights ") -> torch.nn.Module:
    """What ``builder(weights=weights)`` builds, downloading the file into torch's cache if needed,
    but with the file read by ``torch.load(..., weights_only=True)``: torchvision's builders read it
    through ``torch.hub.load_state_dict_from_url``, whose default is ``weights_only=False``, so a
    file planted in the (user-writable) cache under the expected name would run code when unpickled.

    Args:
        builder: a torchvision model builder (``resnet18``, ``raft_small``...).
        weights: a member of its weights enum (see :func:`resolve_weights`).
        what: the model's name in messages.
        flag: how the caller passes weights, for the message (``"--weights "`` on the command
            line, ``"weights="`` in Python).

    Raises:
        WeightsUnavailable: the file is not cached and could not be downloaded; the message
            says where to put it or how to pass it.
        pickle.UnpicklingError: the cached file holds more than tensors (PyTorch's message
            names what it refused).
    """
    try:
        state = weights.get_state_dict(progress=progress, check_hash=True, weights_only=True)
    except Exception as e:  # URLError, HTTPError, socket errors: offline
        cache = cache_path(weights)
        if cache.is_file():  # the file is there: whatever failed, it was not the download
            raise
        name = Path(weights.url).name
        raise WeightsUnavailable(
            f"could not download {what} weights {weights.name} ({type(e).__name__}: {e}).\n"
            f"On a machine with internet, download {weights.url}\n"
            f"then either copy it to {cache} (torch's cache, used automatically),\n"
            f"or pass the file: {flag}/path/to/{name}\n"
            f"({flag}none runs random weights: only for testing the pipeline)."
        ) from None
    # what the builder sets from the weights' metadata when it loads them itself (torchvision's
    # classification and video builders: the number of classes; RAFT: nothing)
    meta = {"num_classes": len(weights.meta["categories"])} if "categories" in weights.meta else {}
    model = builder(weights=None, progress=progress, **meta)
    model.load_state_dict(state)
    return model


__all__ = ["WeightsUnavailable", "build_pretrained", "cache_path", "cached_raft", "cached_weights", "is_random", "load_state_file",
           "local_file", "resolve_weights", "weight_names"]
