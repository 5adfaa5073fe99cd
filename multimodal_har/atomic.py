"""Files that appear complete or not at all: write to a temporary name beside the target,
then ``os.replace`` it (atomic on POSIX within one filesystem). A failure removes the
temporary file, so an interrupted run never leaves half-written or stray files.

The feature store's HDF5 entries have their own variant (``FeatureStore.writer``: temporary
files in ``STORE/.tmp`` that ``sweep_tmp`` can recover); everything else uses this module.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _fsync_dir(folder: Path) -> None:
    try:  # make the rename itself durable; not every filesystem allows opening a directory
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


@contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    Args:
        path: the target file (its folder is created if needed).
        durable: fsync the file and its folder, so the new content survives a power loss
            (checkpoints); a plain rename is enough against a killed process.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if durable:
        _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def sweep_stale(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of :func:`atomic_path` in ``folder`` that a killed process
    left (``.NAME.PID.tmp`` whose process is gone; a kill skips the ``finally`` that removes
    them); returns what was removed. Files of running processes are left alone."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        pid = tmp.name[:-len(".tmp")].rpartition(".")[2]
        if not pid.isdigit() or (int(pid) != os.getpid() and pid_running(int(pid))):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def pid_running(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a process of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
