"""Shared fixtures: paths to the real data in ../shared/data and deliberately broken videos."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared" / "data").resolve()
VIDEOS = SHARED / "videos"
AUDIO = SHARED / "audio"

if not VIDEOS.is_dir():
    pytest.exit(f"the real test data is missing: expected {VIDEOS} (../shared/data beside the checkout)", 2)

# Facts about the real videos from ../shared/data/README.md, checked by the tests.
REAL = {
    "tai_chi": dict(file="tai_chi.mp4", size=(340, 256), audio=False),
    "clean_and_jerk": dict(file="clean_and_jerk.mp4", size=(340, 256), audio=False),
    "arm_wrestling": dict(file="arm_wrestling.mp4", size=(340, 256), audio=False, fps=28.0),
    "demo_skeleton": dict(file="demo_skeleton.mp4", size=(1920, 1080), audio=False, frames=72),
    "apply_eye_makeup_with_audio": dict(file="apply_eye_makeup_with_audio.avi", size=(320, 240), audio=True, fps=25.0),
    "cleaning_pool": dict(file="cleaning_pool.mp4", size=(340, 256), audio=False, fps=30.0),
    "chaplin_with_audio": dict(file="chaplin_with_audio.mp4", size=(640, 360), audio=True, fps=25.0),
}


def make_audio_only_mp4(dst: Path, src: Path = AUDIO / "speech_16k.wav") -> Path:
    """A real container with an AAC audio stream and no video stream."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        ins = inp.streams.audio[0]
        st = out.add_stream("aac", rate=ins.codec_context.sample_rate)
        for frame in inp.decode(ins):
            frame.pts = None
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    return dst


def make_broken_videos(folder: Path) -> dict[str, str]:
    """Write broken files into ``folder``; returns {video_id: what is wrong}."""
    folder.mkdir(parents=True, exist_ok=True)
    data = (VIDEOS / "cleaning_pool.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "noise.avi").write_bytes(np.random.default_rng(0).bytes(200_000))
    make_audio_only_mp4(folder / "no_video_stream.mp4")
    os.symlink("/nonexistent/does_not_exist.mp4", folder / "dangling.mkv")
    return {
        "truncated": "truncated",
        "empty": "empty",
        "noise": "invalid data",
        "no_video_stream": "no video stream",
        "dangling": "broken symbolic link",
    }


@pytest.fixture
def small_videos(tmp_path) -> Path:
    """A class-folder dataset of three real videos (copied, so tests may not touch the originals)."""
    root = tmp_path / "videos"
    for label, name in [("taichi", "tai_chi.mp4"), ("lifting", "clean_and_jerk.mp4"),
                        ("makeup", "apply_eye_makeup_with_audio.avi")]:
        (root / label).mkdir(parents=True)
        shutil.copy(VIDEOS / name, root / label / name)
    return root
