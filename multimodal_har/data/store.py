"""The feature store: one HDF5 file per (video, modality), written atomically.

Layout (documented in ``docs/store.md``)::

    STORE/
      manifest.sqlite          # source of truth for what is done (see manifest.py)
      manifest.csv             # one row per video, rewritten at the end of each run
      <modality>/<video_id>.h5 # the arrays; video ids may contain '/', mirroring the video tree
      .tmp/                    # files being written; renamed into place when complete

Every file carries its provenance as HDF5 attributes (``modality``, ``video_id``,
``extractor``, ``config_json``, ``config_hash``, ``format_version``), so a store can be read,
checked and resumed from the files alone. The manifest records each committed file's size and
SHA-256 (:func:`file_checksum`): :meth:`FeatureStore.verify` finds files damaged since, and
readers (:meth:`FeatureStore.read`, :func:`open_entry`) turn a read error of a damaged file into
:class:`DamagedEntryError`, which names the entry and its file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

FORMAT_VERSION = 1
TMP_DIR = ".tmp"
MANIFEST_DB = "manifest.sqlite"
_HOST = socket.gethostname()


def name_problem(kind: str, name: str) -> str | None:
    """Why a modality name or video id cannot be a path inside the store, or None if it can."""
    if not isinstance(name, str) or not name:
        return f"{kind} must be a non-empty string, got {name!r}"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return (f"{kind} {name!r} is not valid UTF-8 (the file name's bytes are in another encoding), "
                f"which the store and its manifest cannot hold; rename the file")
    if "\\" in name:
        return (f"{kind} {name!r} contains a backslash, which the store cannot hold (on Windows it "
                f"separates folders); rename the file")
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return f"{kind} {name!r} is not a clean relative name (no leading '/', '.', '..' or empty parts)"
    if kind == "modality" and ("/" in name or name.startswith(".")):
        return f"modality {name!r} must be a single name without '/' and not start with '.'"
    return None


def validate_name(kind: str, name: str) -> str:
    """Check a modality name or video id can be used as a path inside the store."""
    problem = name_problem(kind, name)
    if problem is not None:
        raise ValueError(problem)
    return name


def source_stat(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(size, mtime_ns)`` of a source file (through symbolic links), or None if unreadable."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def entry_relpath(video_id: str, modality: str) -> str:
    """Path of an entry relative to its store's root: ``<modality>/<video id>.h5``."""
    validate_name("video id", video_id)
    validate_name("modality", modality)
    return f"{modality}/{video_id}.h5"


