"""Damaged input is failed per video with a reason, never stored as good, and never stops
the folder: truncated audio fails like truncated frames do; a file whose name the store
cannot hold fails alone."""

import os
import shutil

import pytest

from multimodal_har.extractors import build_extractor
from multimodal_har.extractors.runner import run_extraction
from multimodal_har.data.store import FeatureStore
from tests.conftest import VIDEOS

AVI = VIDEOS / "apply_eye_makeup_with_audio.avi"  # 6.6 s of MP3 audio


@pytest.mark.parametrize("fraction", [0.5, 0.8])
def test_truncated_audio_fails_like_truncated_frames(tmp_path, fraction):
    root = tmp_path / "v"
    root.mkdir()
    data = AVI.read_bytes()
    (root / "cut.avi").write_bytes(data[: int(len(data) * fraction)])
    shutil.copy(AVI, root / "whole.avi")
    store = FeatureStore(tmp_path / "s", create=True)
    s = run_extraction(build_extractor("audio"), videos_root=root, store=store, workers=1, progress=False)
    assert s.done == 1 and [v for v, _ in s.failed] == ["cut"], s.format()
    reason = dict(s.failed)["cut"]
    assert "truncated" in reason and "of audio" in reason, reason
    assert not store.has("cut", "audio") and store.manifest.entry("cut", "audio")["status"] == "failed"
    rgb = run_extraction(build_extractor("rgb", short_side=32), videos_root=root, store=store, workers=1,
                         progress=False)
    assert [v for v, _ in rgb.failed] == ["cut"]  # the two modalities agree


@pytest.mark.parametrize("workers", [1, 2])
def test_a_name_the_store_cannot_hold_fails_alone(tmp_path, workers):
    root = tmp_path / "v"
    root.mkdir()
    for name in ["tai_chi.mp4", "clean_and_jerk.mp4"]:
        os.symlink(VIDEOS / name, root / name)
    os.symlink(VIDEOS / "tai_chi.mp4", root / "back\\slash.mp4")
    os.symlink(VIDEOS / "tai_chi.mp4", os.fsencode(root) + b"/caf\xe9.mp4")  # not UTF-8
    store = FeatureStore(tmp_path / "s", create=True)
    s = run_extraction(build_extractor("rgb", short_side=32, max_frames=3), videos_root=root, store=store,
                       workers=workers, progress=False)
    assert s.done == 2 and s.total == 4, s.format()
    failed = dict(s.failed)
    assert set(failed) == {"back\\slash", os.fsdecode(b"caf\xe9")}
    assert "backslash" in failed["back\\slash"] and "rename" in failed["back\\slash"]
    assert "UTF-8" in failed[os.fsdecode(b"caf\xe9")]
    m = store.manifest
    assert m.entry("back\\slash", "rgb")["status"] == "failed"  # recorded where SQLite can hold the name
    assert {e["video_id"] for e in m.entries(status="ok")} == {"tai_chi", "clean_and_jerk"}
    assert "FAILED  back\\slash" in s.format()
    again = run_extraction(build_extractor("rgb", short_side=32, max_frames=3), videos_root=root, store=store,
                           workers=workers, progress=False)
    assert (again.skipped, len(again.failed)) == (2, 2)
