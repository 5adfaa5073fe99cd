"""The dataset manifest: which videos exist, what each is, and per modality what was extracted.

Stored as SQLite (``STORE/manifest.sqlite``): transactions make every update atomic, several
processes can record results at once (SQLite locks the file; ranks of a ``torchrun`` job wait
for each other), and it is readable from any language. :meth:`Manifest.export_csv` writes the
one-row-per-video view (``manifest.csv``) that people open in a spreadsheet or pandas.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Optional

from multimodal_har.atomic import atomic_path

STATUSES = ("ok", "failed", "missing")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS videos (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    label TEXT,
    split TEXT,
    fps REAL,
    num_frames INTEGER,
    width INTEGER,
    height INTEGER,
    duration REAL,
    has_audio INTEGER,
    probe_error TEXT
);
CREATE TABLE IF NOT EXISTS entries (
    video_id TEXT NOT NULL,
    modality TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'missing')),
    error TEXT,
    extractor TEXT,
    config_json TEXT,
    config_hash TEXT,
    path TEXT,
    seconds REAL,
    updated REAL,
    source_size INTEGER,
    source_mtime_ns INTEGER,
    checksum TEXT,
    file_size INTEGER,
    PRIMARY KEY (video_id, modality)
);
"""
# columns added after the first release: (name, type), added to older manifests on open
_ADDED_ENTRY_COLUMNS = (("source_size", "INTEGER"), ("source_mtime_ns", "INTEGER"),
                        ("checksum", "TEXT"), ("file_size", "INTEGER"))

VIDEO_COLUMNS = ("id", "path", "label", "split", "fps", "num_frames", "width", "height",
                 "duration", "has_audio", "probe_error")
ENTRY_COLUMNS = ("status", "error", "config_hash", "path", "extractor", "config_json", "checksum", "file_size")


