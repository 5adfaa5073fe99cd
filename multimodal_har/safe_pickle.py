"""Unpickling files made elsewhere without running their code.

A pickle names the functions that rebuild its objects, and ``pickle.load`` calls whatever it
names: ``os.system`` with a command as argument is a valid pickle. PYSKL / MMAction2 skeleton
datasets (:mod:`multimodal_har.skeleton.pyskl`) come as pickles downloaded from the web, so
they are read through :class:`SafeUnpickler`, which resolves only what such data needs:

* numpy arrays, dtypes and scalars (the reconstruction functions numpy 1 and 2 pickle, under
  either module name, resolved to this numpy's own functions);
* builtin values and containers (``set``, ``frozenset``, ``bytes``, ``bytearray``, ``complex``,
  ``slice``, ``range``, ``collections.OrderedDict``); lists, dicts, tuples, strings, numbers
  and booleans need no global at all;
* ``_codecs.encode(text, "latin1")``, how protocol 2 (mmcv's default) stores ``bytes``;
* classes the caller names in ``allow`` (e.g. a dataclass of this package whose fields are the
  above), rebuilt the way pickle rebuilds plain instances.

Anything else raises :class:`UnsafePickleError` naming the refused global and the file, before
it is called. Checkpoints are not pickles of this kind: they are read with ``torch.load(...,
weights_only=True)``, PyTorch's own restricted unpickler.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import io
import os
import pickle
from typing import IO, Any, Iterable

import numpy as np

__all__ = ["SafeUnpickler", "UnsafePickleError", "load", "load_file", "loads"]


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global that :class:`SafeUnpickler` does not allow."""


def _latin1_encode(text: Any, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol 2 uses it for ``bytes`` (text, "latin1"), and nothing else."""
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(f"_codecs.encode is allowed only as (str, 'latin1'), got ({type(text).__name__}, "
                                f"{encoding!r})")
    return text.encode("latin1")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The functions numpy's pickles call, under the module names numpy 1 and numpy 2 write."""
    reconstruct = np.zeros(1).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    scalar = np.float32(0).__reduce__()[0]
    out: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        out[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        out[(f"{core}.multiarray", "scalar")] = scalar
        out[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return out


_ALLOWED: dict[tuple[str, str], Any] = {
    **_numpy_globals(),
    **{("builtins", t.__name__): t for t in (set, frozenset, bytes, bytearray, complex, slice, range)},
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
}


class SafeUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that resolves only numpy and builtin data (module docstring).

    Args:
        file: a binary file object.
        allow: extra classes to rebuild (class objects), e.g. ``(SkeletonSequence,)``.
        source: the file's name for error messages (default: ``file.name`` when it has one).
    """

    def __init__(self, file: IO[bytes], *, allow: Iterable[type] = (), source: str | os.PathLike | None = None) -> None:
        super().__init__(file)
        extra = {}
        for cls in allow:
            if not isinstance(cls, type):
                raise TypeError(f"allow takes classes, got {cls!r}")
            extra[(cls.__module__, cls.__qualname__)] = cls
        self._allowed = {**_ALLOWED, **extra}
        self._source = str(source if source is not None else getattr(file, "name", "<bytes>"))

    def find_class(self, module: str, name: str) -> Any:
        # protocols 0-2 write Python 2 names (``__builtin__.set``); map them as pickle.Unpickler does
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = self._allowed.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f"{self._source}: refused to unpickle {module}.{name}: only numpy arrays, dtypes and scalars and "
                f"builtin containers are read from pickles (a pickle calls the functions it names, so a crafted "
                f"file runs code). If you made this file and trust it, read it with pickle.load yourself")
        return found


def load(file: IO[bytes], *, allow: Iterable[type] = (), source: str | os.PathLike | None = None) -> Any:
    """Unpickle one object from an open binary file through :class:`SafeUnpickler`."""
    return SafeUnpickler(file, allow=allow, source=source).load()


def loads(data: bytes, *, allow: Iterable[type] = (), source: str | os.PathLike | None = None) -> Any:
    """Unpickle one object from bytes through :class:`SafeUnpickler`."""
    return SafeUnpickler(io.BytesIO(data), allow=allow, source=source or "<bytes>").load()


def load_file(path: str | os.PathLike, *, allow: Iterable[type] = ()) -> Any:
    """Unpickle the object in the file at ``path`` through :class:`SafeUnpickler`."""
    with open(path, "rb") as f:
        return load(f, allow=allow, source=path)
