"""The store writes atomically, sweeps what killed writers left, and takes user arrays."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from multimodal_har.cli import main
from multimodal_har.data.store import FeatureStore, file_checksum, validate_name


def test_writer_publishes_only_complete_files(tmp_path):
    store = FeatureStore(tmp_path / "s", create=True)
    with store.writer("cls/v1", "imu", attrs={"rate": 50}) as f:
        f["x"] = np.arange(10)
        assert not store.has("cls/v1", "imu")  # not visible while being written
    assert store.has("cls/v1", "imu")
    arrays, attrs = store.read("cls/v1", "imu")
    np.testing.assert_array_equal(arrays["x"], np.arange(10))
    assert attrs["rate"] == 50 and attrs["video_id"] == "cls/v1" and attrs["modality"] == "imu"
    with pytest.raises(RuntimeError, match="boom"):
        with store.writer("cls/v2", "imu") as f:
            f["x"] = np.arange(3)
            raise RuntimeError("boom")
    assert not store.has("cls/v2", "imu")
    assert list(store.tmp_dir.iterdir()) == []


def test_killed_writer_leaves_no_output_and_its_temp_file_is_swept(tmp_path):
    root = tmp_path / "s"
    code = textwrap.dedent(f"""
        import sys, time, numpy as np
        from multimodal_har.data.store import FeatureStore
        s = FeatureStore({str(root)!r}, create=True)
        with s.writer("v", "imu") as f:
            f["x"] = np.zeros((1000, 100))
            print("writing", flush=True)
            time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "writing"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    store = FeatureStore(root)
    assert not store.has("v", "imu")
    assert len(list(store.tmp_dir.iterdir())) == 1  # the dead writer's temporary file
    assert store.sweep_tmp() == 1
    assert list(store.tmp_dir.iterdir()) == []


def test_sweep_keeps_files_of_live_writers(tmp_path):
    store = FeatureStore(tmp_path, create=True)
    with store.writer("v", "imu") as f:
        f["x"] = np.zeros(3)
        assert store.sweep_tmp() == 0  # our own process is alive
        assert len(list(store.tmp_dir.iterdir())) == 1


def test_bring_your_own_modality(tmp_path):
    store = FeatureStore(tmp_path / "s", create=True)
    rng = np.random.default_rng(0)
    imu = rng.normal(size=(5000, 6)).astype(np.float32)
    ts = np.arange(5000) / 100.0
    store.add("subj1/run3", "imu", {"data": imu, "timestamps": ts}, attrs={"rate_hz": 100}, label="walk")
    with store.open("subj1/run3", "imu") as f:
        assert f["data"].chunks is not None and f["data"].compression == "gzip"
        np.testing.assert_array_equal(f["data"][100:200], imu[100:200])  # a window, read alone
        assert f.attrs["rate_hz"] == 100 and f.attrs["extractor"] == "user"
    e = store.manifest.entry("subj1/run3", "imu")
    assert e["status"] == "ok" and e["path"] == "imu/subj1/run3.h5" and len(e["config_hash"]) == 16
    assert (e["checksum"], e["file_size"]) == file_checksum(store.path("subj1/run3", "imu"))
    assert e["checksum"].startswith("sha256:") and e["file_size"] == store.path("subj1/run3", "imu").stat().st_size
    assert store.verify() == [] and store.verify_entry("subj1/run3", "imu") is None
    assert store.manifest.video("subj1/run3")["label"] == "walk"


def test_store_add_cli(tmp_path, capsys):
    src = tmp_path / "skeletons"
    (src / "a").mkdir(parents=True)
    np.save(src / "a" / "s01.npy", np.ones((30, 20, 3), np.float32))
    np.savez(src / "s02.npz", joints=np.zeros((40, 20, 3)), scores=np.ones((40, 20)))
    assert main(["store", "add", str(tmp_path / "st"), "--modality", "pose3d", "--from", str(src),
                 "--attr", "layout=kinect_v1_20", "--label", "wave"]) == 0
    store = FeatureStore(tmp_path / "st")
    arrays, attrs = store.read("a/s01", "pose3d")
    assert arrays["data"].shape == (30, 20, 3) and attrs["layout"] == "kinect_v1_20"
    assert set(store.read("s02", "pose3d")[0]) == {"joints", "scores"}
    assert (tmp_path / "st" / "manifest.csv").read_text().count("pose3d/") == 2


@pytest.mark.parametrize("kind,name", [("video id", "../x"), ("video id", "/abs"), ("video id", "a//b"),
                                       ("modality", "a/b"), ("modality", ".tmp"), ("video id", "")])
def test_names_that_would_escape_the_store_are_rejected(kind, name):
    with pytest.raises(ValueError):
        validate_name(kind, name)


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FeatureStore(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="has no 'rgb' for video 'v'"):
        FeatureStore(tmp_path, create=True).open("v", "rgb")


def test_time_chunks_keep_whole_time_steps():
    from multimodal_har.data.store import time_chunks

    poses = np.zeros((1000, 2, 33, 3), np.float32)  # 792 bytes per frame
    assert time_chunks(poses) == ((1 << 18) // 792, 2, 33, 3)
    assert time_chunks(poses[:40]) == (40, 2, 33, 3)
    assert time_chunks(np.zeros((5, 4096, 4096), np.uint8)) == (1, 4096, 4096)  # a step over the budget: one
