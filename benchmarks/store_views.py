"""Derived feature stores for the benchmarks: the same entries under more video ids, or each
video cut in two by time.

* :func:`replicate_store`: every entry of every video ``R`` times (``r000/<id>``, ...), as
  symbolic links to the original HDF5 files, the manifest rows copied: a store of ``R x``
  the videos for throughput measurements, with real data and no extra disk.
* :func:`split_store_by_time`: every video becomes ``train/<id>`` (the entries' rows whose
  time is before ``fraction`` of the video's span) and ``test/<id>`` (the rows from there on),
  same label; windows drawn from the two can never overlap in time. The manifest's splits
  are per video, and a window is drawn over a whole entry, so this is how a time split of one
  video is expressed to :class:`~multimodal_har.data.dataset.StoreDataset`.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np

from multimodal_har.data.store import MANIFEST_DB

TIME_KEYS = ("timestamps", "times")  # rows' time in seconds: every entry but skeleton-only ones


def _copy_manifest(src: Path, dst: Path, ids: dict[str, list[tuple[str, str | None]]]) -> None:
    """Manifest of ``dst``: each video id of ``src`` replaced by ``ids[id]`` = ``[(new_id, split)]``
    (split None: keep), every entry row duplicated with its new id and path."""
    shutil.copy(src / MANIFEST_DB, dst / MANIFEST_DB)
    con = sqlite3.connect(dst / MANIFEST_DB)
    con.row_factory = sqlite3.Row
    videos = [dict(r) for r in con.execute("SELECT * FROM videos")]
    entries = [dict(r) for r in con.execute("SELECT * FROM entries")]
    con.execute("DELETE FROM videos")
    con.execute("DELETE FROM entries")
    for v in videos:
        for new, split in ids.get(v["id"], []):
            row = {**v, "id": new, "split": v["split"] if split is None else split}
            con.execute(f"INSERT INTO videos ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                        tuple(row.values()))
    for e in entries:
        for new, _ in ids.get(e["video_id"], []):
            row = {**e, "video_id": new, "path": None if e["path"] is None else f"{e['modality']}/{new}.h5"}
            con.execute(f"INSERT INTO entries ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                        tuple(row.values()))
    con.commit()
    con.close()


def _entries(src: Path) -> list[tuple[str, str]]:
    con = sqlite3.connect(src / MANIFEST_DB)
    rows = con.execute("SELECT video_id, modality FROM entries WHERE status = 'ok'").fetchall()
    con.close()
    return rows


def _video_ids(src: Path) -> list[str]:
    con = sqlite3.connect(src / MANIFEST_DB)
    rows = [r[0] for r in con.execute("SELECT id FROM videos ORDER BY id")]
    con.close()
    return rows


def replicate_store(src: str | Path, dst: str | Path, replicas: int) -> Path:
    """``dst``: ``replicas`` copies of every video of the store ``src`` (links, see the module doc)."""
    src, dst = Path(src).resolve(), Path(dst)
    dst.mkdir(parents=True)
    ids = {v: [(f"r{r:03d}/{v}", None) for r in range(replicas)] for v in _video_ids(src)}
    for vid, modality in _entries(src):
        for new, _ in ids[vid]:
            link = dst / modality / f"{new}.h5"
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(src / modality / f"{vid}.h5")
    _copy_manifest(src, dst, ids)
    return dst


def split_store_by_time(src: str | Path, dst: str | Path, fraction: float = 0.7) -> Path:
    """``dst``: each video of ``src`` cut at ``fraction`` of its time span into ``train/<id>``
    and ``test/<id>`` (see the module doc); entries without row times are copied whole to both."""
    import h5py

    src, dst = Path(src).resolve(), Path(dst)
    dst.mkdir(parents=True)
    vids = _video_ids(src)
    entries = _entries(src)
    # the cut of each video: fraction of the span covered by all of its timed entries
    span: dict[str, list[float]] = {}
    for vid, modality in entries:
        with h5py.File(src / modality / f"{vid}.h5", "r") as f:
            key = next((k for k in TIME_KEYS if k in f), None)
            if key is not None and f[key].shape[0]:
                t = f[key][()]
                span.setdefault(vid, []).extend([float(t[0]), float(t[-1])])
    cut = {v: min(s) + fraction * (max(s) - min(s)) for v, s in span.items()}
    for vid, modality in entries:
        with h5py.File(src / modality / f"{vid}.h5", "r") as f:
            key = next((k for k in TIME_KEYS if k in f), None)
            n = f[key].shape[0] if key else None
            t = f[key][()] if key else None
            for part in ("train", "test"):
                keep = None if t is None else np.flatnonzero(t < cut[vid] if part == "train" else t >= cut[vid])
                out = dst / modality / part / f"{vid}.h5"
                out.parent.mkdir(parents=True, exist_ok=True)
                with h5py.File(out, "w") as g:
                    g.attrs.update(dict(f.attrs))
                    for name, ds in f.items():  # rows of per-time datasets, the rest as is
                        data = ds[()] if keep is None or ds.shape[:1] != (n,) else ds[()][keep]
                        g.create_dataset(name, data=data, dtype=ds.dtype)
    _copy_manifest(src, dst, {v: [(f"train/{v}", "train"), (f"test/{v}", "test")] for v in vids})
    return dst


__all__ = ["replicate_store", "split_store_by_time"]
