"""Audio log-mels: streaming equals librosa on the whole signal; timestamps align with video."""

import librosa
import numpy as np
import pytest
import soundfile as sf

from multimodal_har.extractors import build_extractor
from multimodal_har.extractors.audio import AudioConfig, logmel_of_chunks
from multimodal_har.extractors.runner import process_video
from multimodal_har.data.store import FeatureStore
from multimodal_har.data.video import iter_audio
from tests.conftest import AUDIO, VIDEOS


def _librosa_logmel(y, cfg):
    mel = librosa.feature.melspectrogram(y=y, sr=cfg.sample_rate, n_fft=cfg.fft_size, hop_length=cfg.hop_length,
                                         win_length=cfg.win_length, center=True, pad_mode="constant",
                                         n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
    return np.log(mel + cfg.log_eps).T


@pytest.mark.parametrize("n_mels", [64, 80])
def test_streaming_logmel_equals_librosa_on_the_whole_signal(n_mels):
    y, sr = sf.read(AUDIO / "speech_16k.wav", dtype="float32")  # 16 kHz stereo
    assert sr == 16000
    y = y.mean(axis=1)
    cfg = AudioConfig(n_mels=n_mels)
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(len(y), size=40, replace=False))
    ours = logmel_of_chunks(cfg, np.split(y, cuts))  # irregular chunks, like decoded frames
    ref = _librosa_logmel(y, cfg)
    assert ours.shape == ref.shape == (1 + len(y) // 160, n_mels)
    np.testing.assert_allclose(ours, ref, atol=2e-3, rtol=1e-4)


def test_decoded_and_resampled_audio_matches_librosa_load():
    # trumpet.ogg is 22.05 kHz: exercises soxr streaming resampling against librosa's one-shot
    ours = np.concatenate([c.samples for c in iter_audio(AUDIO / "trumpet.ogg", sample_rate=16000)])
    ref, _ = librosa.load(AUDIO / "trumpet.ogg", sr=16000, mono=True)
    n = min(len(ours), len(ref))
    assert abs(len(ours) - len(ref)) <= 2
    assert np.corrcoef(ours[:n], ref[:n])[0, 1] > 0.999


def test_audio_entry_of_a_real_video(tmp_path):
    store = FeatureStore(tmp_path, create=True)
    ex = build_extractor("audio", n_mels=40)
    res = process_video(ex, store, "makeup", VIDEOS / "apply_eye_makeup_with_audio.avi")
    assert res["status"] == "ok", res["error"]
    with store.open("makeup", "audio") as f:
        logmel, ts = f["logmel"][()], f["timestamps"][()]
        assert logmel.shape[1] == 40 and logmel.dtype == np.float32 and np.isfinite(logmel).all()
        assert f.attrs["hop_length"] == 160 and f.attrs["win_length"] == 400 and f.attrs["n_fft"] == 512
        # 100 frames per second, covering the 6.56 s clip, on the same timeline as the video frames
        np.testing.assert_allclose(np.diff(ts), 0.01)
        assert ts[0] == pytest.approx(f.attrs["start_time"]) and abs(ts[-1] - 6.56) < 0.1
        assert logmel.std() > 1.0  # real sound, not silence


def test_video_without_audio_is_missing_not_failed(tmp_path):
    store = FeatureStore(tmp_path, create=True)
    res = process_video(build_extractor("audio"), store, "t", VIDEOS / "tai_chi.mp4")
    assert res["status"] == "missing" and "no audio track" in res["error"]
    assert not store.has("t", "audio")


@pytest.mark.parametrize("kw,match", [(dict(hop_ms=30.0), "hop_ms"), (dict(n_fft=256), "n_fft"),
                                      (dict(fmin=9000.0), "fmin"), (dict(sample_rate=100), "sample_rate")])
def test_config_is_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        AudioConfig(**kw)
