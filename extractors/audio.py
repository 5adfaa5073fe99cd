"""Audio: log-mel spectrograms with librosa, streamed, timestamped for alignment with video.

The audio track is decoded with PyAV, averaged to mono and resampled (soxr, as librosa does)
to 16 kHz by default; the spectrogram is computed block by block with ``librosa.stft``
(``center=False`` on a signal padded as ``center=True`` pads), so a long video never sits in
memory and the result equals ``librosa.feature.melspectrogram(center=True)`` on the whole
signal (tested). Defaults follow the common setting: 25 ms window, 10 ms hop, 64 mel bands,
``log(mel + 1e-6)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np

from multimodal_har.data.store import append_rows
from multimodal_har.data.video import VideoError, VideoInfo, iter_audio

from .base import Extractor, ModalityMissing


@dataclass
class AudioConfig:
    """Log-mel parameters.

    Attributes:
        sample_rate: resample to this rate (Hz), mono.
        win_ms, hop_ms: analysis window and hop in milliseconds.
        n_fft: FFT size (None: the next power of two >= the window).
        n_mels: number of mel bands.
        fmin, fmax: mel band limits in Hz (fmax None: sample_rate / 2).
        log_eps: added before the log.
        min_decoded_fraction: fail a video whose audio decodes to less than this fraction of
            the length its header announces (a truncated file decodes a prefix silently).
    """

    sample_rate: int = 16000
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: Optional[int] = None
    n_mels: int = 64
    fmin: float = 0.0
    fmax: Optional[float] = None
    log_eps: float = 1e-6
    min_decoded_fraction: float = 0.9

    def __post_init__(self) -> None:
        if self.sample_rate < 1000:
            raise ValueError(f"sample_rate must be >= 1000 Hz, got {self.sample_rate}")
        if not 0 < self.hop_ms <= self.win_ms:
            raise ValueError(f"need 0 < hop_ms <= win_ms, got hop_ms={self.hop_ms}, win_ms={self.win_ms}")
        if self.n_fft is not None and self.n_fft < self.win_length:
            raise ValueError(f"n_fft ({self.n_fft}) must be >= the window ({self.win_length} samples)")
        if self.n_mels < 1:
            raise ValueError(f"n_mels must be >= 1, got {self.n_mels}")
        fmax = self.fmax if self.fmax is not None else self.sample_rate / 2
        if not 0 <= self.fmin < fmax <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={fmax}")
        if self.log_eps <= 0:
            raise ValueError(f"log_eps must be > 0, got {self.log_eps}")
        if not 0.0 <= self.min_decoded_fraction <= 1.0:
            raise ValueError(f"min_decoded_fraction must be in [0, 1], got {self.min_decoded_fraction}")

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def fft_size(self) -> int:
        return self.n_fft or 1 << (self.win_length - 1).bit_length()


class StreamingLogMel:
    """Log-mel frames from a signal given in chunks; equal to librosa's ``center=True`` result.

    Frame ``k`` is centred on sample ``k * hop`` (zero padding of ``n_fft // 2`` at both ends,
    librosa's ``pad_mode="constant"``).
    """

    def __init__(self, cfg: AudioConfig, block_frames: int = 1024) -> None:
        import librosa

        self.cfg = cfg
        self.n_fft, self.hop, self.win = cfg.fft_size, cfg.hop_length, cfg.win_length
        self.mel_basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=self.n_fft, n_mels=cfg.n_mels,
                                             fmin=cfg.fmin, fmax=cfg.fmax)  # (n_mels, 1 + n_fft//2)
        self.block_frames = block_frames
        self.buf = np.zeros(self.n_fft // 2, np.float32)  # the centre padding
        self.pending: list[np.ndarray] = []  # chunks not yet joined to buf (joined per block)
        self.pending_len = 0
        self.num_samples = 0

    def _frames(self, final: bool) -> Iterator[np.ndarray]:
        import librosa

        if self.pending:
            self.buf = np.concatenate([self.buf, *self.pending])
            self.pending, self.pending_len = [], 0
        while True:
            n_avail = 1 + (len(self.buf) - self.n_fft) // self.hop if len(self.buf) >= self.n_fft else 0
            if n_avail == 0 or (not final and n_avail < self.block_frames):
                return
            n = min(n_avail, self.block_frames)
            seg = self.buf[: (n - 1) * self.hop + self.n_fft]
            spec = librosa.stft(seg, n_fft=self.n_fft, hop_length=self.hop, win_length=self.win,
                                window="hann", center=False)  # (1 + n_fft//2, n)
            mel = self.mel_basis @ (np.abs(spec) ** 2)  # (n_mels, n)
            yield np.log(mel + self.cfg.log_eps).T.astype(np.float32)  # (n, n_mels)
            self.buf = self.buf[n * self.hop:]

    def push(self, samples: np.ndarray) -> Iterator[np.ndarray]:
        """Add mono samples ``(n,)``; yields ``(n, n_mels)`` blocks of finished frames."""
        if samples.ndim != 1:
            raise ValueError(f"expected mono samples of shape (n,), got shape {samples.shape}")
        self.num_samples += len(samples)
        self.pending.append(samples.astype(np.float32, copy=False))
        self.pending_len += len(samples)
        if len(self.buf) + self.pending_len >= (self.block_frames - 1) * self.hop + self.n_fft:
            yield from self._frames(final=False)

    def finish(self) -> Iterator[np.ndarray]:
        """Pad the end and yield the remaining frames (``1 + num_samples // hop`` in total)."""
        self.pending.append(np.zeros(self.n_fft // 2, np.float32))
        yield from self._frames(final=True)


def logmel_of_chunks(cfg: AudioConfig, chunks: Iterable[np.ndarray]) -> np.ndarray:
    """Log-mel ``(T, n_mels)`` of a signal given as chunks (convenience for tests/notebooks)."""
    s = StreamingLogMel(cfg)
    blocks = [b for c in chunks for b in s.push(c)]
    blocks += list(s.finish())
    return np.concatenate(blocks) if blocks else np.zeros((0, cfg.n_mels), np.float32)


class AudioExtractor(Extractor):
    """Writes ``logmel`` float32 ``(T, n_mels)`` and ``timestamps`` float64 ``(T,)``: the time
    (s, container timeline, like the rgb ``timestamps``) on which each frame is centred."""

    name = "audio"
    modality = "audio"
    version = 1
    config_class = AudioConfig
    outputs = ("logmel", "timestamps")

    def extract(self, path: Path, out: Any, *, info: VideoInfo, threads: int = 0) -> dict[str, Any]:
        cfg = self.config
        if not info.has_audio:
            raise ModalityMissing(f"{path} has no audio track")
        stream = StreamingLogMel(cfg)
        ds = out.create_dataset("logmel", shape=(0, cfg.n_mels), maxshape=(None, cfg.n_mels),
                                chunks=(1000, cfg.n_mels), dtype=np.float32, compression="gzip",
                                compression_opts=4)
        start = None
        for chunk in iter_audio(path, sample_rate=cfg.sample_rate):
            if start is None:
                start = chunk.start
            for block in stream.push(chunk.samples):
                append_rows(ds, block)
        if stream.num_samples == 0:
            raise ModalityMissing(f"{path}: the audio track holds no samples")
        decoded, announced = stream.num_samples / cfg.sample_rate, info.audio_duration
        if announced and decoded < cfg.min_decoded_fraction * announced - 0.1:
            raise VideoError(f"{path}: decoded {decoded:.2f} s of the {announced:.2f} s of audio its header "
                             f"announces (the file is truncated or corrupt)")
        for block in stream.finish():
            append_rows(ds, block)
        t = ds.shape[0]
        out.create_dataset("timestamps", data=start + np.arange(t) * (stream.hop / cfg.sample_rate))
        out.attrs.update({
            "sample_rate": cfg.sample_rate, "hop_length": stream.hop, "win_length": stream.win,
            "n_fft": stream.n_fft, "n_mels": cfg.n_mels, "fmin": cfg.fmin,
            "fmax": cfg.fmax if cfg.fmax is not None else cfg.sample_rate / 2,
            "start_time": start, "num_samples": stream.num_samples,
            "duration": stream.num_samples / cfg.sample_rate,
        })
        return {"frames": t, "seconds_of_audio": stream.num_samples / cfg.sample_rate}