class Manifest:
    """Read/write access to ``manifest.sqlite``. Writes are committed by :meth:`commit`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        # A generous timeout: other ranks may hold the write lock while they commit.
        self.conn = sqlite3.connect(self.path, timeout=120)
        self.conn.row_factory = sqlite3.Row
        self.conn.executescript(_SCHEMA)
        have = {r[1] for r in self.conn.execute("PRAGMA table_info(entries)")}
        for name, kind in _ADDED_ENTRY_COLUMNS:
            if name not in have:
                try:
                    self.conn.execute(f"ALTER TABLE entries ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as e:  # another process added it first
                    if "duplicate column" not in str(e):
                        raise
        self.conn.commit()

    def close(self) -> None:
        self.conn.commit()
        self.conn.close()

    def commit(self) -> None:
        self.conn.commit()

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> Optional[str]:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ videos
    def upsert_videos(self, records: Iterable[Any]) -> None:
        """Add videos (``VideoRecord``s) or update their path/label/split; probe data is kept."""
        self.conn.executemany(
            """INSERT INTO videos (id, path, label, split) VALUES (?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET path = excluded.path, label = excluded.label,
                                             split = excluded.split""",
            [(r.id, r.path, r.label, r.split) for r in records],
        )

    def set_probe(self, video_id: str, info: Any = None, error: Optional[str] = None) -> None:
        """Record a ``VideoInfo`` (or the error that prevented reading the header)."""
        if info is not None:
            d = asdict(info)
            self.conn.execute(
                """UPDATE videos SET fps = ?, num_frames = ?, width = ?, height = ?, duration = ?,
                   has_audio = ?, probe_error = NULL WHERE id = ?""",
                (d["fps"], d["num_frames"], d["width"], d["height"], d["duration"],
                 int(d["has_audio"]), video_id),
            )
        else:
            self.conn.execute("UPDATE videos SET probe_error = ? WHERE id = ?", (error, video_id))

    def videos(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM videos ORDER BY id")]

    def video(self, video_id: str) -> Optional[dict[str, Any]]:
        r = self.conn.execute("SELECT * FROM videos WHERE id = ?", (video_id,)).fetchone()
        return dict(r) if r else None

    # ------------------------------------------------------------------ entries
    def record(
        self,
        video_id: str,
        modality: str,
        *,
        status: str,
        error: Optional[str] = None,
        extractor: Optional[str] = None,
        config_json: Optional[str] = None,
        config_hash: Optional[str] = None,
        path: Optional[str] = None,
        seconds: Optional[float] = None,
        source: Optional[tuple[int, int]] = None,
        fingerprint: Optional[tuple[str, int]] = None,
    ) -> None:
        """Record one entry. ``source``: the video's ``(size, mtime_ns)`` when it was read, so
        that a video replaced in place is extracted again. ``fingerprint``: the committed file's
        ``(checksum, size)`` (``FeatureStore.fingerprint``), so that damage is found later."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        size, mtime_ns = source if source is not None else (None, None)
        checksum, file_size = fingerprint if fingerprint is not None else (None, None)
        self.conn.execute(
            """INSERT OR REPLACE INTO entries
               (video_id, modality, status, error, extractor, config_json, config_hash, path, seconds, updated,
                source_size, source_mtime_ns, checksum, file_size)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (video_id, modality, status, error, extractor, config_json, config_hash, path,
             seconds, time.time(), size, mtime_ns, checksum, file_size),
        )

    def mark_failed(self, video_id: str, modality: str, error: str) -> None:
        """Set a recorded entry's status to ``failed`` with ``error``, keeping the rest of its row
        (``FeatureStore.verify`` marks damaged files so)."""
        self.conn.execute("UPDATE entries SET status = 'failed', error = ?, updated = ? "
                          "WHERE video_id = ? AND modality = ?", (error, time.time(), video_id, modality))

    def entry(self, video_id: str, modality: str) -> Optional[dict[str, Any]]:
        r = self.conn.execute(
            "SELECT * FROM entries WHERE video_id = ? AND modality = ?", (video_id, modality)
        ).fetchone()
        return dict(r) if r else None

    def entries(self, modality: Optional[str] = None, status: Optional[str] = None) -> list[dict[str, Any]]:
        q, args = "SELECT * FROM entries WHERE 1 = 1", []
        if modality is not None:
            q += " AND modality = ?"
            args.append(modality)
        if status is not None:
            q += " AND status = ?"
            args.append(status)
        return [dict(r) for r in self.conn.execute(q + " ORDER BY video_id, modality", args)]

    def modalities(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT modality FROM entries ORDER BY modality")]

    def counts(self) -> dict[str, dict[str, int]]:
        """``{modality: {status: count}}``."""
        out: dict[str, dict[str, int]] = {}
        for m, s, n in self.conn.execute(
            "SELECT modality, status, COUNT(*) FROM entries GROUP BY modality, status"
        ):
            out.setdefault(m, {})[s] = n
        return out

    # ------------------------------------------------------------------ views
    def rows(self) -> list[dict[str, Any]]:
        """One row per video: its columns, then ``<modality>_<field>`` for every modality."""
        modalities = self.modalities()
        by_video: dict[str, dict[str, Any]] = {}
        for e in self.entries():
            by_video.setdefault(e["video_id"], {})[e["modality"]] = e
        rows = []
        for v in self.videos():
            row = {k: v[k] for k in VIDEO_COLUMNS}
            for m in modalities:
                e = by_video.get(v["id"], {}).get(m)
                for field in ENTRY_COLUMNS:
                    row[f"{m}_{field}"] = e[field] if e else None
                if e is None:
                    row[f"{m}_status"] = "pending"
            rows.append(row)
        return rows

    def export_csv(self, path: str | os.PathLike) -> Path:
        """Write :meth:`rows` as CSV atomically (temporary name, then rename)."""
        path = Path(path)
        rows = self.rows()
        columns = list(VIDEO_COLUMNS)
        for m in self.modalities():
            columns += [f"{m}_{f}" for f in ENTRY_COLUMNS]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            w.writerows(rows)
        return path
