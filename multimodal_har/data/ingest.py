"""Video-folder ingestion: find the videos of a dataset and their labels and splits.

Two layouts:

* ``ROOT/<class_name>/<video>`` (any depth below the class folder): the label is the
  top-level folder's name; videos directly in ``ROOT`` are unlabelled.
* any tree plus an annotation CSV with columns ``path,label[,split]`` (a header row with
  these names is optional); paths are relative to ``ROOT``.

A video's id is its path relative to ``ROOT`` without the extension (``walk/0001``); it names
the video's files in the feature store.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional, Sequence

from .video import VIDEO_EXTENSIONS


@dataclass(frozen=True)
class VideoRecord:
    """One video of a dataset. ``path`` is relative to the dataset root, '/'-separated."""

    id: str
    path: str
    label: Optional[str] = None
    split: Optional[str] = None


def _video_id(relpath: str) -> str:
    return str(PurePosixPath(relpath).with_suffix(""))


def _check_unique_ids(records: Sequence[VideoRecord]) -> None:
    # ids the store cannot hold (a backslash, bytes that are not UTF-8) are not checked here:
    # extraction fails those videos one by one, with the reason, and processes the rest
    seen: dict[str, str] = {}
    for r in records:
        if r.id in seen:
            raise ValueError(
                f"two videos map to the same id {r.id!r}: {seen[r.id]!r} and {r.path!r} "
                f"(ids are paths without the extension; rename one of them)"
            )
        seen[r.id] = r.path


def scan_folder(root: str | os.PathLike, *, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> list[VideoRecord]:
    """Find videos under ``root`` (``ROOT/<class>/<video>`` layout), sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"videos root {root} is not a directory")
    exts = {e.lower() for e in extensions}
    records = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in exts:
                continue
            rel = Path(dirpath, name).relative_to(root).as_posix()
            parts = rel.split("/")
            label = parts[0] if len(parts) > 1 else None
            records.append(VideoRecord(id=_video_id(rel), path=rel, label=label))
    records.sort(key=lambda r: r.path)
    _check_unique_ids(records)
    return records


def read_annotations(root: str | os.PathLike, annotations: str | os.PathLike) -> list[VideoRecord]:
    """Read an annotation CSV (``path,label[,split]``); paths are relative to ``root``.

    Files listed but absent are kept: extraction reports them as failed, per video.
    """
    root = Path(root).resolve()
    records = []
    seen_paths: dict[str, int] = {}
    with open(annotations, newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in row]
            if lineno == 1 and cells[0].lower() == "path":
                header = [c.lower() for c in cells]
                if header[:2] != ["path", "label"] or header[2:] not in ([], ["split"]):
                    raise ValueError(f"{annotations}:1: header must be 'path,label[,split]', got {row}")
                continue
            if len(cells) not in (2, 3):
                raise ValueError(f"{annotations}:{lineno}: expected 'path,label[,split]', got {len(cells)} fields: {row}")
            p = Path(cells[0])
            if p.is_absolute():
                try:
                    p = p.resolve().relative_to(root)
                except ValueError:
                    raise ValueError(f"{annotations}:{lineno}: {cells[0]} is not inside the videos root {root}") from None
            rel = p.as_posix()
            if rel in seen_paths:
                raise ValueError(f"{annotations}:{lineno}: {rel} is listed twice (first on line {seen_paths[rel]})")
            seen_paths[rel] = lineno
            label = cells[1] or None
            split = (cells[2] or None) if len(cells) == 3 else None
            records.append(VideoRecord(id=_video_id(rel), path=rel, label=label, split=split))
    if not records:
        raise ValueError(f"{annotations} lists no videos")
    _check_unique_ids(records)
    return records


def scan_videos(root: str | os.PathLike, *, annotations: str | os.PathLike | None = None) -> list[VideoRecord]:
    """The videos of a dataset: from ``annotations`` if given, else from the folder layout."""
    if annotations is not None:
        return read_annotations(root, annotations)
    records = scan_folder(root)
    if not records:
        raise ValueError(f"no videos ({', '.join(VIDEO_EXTENSIONS)}) found under {root}")
    return records
