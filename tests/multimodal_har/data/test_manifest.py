import csv
import multiprocessing as mp

import pytest

from multimodal_har.data.ingest import VideoRecord
from multimodal_har.data.manifest import Manifest
from multimodal_har.data.video import VideoInfo


def test_records_and_one_row_per_video_csv(tmp_path):
    m = Manifest(tmp_path / "m.sqlite")
    m.upsert_videos([VideoRecord("a/1", "a/1.mp4", "a", "train"), VideoRecord("b/2", "b/2.avi", "b", None)])
    m.set_probe("a/1", VideoInfo(fps=25.0, num_frames=250, width=320, height=240, duration=10.0, has_audio=True))
    m.set_probe("b/2", error="cannot open: invalid data")
    m.record("a/1", "rgb", status="ok", config_hash="h1", path="rgb/a/1.h5")
    m.record("b/2", "rgb", status="failed", error="cannot open: invalid data", config_hash="h1")
    m.record("a/1", "audio", status="missing", error="no audio track")
    m.commit()
    assert m.counts() == {"rgb": {"ok": 1, "failed": 1}, "audio": {"missing": 1}}
    rows = {r["id"]: r for r in m.rows()}
    assert rows["a/1"]["fps"] == 25.0 and rows["a/1"]["has_audio"] == 1 and rows["a/1"]["split"] == "train"
    assert rows["b/2"]["rgb_status"] == "failed" and rows["b/2"]["audio_status"] == "pending"
    out = m.export_csv(tmp_path / "manifest.csv")
    with open(out) as f:
        table = list(csv.DictReader(f))
    assert [r["id"] for r in table] == ["a/1", "b/2"]
    assert table[0]["rgb_path"] == "rgb/a/1.h5" and table[1]["rgb_error"] == "cannot open: invalid data"
    assert not list(tmp_path.glob(".manifest.csv*"))  # no temporary left
    with pytest.raises(ValueError, match="status must be one of"):
        m.record("a/1", "rgb", status="done")
    # upsert keeps probe data and updates labels
    m.upsert_videos([VideoRecord("a/1", "a/1.mp4", "A", "val")])
    v = m.video("a/1")
    assert (v["label"], v["split"], v["num_frames"]) == ("A", "val", 250)


def _write_many(path, start):
    m = Manifest(path)
    for i in range(start, start + 60):
        m.record(f"v{i}", "rgb", status="ok", config_hash="h")
        m.commit()
    m.close()


def test_several_processes_record_at_once(tmp_path):
    path = tmp_path / "m.sqlite"
    Manifest(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(path, k * 60)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(Manifest(path).entries("rgb", "ok")) == 180


def test_manifests_written_before_checksums_open_and_gain_the_columns(tmp_path):
    import sqlite3

    path = tmp_path / "manifest.sqlite"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE videos (id TEXT PRIMARY KEY, path TEXT NOT NULL, label TEXT, split TEXT, fps REAL,
            num_frames INTEGER, width INTEGER, height INTEGER, duration REAL, has_audio INTEGER, probe_error TEXT);
        CREATE TABLE entries (video_id TEXT NOT NULL, modality TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
            extractor TEXT, config_json TEXT, config_hash TEXT, path TEXT, seconds REAL, updated REAL,
            PRIMARY KEY (video_id, modality));
        INSERT INTO videos (id, path) VALUES ('a/1', 'a/1.mp4');
        INSERT INTO entries (video_id, modality, status, path) VALUES ('a/1', 'rgb', 'ok', 'rgb/a/1.h5');""")
    old.commit()
    old.close()
    m = Manifest(path)
    e = m.entry("a/1", "rgb")
    assert e["status"] == "ok" and e["checksum"] is None and e["file_size"] is None and e["source_size"] is None
    m.record("a/1", "rgb", status="ok", path="rgb/a/1.h5", fingerprint=("sha256:00", 12))
    m.mark_failed("a/1", "rgb", "damaged: test")
    e = m.entry("a/1", "rgb")
    assert (e["status"], e["error"], e["checksum"], e["file_size"]) == ("failed", "damaged: test", "sha256:00", 12)
    assert m.rows()[0]["rgb_checksum"] == "sha256:00"
