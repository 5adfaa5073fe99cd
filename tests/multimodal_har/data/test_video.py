"""Decoding real videos with PyAV: header facts, sampling, resizing, audio, and clear errors."""

import numpy as np
import pytest

from multimodal_har.data.video import (NoAudioTrack, VideoError, iter_audio, iter_frames, probe,
                                       resized_shape)
from tests.conftest import REAL, VIDEOS, make_audio_only_mp4


@pytest.mark.parametrize("vid", sorted(REAL))
def test_probe_matches_the_data_readme(vid):
    facts = REAL[vid]
    info = probe(VIDEOS / facts["file"])
    assert (info.width, info.height) == facts["size"]
    assert info.has_audio == facts["audio"]
    if "fps" in facts:
        assert info.fps == pytest.approx(facts["fps"], rel=1e-3)
    if "frames" in facts:
        assert info.num_frames == facts["frames"]
    assert info.num_frames > 0 and info.duration > 0
    assert info.duration == pytest.approx(info.num_frames / info.fps, rel=0.05)


def test_resized_shape_keeps_aspect():
    assert resized_shape(1080, 1920, 256) == (256, 455)
    assert resized_shape(1920, 1080, 256) == (455, 256)
    assert resized_shape(240, 320, 256) == (256, 341)
    assert resized_shape(240, 320, None) == (240, 320)


def test_iter_frames_resizes_and_streams():
    it = iter_frames(VIDEOS / "demo_skeleton.mp4", short_side=256)
    first = next(it)  # a generator: the first frame comes before the rest is decoded
    assert first.image.shape == (256, 455, 3) and first.image.dtype == np.uint8
    assert first.index == 0
    rest = list(it)
    assert len(rest) + 1 == 72
    assert [f.index for f in rest] == list(range(1, 72))
    native = next(iter_frames(VIDEOS / "tai_chi.mp4", short_side=None))
    assert native.image.shape == (256, 340, 3)


def test_stride_and_fps_sampling():
    path = VIDEOS / "cleaning_pool.mp4"  # 30 fps, 300 frames
    strided = list(iter_frames(path, stride=4, short_side=64))
    assert [f.index for f in strided] == list(range(0, 300, 4))
    sampled = list(iter_frames(path, fps=5, short_side=64))
    assert len(sampled) == pytest.approx(50, abs=1)
    gaps = np.diff([f.time for f in sampled])
    assert gaps.min() >= 0.2 - 1e-3 and gaps.max() <= 0.2 + 1 / 30 + 1e-3
    assert [f.index for f in sampled][:4] == [0, 6, 12, 18]
    # a target rate above the source rate keeps every frame once
    assert len(list(iter_frames(path, fps=60, short_side=32))) == 300
    assert len(list(iter_frames(path, max_frames=7, short_side=32))) == 7


def test_frames_are_the_decoded_pixels():
    import av

    with av.open(str(VIDEOS / "tai_chi.mp4")) as c:
        ref = next(c.decode(video=0)).to_ndarray(format="rgb24")
    ours = next(iter_frames(VIDEOS / "tai_chi.mp4", short_side=None)).image
    np.testing.assert_array_equal(ours, ref)


def test_audio_is_mono_16k_and_as_long_as_the_video():
    path = VIDEOS / "chaplin_with_audio.mp4"
    chunks = list(iter_audio(path, sample_rate=16000))
    y = np.concatenate([c.samples for c in chunks])
    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) / 16000 == pytest.approx(probe(path).duration, abs=0.1)
    assert 0.05 < np.abs(y).max() <= 1.0
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
    with pytest.raises(NoAudioTrack, match="has no audio track"):
        list(iter_audio(VIDEOS / "tai_chi.mp4"))


@pytest.mark.parametrize("kind,match", [
    ("empty", "file is empty"),
    ("noise", "invalid data"),
    ("missing", "does not exist"),
    ("dir", "is a directory"),
    ("audio_only", "has no video stream"),
])
def test_unreadable_inputs_raise_clear_errors(tmp_path, kind, match):
    p = tmp_path / "x.mp4"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "noise":
        p.write_bytes(np.random.default_rng(1).bytes(50_000))
    elif kind == "dir":
        p.mkdir()
    elif kind == "audio_only":
        make_audio_only_mp4(p)
    with pytest.raises(VideoError, match=match):
        probe(p)
    with pytest.raises(VideoError, match=match):
        next(iter_frames(p))