class DamagedEntryError(OSError):
    """A store entry's file is not the one that was committed: truncated, overwritten, or its bytes
    changed on disk. The message names the entry, its file and what differs; ``video_id``,
    ``modality`` and ``path`` say the same to code. An ``OSError``, like h5py's read errors it
    replaces (and ``gzip.BadGzipFile``). One message argument, so that a copy rebuilt from its
    text, as PyTorch's DataLoader does for a worker's error, keeps its type."""

    def __init__(self, message: str, *, video_id: str | None = None, modality: str | None = None,
                 path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.video_id, self.modality, self.path = video_id, modality, path


CHECKSUM_ALGORITHM = "sha256"


def file_checksum(path: str | os.PathLike) -> tuple[str, int]:
    """``("sha256:<hex digest>", size in bytes)`` of a file's bytes, as the manifest records them
    (about 1.3 GB/s with SHA-NI on this project's machine; benchmarks/store_integrity.py)."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, CHECKSUM_ALGORITHM)
        size = f.tell()
    return f"{CHECKSUM_ALGORITHM}:{digest.hexdigest()}", size


def _unreadable(f: Any) -> str | None:
    """Why an open entry's datasets do not read (each one's first and last rows, so a damaged
    compressed chunk or index there fails), or None. Cheap: a few chunks per dataset."""
    import h5py

    found: list = []
    try:
        f.visititems(lambda name, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
        for ds in found:
            if not ds.shape:
                ds[()]
            elif ds.shape[0]:
                ds[0], ds[-1]
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        return f"cannot be read ({type(e).__name__}: {e})"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process nobody has reaped yet (a zombie) is not writing any more
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class FeatureStore:
    """A directory of per-video, per-modality HDF5 files plus a manifest.

    Args:
        root: the store directory (created if ``create`` is true).
        create: create the directory if it does not exist; otherwise a missing store raises.
    """

    def __init__(self, root: str | os.PathLike, *, create: bool = False) -> None:
        self.root = Path(root)
        if not self.root.exists():
            if not create:
                raise FileNotFoundError(f"feature store {self.root} does not exist (run `mhar extract ...` first)")
            self.root.mkdir(parents=True, exist_ok=True)  # another rank may create it first
        elif not self.root.is_dir():
            raise NotADirectoryError(f"feature store path {self.root} is not a directory")
        self.tmp_dir = self.root / TMP_DIR
        self._manifest = None

    # ------------------------------------------------------------------ paths
    def relpath(self, video_id: str, modality: str) -> str:
        """Path of an entry relative to the store root (as recorded in the manifest)."""
        return entry_relpath(video_id, modality)

    def path(self, video_id: str, modality: str) -> Path:
        return self.root / entry_relpath(video_id, modality)

    def has(self, video_id: str, modality: str) -> bool:
        return self.path(video_id, modality).is_file()

    @property
    def manifest(self):
        """The store's :class:`~multimodal_har.data.manifest.Manifest` (opened on first use)."""
        if self._manifest is None:
            from .manifest import Manifest

            self._manifest = Manifest(self.root / MANIFEST_DB)
        return self._manifest

    def modalities(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def writer(self, video_id: str, modality: str, *, attrs: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Open a new HDF5 file for an entry; it appears under its final name only on success.

        The file is written under ``.tmp/``, flushed to disk and renamed over the final path
        when the ``with`` block exits normally. On an exception (or a kill) the final path is
        untouched; the temporary file is deleted (or swept by :meth:`sweep_tmp` later).

        Yields:
            an open, writable ``h5py.File`` with the provenance attributes already set.
        """
        import h5py

        final = self.path(video_id, modality)
        self.tmp_dir.mkdir(exist_ok=True)
        tmp = self.tmp_dir / f"{modality}.{uuid.uuid4().hex}.{_HOST}.{os.getpid()}.h5"
        try:
            with h5py.File(tmp, "w", libver="latest") as f:
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["video_id"] = video_id
                f.attrs["modality"] = modality
                for k, v in (attrs or {}).items():
                    f.attrs[k] = v
                yield f
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()

    def write_arrays(
        self,
        video_id: str,
        modality: str,
        arrays: Mapping[str, Any],
        *,
        attrs: Mapping[str, Any] | None = None,
        compression: str | None = "gzip",
    ) -> Path:
        """Bring your own modality: store precomputed arrays for one video, atomically.

        Args:
            arrays: dataset name -> array-like. Time-major arrays (``(T, ...)``) are chunked
                along time so that training can read a window without the whole array.
                Conventionally a ``timestamps`` array (seconds, ``(T,)``) aligns them with video.
            attrs: scalar/string metadata (e.g. ``{"layout": "kinect_v1_20", "fps": 30}``).
        """
        if not arrays:
            raise ValueError("write_arrays needs at least one array")
        with self.writer(video_id, modality, attrs={"extractor": "user", **(attrs or {})}) as f:
            for name, value in arrays.items():
                a = np.asarray(value)
                if a.dtype == object:
                    raise ValueError(f"array {name!r} has dtype object; give a numeric array")
                kw = {}
                if a.ndim >= 1 and a.size > 1024:
                    kw = {"chunks": time_chunks(a), "compression": compression}
                f.create_dataset(name, data=a, **kw)
        return self.path(video_id, modality)

    def add(
        self,
        video_id: str,
        modality: str,
        arrays: Mapping[str, Any],
        *,
        attrs: Mapping[str, Any] | None = None,
        label: str | None = None,
        split: str | None = None,
    ) -> Path:
        """Bring your own modality: write arrays for a video and record them in the manifest.

        The video need not come from a video folder (e.g. a Kinect skeleton sequence): an
        unknown id is added to the manifest with the given ``label``/``split`` and no path.
        The entry's ``config_hash`` is a hash of the array contents.
        """
        import hashlib

        from .ingest import VideoRecord

        path = self.write_arrays(video_id, modality, arrays, attrs=attrs)
        digest = hashlib.sha256()
        for name in sorted(arrays):
            a = np.ascontiguousarray(arrays[name])
            digest.update(f"{name}:{a.dtype}:{a.shape}".encode())
            digest.update(a.tobytes())
        m = self.manifest
        if m.video(video_id) is None:
            m.upsert_videos([VideoRecord(id=video_id, path="", label=label, split=split)])
        m.record(video_id, modality, status="ok", extractor="user",
                 config_json=json.dumps(dict(attrs or {}), sort_keys=True, default=str),
                 config_hash=digest.hexdigest()[:16], path=self.relpath(video_id, modality),
                 fingerprint=file_checksum(path))
        m.commit()
        return path

    def sweep_tmp(self) -> int:
        """Delete temporary files left by killed runs (on this host, whose process is gone)."""
        if not self.tmp_dir.is_dir():
            return 0
        removed = 0
        for p in self.tmp_dir.iterdir():
            parts = p.name.split(".")
            # <modality>.<uuid>.<host...>.<pid>.h5: the host may contain dots
            if len(parts) < 5 or not parts[-2].isdigit():
                continue
            host, pid = ".".join(parts[2:-2]), int(parts[-2])
            # a live writer here, or another machine's on a shared filesystem: not ours to judge
            if host != _HOST or _pid_alive(pid):
                continue
            p.unlink(missing_ok=True)
            removed += 1
        return removed

    # ------------------------------------------------------------------ reading
    def open(self, video_id: str, modality: str):
        """Open an entry read-only as an ``h5py.File`` (use as a context manager).

        Raises:
            FileNotFoundError: no such entry.
            DamagedEntryError: the file does not open and is not the one committed.
        """
        import h5py

        p = self.path(video_id, modality)
        if not p.is_file():
            raise FileNotFoundError(f"store {self.root} has no {modality!r} for video {video_id!r} ({p})")
        try:
            return h5py.File(p, "r")
        except OSError as e:
            self.raise_if_damaged(video_id, modality, e)
            raise

    def read(self, video_id: str, modality: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Read every dataset and attribute of an entry into memory: ``(arrays, attrs)``.

        Raises:
            DamagedEntryError: it fails to read and its file is not the one committed.
        """
        with self.open(video_id, modality) as f:
            try:
                arrays = {k: f[k][()] for k in f.keys()}
                attrs = {k: attr_value(v) for k, v in f.attrs.items()}
            except (OSError, KeyError) as e:
                self.raise_if_damaged(video_id, modality, e)
                raise
        return arrays, attrs

    # ------------------------------------------------------------------ integrity
    def fingerprint(self, video_id: str, modality: str) -> tuple[str, int]:
        """``(checksum, size)`` of an entry's file (:func:`file_checksum`), recorded when it is committed."""
        return file_checksum(self.path(video_id, modality))

    def size_changed(self, video_id: str, modality: str, entry: Mapping[str, Any]) -> bool:
        """Whether an entry's file (present) no longer has the size its manifest row ``entry``
        recorded at commit: truncated or overwritten. One ``stat``, cheap enough for every
        resumed entry; rows without a recorded size never count as changed."""
        return entry.get("file_size") is not None and self.path(video_id, modality).stat().st_size != entry["file_size"]

    def verify_entry(self, video_id: str, modality: str, *, entry: Mapping[str, Any] | None = None) -> str | None:
        """Why an entry's file is not the one that was committed, or None if it is.

        With a recorded checksum (manifest row ``entry``, looked up if not given): the file must
        have the recorded size and SHA-256. Without one (rows written before checksums, or by
        other tools): it must open and its datasets' first and last rows must read.
        """
        import h5py

        if entry is None:
            entry = self.manifest.entry(video_id, modality) or {}
        p = self.path(video_id, modality)
        try:
            size = p.stat().st_size
        except OSError:
            return "the file is missing"
        if entry.get("file_size") is not None and size != entry["file_size"]:
            return f"the file is {size} bytes, {entry['file_size']} when it was committed (truncated or overwritten)"
        if entry.get("checksum"):
            try:
                checksum, _ = file_checksum(p)
            except OSError as e:
                return f"cannot be read ({e})"
            if checksum != entry["checksum"]:
                return "its SHA-256 differs from the one recorded when it was committed (bytes changed on disk)"
            return None
        try:
            with h5py.File(p, "r") as f:
                return _unreadable(f)
        except OSError as e:
            return f"cannot be opened ({e}; no checksum recorded)"

    def verify(self, *, modalities: Sequence[str] | None = None, mark: bool = True,
               workers: int | None = None) -> list[dict[str, Any]]:
        """Check every ``ok`` entry's file (:meth:`verify_entry`); with ``mark``, record the damaged
        ones as ``failed`` (error ``damaged: ...``), so training skips them and a resumed
        extraction redoes them.

        Args:
            modalities: only these (default: all).
            workers: hashing threads (default: up to 4; hashlib releases the GIL).

        Returns:
            one dict per damaged entry: ``video_id``, ``modality``, ``path``, ``problem``.
        """
        import concurrent.futures as cf

        m = self.manifest
        rows = [e for e in m.entries(status="ok") if modalities is None or e["modality"] in modalities]
        workers = workers or min(4, os.cpu_count() or 1)
        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            problems = list(pool.map(lambda e: self.verify_entry(e["video_id"], e["modality"], entry=e), rows))
        damaged = [{"video_id": e["video_id"], "modality": e["modality"],
                    "path": str(self.path(e["video_id"], e["modality"])), "problem": problem}
                   for e, problem in zip(rows, problems) if problem is not None]
        if mark and damaged:
            for d in damaged:
                m.mark_failed(d["video_id"], d["modality"], f"damaged: {d['problem']}")
            m.commit()
        return damaged

    def damaged_error(self, video_id: str, modality: str, problem: str) -> DamagedEntryError:
        """The error a reader raises for a damaged entry: what, where, why and what to do."""
        path = self.path(video_id, modality)
        return DamagedEntryError(
            f"damaged store entry {modality!r} of video {video_id!r} (file {path}): {problem}. Run `mhar manifest "
            f"{self.root} --verify` to find every damaged entry and mark it failed, then run the extraction (or "
            f"import) that wrote it again to redo it", video_id=video_id, modality=modality, path=path)

    def raise_if_damaged(self, video_id: str, modality: str, error: BaseException) -> None:
        """Called with the error a read of an entry raised: raises :class:`DamagedEntryError` (from
        ``error``) if the file is not the one committed, returns otherwise. A file is hashed at
        most once per process while its size and modification time stay the same."""
        if isinstance(error, DamagedEntryError):
            raise error
        p = self.path(video_id, modality)
        try:
            st = p.stat()
        except OSError:
            return  # gone: not damage, the caller's error says it
        key = (str(p), st.st_size, st.st_mtime_ns)
        if key not in _VERIFIED:
            _VERIFIED[key] = self.verify_entry(video_id, modality)
            while len(_VERIFIED) > 4096:
                _VERIFIED.pop(next(iter(_VERIFIED)))
        problem = _VERIFIED[key]
        if problem is not None:
            raise self.damaged_error(video_id, modality, problem) from error

    def entry_attrs(self, video_id: str, modality: str) -> dict[str, Any] | None:
        """The attributes of a complete entry, or None if absent or unreadable."""
        import h5py

        p = self.path(video_id, modality)
        if not p.is_file():
            return None
        try:
            with h5py.File(p, "r") as f:
                return {k: attr_value(v) for k, v in f.attrs.items()}
        except OSError:
            return None

    def check_entry(self, video_id: str, modality: str, *, config_hash: str,
                    source: tuple[int, int] | None = None, datasets: tuple[str, ...] = ()) -> str | None:
        """Why an entry's file cannot be trusted as done, or None if it can.

        It must open, carry ``config_hash``, come from the source as it is now (when both the
        file and ``source``, ``(size, mtime_ns)``, say), hold ``datasets`` with one length
        (``num_frames`` of them where the file says), and every dataset's first and last
        rows must read (a damaged chunk fails to decompress). Cheap enough to run on every
        entry when planning; damage inside a chunk of uncompressed rows goes unnoticed.
        """
        import h5py

        p = self.path(video_id, modality)
        if not p.is_file():
            return "no file"
        try:
            with h5py.File(p, "r") as f:
                attrs = {k: attr_value(v) for k, v in f.attrs.items()}
                if attrs.get("config_hash") != config_hash:
                    return f"written with config {attrs.get('config_hash')}, not {config_hash}"
                made_from = (attrs.get("source_size"), attrs.get("source_mtime_ns"))
                if source is not None and None not in made_from and made_from != tuple(source):
                    return "made from an earlier version of the source video"
                absent = [d for d in datasets if not isinstance(f.get(d), h5py.Dataset)]
                if absent:
                    return f"incomplete: no dataset {', '.join(absent)}"
                lengths = {d: f[d].shape[0] if f[d].shape else None for d in datasets}
                if "num_frames" in attrs and datasets:
                    lengths["num_frames attribute"] = attrs["num_frames"]
                if len(set(lengths.values())) > 1:
                    return f"incomplete: lengths differ ({lengths})"
                return _unreadable(f)
        except (OSError, RuntimeError, ValueError, KeyError) as e:
            return f"cannot be read ({type(e).__name__}: {e})"


# (path, size, mtime_ns) -> what verify_entry said, for raise_if_damaged (per process)
_VERIFIED: dict[tuple[str, int, int], str | None] = {}


def open_entry(root: str | os.PathLike, video_id: str, modality: str) -> "CachedEntry":
    """Open an entry of the store at ``root`` for reading, as a :class:`CachedEntry`; a file that
    does not open and is not the one committed raises :class:`DamagedEntryError`."""
    import h5py

    path = Path(root) / entry_relpath(video_id, modality)
    f = None
    try:
        f = h5py.File(path, "r")
        return CachedEntry(f)
    except (OSError, KeyError) as e:  # h5py: KeyError where an object's header does not read
        if f is not None:
            f.close()
        raise_if_damaged(root, video_id, modality, e)
        raise


def raise_if_damaged(root: str | os.PathLike, video_id: str, modality: str, error: BaseException) -> None:
    """:meth:`FeatureStore.raise_if_damaged` for a reader that keeps only the store's root (a
    dataset in worker processes): call it in the handler of a read error of that entry."""
    store = FeatureStore(root)
    try:
        store.raise_if_damaged(video_id, modality, error)
    finally:
        if store._manifest is not None:
            store._manifest.close()


def append_rows(ds: Any, rows: Any) -> None:
    """Append rows to a resizable HDF5 dataset along axis 0 with one resize and one write.

    ``rows`` is an array or a sequence of rows; for variable-length datasets (e.g. JPEG bytes)
    a sequence of 1-D uint8 arrays, written as one block (3-4x faster than row by row).
    """
    k = len(rows)
    if k == 0:
        return
    n = ds.shape[0]
    ds.resize(n + k, axis=0)
    if ds.dtype.kind != "O":
        ds[n:] = rows if isinstance(rows, np.ndarray) else np.stack(rows)
        return
    block = np.empty(k, dtype=object)
    for i, r in enumerate(rows):
        block[i] = r
    try:
        ds[n:] = block
    except TypeError:  # h5py cannot take a block whose rows all have one length
        for i in range(k):
            ds[n + i] = block[i]


class Appender:
    """Buffers rows for one resizable dataset and appends them ``block`` at a time."""

    def __init__(self, dataset: Any, block: int = 64) -> None:
        self.ds, self.block, self.rows = dataset, block, []

    def add(self, row: Any) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.block:
            self.flush()

    def flush(self) -> None:
        append_rows(self.ds, self.rows)
        self.rows = []


def read_rows(ds: Any, indices: Any) -> np.ndarray:
    """Rows ``indices`` (any order, repeats allowed) of an HDF5 dataset, in one read.

    One h5py call per row costs ~0.1 ms, more than decoding a small JPEG; h5py's fancy
    indexing needs increasing, distinct indices, so they are sorted and deduplicated, read
    together (as one contiguous slice when it is at most 4x the rows needed) and put back in
    the order asked.
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        return ds[0:0]
    uniq, inv = np.unique(idx, return_inverse=True)
    lo, hi = int(uniq[0]), int(uniq[-1]) + 1
    rows = ds[lo:hi][uniq - lo] if hi - lo <= 4 * len(uniq) else ds[uniq]
    return rows[inv]


class CachedEntry:
    """An open store entry (``h5py.File``) whose datasets and attributes are looked up once per
    open: h5py opens a dataset, with an empty chunk cache, on every ``f[name]`` (so a window
    of poses was decompressed again on every read) and reads an attribute on every access."""

    def __init__(self, file: Any) -> None:
        self.file, self.filename = file, file.filename
        self.attrs = _CachedAttrs(file.attrs)
        self._datasets: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        d = self._datasets.get(name)
        if d is None:
            d = self._datasets[name] = self.file[name]
        return d

    def __contains__(self, name: str) -> bool:
        return name in self._datasets or name in self.file

    def keys(self) -> Any:
        return self.file.keys()

    def close(self) -> None:
        self.file.close()


class _CachedAttrs:
    def __init__(self, attrs: Any) -> None:
        self._attrs, self._seen = attrs, {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._seen:
            self._seen[name] = self._attrs[name]
        return self._seen[name]

    def __contains__(self, name: str) -> bool:
        return name in self._seen or name in self._attrs


def time_chunks(a: Any, max_bytes: int = 1 << 18) -> tuple[int, ...]:
    """HDF5 chunks for a time-major ``(T, ...)`` array: whole time steps, up to ``max_bytes``
    (256 KB) each, so reading a window decompresses few chunks. (h5py's automatic chunks split
    every axis: a 4 s window of ``(T, M, V, C)`` poses touched 16 chunks.)"""
    step = max(1, int(np.prod(a.shape[1:], dtype=np.int64)) * np.dtype(a.dtype).itemsize)
    return (max(1, min(a.shape[0], max_bytes // step)), *a.shape[1:])


def decode_jpeg_bytes(data: Any, *, gray: bool) -> np.ndarray:
    """JPEG bytes (``bytes`` or a uint8 array) -> ``(H, W)`` uint8 (``gray``) or ``(H, W, 3)`` RGB.

    OpenCV when it is installed (4-5x faster than PIL on small frames: no file object, no
    mode conversion; both use libjpeg-turbo, and the pixels agreed exactly on the stored
    frames of the shared videos), else PIL. Undecodable data raises ``OSError``.
    """
    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray)) else np.asarray(data, np.uint8)
    try:
        import cv2
    except ImportError:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(buf.tobytes())) as im:
            return np.asarray(im.convert("L" if gray else "RGB"))
    im = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if im is None:
        raise OSError(f"cannot decode {len(buf)} bytes as a JPEG image")
    return im if gray else cv2.cvtColor(im, cv2.COLOR_BGR2RGB)


def attr_value(v: Any) -> Any:
    """An HDF5 attribute as a plain Python value (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def config_attrs(extractor: str, config: Any, config_hash: str) -> dict[str, Any]:
    """The provenance attributes every extracted entry carries."""
    import dataclasses

    from .. import __version__

    return {
        "extractor": extractor,
        "config_json": json.dumps(dataclasses.asdict(config), sort_keys=True),
        "config_hash": config_hash,
        "package_version": __version__,
    }
