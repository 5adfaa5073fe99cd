"""Where torch-geometric writes the code it generates for our ``MessagePassing`` layers.

PyG (2.6 to 2.8 at least) renders a ``propagate`` method from a jinja template for each
``MessagePassing`` subclass, once per process, and imports it from a file it writes with
``tempfile.NamedTemporaryFile(delete=False)`` (``torch_geometric/template.py``): every process
that built an ST-GCN or CTR-GCN left a ``<module>_<Class>_propagate_<random>.py`` in ``/tmp``
for ever. PyG has no setting for that folder (versions before 2.6 wrote to ``PYG_HOME``), so
:func:`generated_code_dir` sets the standard library's own, documented one,
``tempfile.tempdir``, while a layer is constructed (the only moment PyG writes), to a folder
of this process under the user cache: ``$XDG_CACHE_HOME/multimodal_har/pyg/<host>-<pid>``
(``~/.cache`` by default). The file must exist while the process runs (tracebacks,
``inspect.getsource``, TorchScript read it); the folder is removed when the process exits,
and folders of killed processes on this host by the next process that builds a layer.
Should the cache not be writable, PyG writes where it always did.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from multimodal_har.atomic import pid_running

_lock = threading.RLock()
_folder: Optional[Path] = None


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/multimodal_har/pyg`` (default ``~/.cache/multimodal_har/pyg``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "multimodal_har" / "pyg"


def _process_folder() -> Optional[Path]:
    """This process's folder (created, and the stale ones swept, on the first call)."""
    global _folder
    if _folder is not None and _folder.name.endswith(f"-{os.getpid()}"):
        return _folder
    root, host = cache_root(), socket.gethostname()
    try:
        root.mkdir(parents=True, exist_ok=True)
        for old in root.glob(f"{host}-*"):  # killed processes of this host leave theirs
            pid = old.name.rpartition("-")[2]
            if pid.isdigit() and int(pid) != os.getpid() and not pid_running(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
        folder = root / f"{host}-{os.getpid()}"
        folder.mkdir(exist_ok=True)
    except OSError:
        return None
    _folder = folder
    atexit.register(_remove, folder, os.getpid())
    return folder


def _remove(folder: Path, owner: int) -> None:
    if os.getpid() == owner:  # a forked child inherits the handler, not the folder
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def generated_code_dir() -> Iterator[None]:
    """Construct ``MessagePassing`` layers inside this: PyG's generated modules go to this
    process's cache folder (see the module docstring) instead of the temp folder."""
    with _lock:
        folder = _process_folder()
        if folder is None:
            yield
            return
        saved, tempfile.tempdir = tempfile.tempdir, str(folder)
        try:
            yield
        finally:
            tempfile.tempdir = saved
