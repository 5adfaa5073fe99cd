"""A folder of real and broken videos: failures are reported, the rest is done, nothing is
half-written, and runs resume (also after a kill -9) without redoing finished work."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from multimodal_har.extractors import build_extractor
from multimodal_har.extractors.rgb import RGBExtractor
from multimodal_har.extractors.runner import run_extraction
from multimodal_har.data.store import FeatureStore
from tests.conftest import VIDEOS, make_broken_videos

GOOD = ["tai_chi.mp4", "apply_eye_makeup_with_audio.avi", "demo_skeleton.mp4"]


@pytest.fixture
def mixed_folder(tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    for name in GOOD:
        os.symlink(VIDEOS / name, root / name)
    broken = make_broken_videos(root)
    return root, broken


def _final_files(store_root):
    return sorted(p for p in Path(store_root).rglob("*.h5") if ".tmp" not in p.parts)


def _assert_complete(path):
    with h5py.File(path, "r") as f:  # opens: the file is whole
        assert f.attrs["config_hash"]
        if f.attrs["modality"] == "rgb":
            assert f["frames"].shape[0] == f.attrs["num_frames"] > 0


@pytest.mark.parametrize("workers", [1, 2])
def test_broken_videos_are_reported_and_the_rest_is_processed(mixed_folder, tmp_path, workers):
    root, broken = mixed_folder
    store = FeatureStore(tmp_path / "store", create=True)
    ex = build_extractor("rgb", short_side=64)
    s = run_extraction(ex, videos_root=root, store=store, workers=workers, progress=False)
    assert s.total == 8 and s.done == 3 and not s.missing
    failed = dict(s.failed)
    assert set(failed) == set(broken)
    for vid, what in broken.items():
        assert what in failed[vid], (vid, failed[vid])
        e = store.manifest.entry(vid, "rgb")
        assert e["status"] == "failed" and what in e["error"] and e["path"] is None
        assert not store.has(vid, "rgb")
    assert [p.stem for p in _final_files(store.root)] == sorted(Path(n).stem for n in GOOD)
    for p in _final_files(store.root):
        _assert_complete(p)
    assert list(store.tmp_dir.iterdir()) == []
    # the manifest row of a good video has its header facts
    v = store.manifest.video("apply_eye_makeup_with_audio")
    assert (v["width"], v["height"], v["fps"], v["has_audio"]) == (320, 240, 25.0, 1)

    # second run: nothing done is redone, the failures are tried again
    mtimes = {p: p.stat().st_mtime_ns for p in _final_files(store.root)}
    s2 = run_extraction(ex, videos_root=root, store=store, workers=workers, progress=False)
    assert (s2.skipped, s2.done, len(s2.failed)) == (3, 0, 5)
    assert {p: p.stat().st_mtime_ns for p in _final_files(store.root)} == mtimes

    # a fixed video is picked up; a changed config redoes everything that works
    (root / "empty.mp4").unlink()
    os.symlink(VIDEOS / "clean_and_jerk.mp4", root / "empty.mp4")
    s3 = run_extraction(ex, videos_root=root, store=store, workers=workers, progress=False)
    assert (s3.skipped, s3.done, len(s3.failed)) == (3, 1, 4)
    s4 = run_extraction(build_extractor("rgb", short_side=48), videos_root=root, store=store,
                        workers=workers, progress=False)
    assert (s4.skipped, s4.done, len(s4.failed)) == (0, 4, 4)
    rows = (store.root / "manifest.csv").read_text().splitlines()
    assert len(rows) == 1 + 8


def test_audio_over_a_mixed_folder(mixed_folder, tmp_path):
    root, broken = mixed_folder
    s = run_extraction(build_extractor("audio"), videos_root=root, store=tmp_path / "st", workers=2,
                       progress=False)
    assert s.done == 1  # only apply_eye_makeup has a track
    assert {v for v, _ in s.missing} == {"tai_chi", "demo_skeleton"}
    assert set(dict(s.failed)) == set(broken)


def test_complete_files_of_a_killed_run_are_adopted(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    os.symlink(VIDEOS / "tai_chi.mp4", root / "tai_chi.mp4")
    ex = build_extractor("rgb", short_side=32, max_frames=5)
    store = FeatureStore(tmp_path / "s", create=True)
    run_extraction(ex, videos_root=root, store=store, workers=1, progress=False)
    # simulate a kill between the rename and the manifest commit
    store.manifest.conn.execute("DELETE FROM entries")
    store.manifest.commit()
    s = run_extraction(ex, videos_root=root, store=store, workers=1, progress=False)
    assert (s.adopted, s.done) == (1, 0)
    assert store.manifest.entry("tai_chi", "rgb")["status"] == "ok"


def test_kill_9_mid_run_then_resume(tmp_path):
    root = tmp_path / "videos"
    for label in ("a", "b", "c"):
        (root / label).mkdir(parents=True)
        for name in sorted(os.listdir(VIDEOS)):
            os.symlink(VIDEOS / name, root / label / name)
    store_root = tmp_path / "store"
    cmd = [sys.executable, "-m", "multimodal_har.cli", "extract", "rgb", "--videos", str(root),
           "--store", str(store_root), "--workers", "2", "--no-progress", "--short-side", "128"]
    p = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(_final_files(store_root)) < 3:
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL)  # the runner and its workers, mid-run
    p.wait()
    done_before = _final_files(store_root)
    assert 3 <= len(done_before) < 21, "the kill should land mid-run"
    for f in done_before:
        _assert_complete(f)  # everything under a final name is whole
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    store = FeatureStore(store_root)
    assert len(_final_files(store_root)) == 21
    assert store.manifest.counts() == {"rgb": {"ok": 21}}
    assert list(store.tmp_dir.iterdir()) == []
    # what existed before the kill was not redone: "already done" + "recovered" covers it
    first = out.stdout.splitlines()[0]
    done_now = int(first.split(" extracted")[0].rsplit(" ", 1)[-1])
    assert done_now <= 21 - len(done_before), first


class CrashingRGB(RGBExtractor):
    """Kills its own process on one video, as a segfaulting decoder would."""

    def extract(self, path, out, *, info, threads=0):
        if "tai_chi" in str(path):
            os._exit(11)
        return super().extract(path, out, info=info, threads=threads)


def test_a_crashing_worker_fails_only_its_video(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    for name in ["tai_chi.mp4", "clean_and_jerk.mp4", "cleaning_pool.mp4", "arm_wrestling.mp4"]:
        os.symlink(VIDEOS / name, root / name)
    ex = CrashingRGB(config=build_extractor("rgb", short_side=32, max_frames=10).config)
    s = run_extraction(ex, videos_root=root, store=tmp_path / "s", workers=2, progress=False)
    assert s.done == 3
    assert [v for v, _ in s.failed] == ["tai_chi"]
    assert "process died" in s.failed[0][1]


def test_annotation_listing_a_missing_file(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    os.symlink(VIDEOS / "tai_chi.mp4", root / "tai_chi.mp4")
    ann = tmp_path / "ann.csv"
    ann.write_text("path,label,split\ntai_chi.mp4,taichi,train\ngone/away.mp4,taichi,test\n")
    s = run_extraction(build_extractor("rgb", short_side=32, max_frames=4), videos_root=root,
                       store=tmp_path / "s", annotations=ann, workers=1, progress=False)
    assert s.done == 1
    assert s.failed == [("gone/away", f"cannot read {root / 'gone/away.mp4'}: file does not exist")]
    v = FeatureStore(tmp_path / "s").manifest.video("gone/away")
    assert (v["label"], v["split"]) == ("taichi", "test") and "does not exist" in v["probe_error"]


def test_two_ranks_share_a_folder_and_a_manifest(tmp_path):
    """Two processes started at once with RANK / WORLD_SIZE (as torchrun sets them): every video
    is done exactly once, the shared manifest is complete, nothing is left in .tmp."""
    pytest.importorskip("cv2")
    root = tmp_path / "videos"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for name in sorted(os.listdir(VIDEOS)):
            os.symlink(VIDEOS / name, root / label / name)
    store_root = tmp_path / "store"
    cmd = [sys.executable, "-m", "multimodal_har.cli", "extract", "flow", "--backend", "dis", "--videos", str(root),
           "--store", str(store_root), "--workers", "1", "--no-progress", "--short-side", "64", "--max-frames", "4"]
    procs = [subprocess.Popen(cmd, env={**os.environ, "RANK": str(r), "WORLD_SIZE": "2"}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    totals = [int(o.split(" videos:")[0].rsplit(" ", 1)[-1]) for o, _ in outs]
    assert sorted(totals) == [7, 7]  # 14 videos split between the ranks
    assert all(o.startswith(f"[rank {r}/2]") for r, (o, _) in enumerate(outs))
    store = FeatureStore(store_root)
    assert store.manifest.counts() == {"flow": {"ok": 14}}
    assert len(_final_files(store_root)) == 14 and list(store.tmp_dir.iterdir()) == []
