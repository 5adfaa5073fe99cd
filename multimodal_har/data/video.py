"""Streaming video and audio decoding with PyAV.

Nothing here holds a whole video in memory: frames and audio come out as iterators.
Errors from FFmpeg are turned into :class:`VideoError` with a message a user can act on.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")


class VideoError(RuntimeError):
    """A video cannot be read; the message says why (corrupt, empty, no stream...)."""


class NoAudioTrack(VideoError):
    """The container has no audio stream (a modality that is missing, not an error)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container header says about a video (``num_frames`` may be an estimate)."""

    fps: float
    num_frames: int
    width: int
    height: int
    duration: float
    has_audio: bool
    audio_sample_rate: Optional[int] = None
    audio_channels: Optional[int] = None
    audio_duration: Optional[float] = None  # seconds the audio stream's own header announces


def _check_file(path: Path) -> None:
    if not path.exists():
        if path.is_symlink():
            raise VideoError(f"cannot read {path}: broken symbolic link (target {os.readlink(path)} does not exist)")
        raise VideoError(f"cannot read {path}: file does not exist")
    if path.is_dir():
        raise VideoError(f"cannot read {path}: it is a directory, not a video file")
    if not os.access(path, os.R_OK):
        raise VideoError(f"cannot read {path}: permission denied")
    if path.stat().st_size == 0:
        raise VideoError(f"cannot read {path}: file is empty (0 bytes)")


def open_container(path: str | os.PathLike):
    """Open ``path`` with PyAV, raising :class:`VideoError` with a clear reason on failure."""
    import av

    path = Path(path)
    _check_file(path)
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise VideoError(
            f"cannot open {path}: FFmpeg found invalid data (the file is corrupt, truncated "
            f"before its header, or not a video)"
        ) from None
    except av.error.FFmpegError as e:
        raise VideoError(f"cannot open {path}: {e}") from None
    except OSError as e:
        raise VideoError(f"cannot open {path}: {e.strerror or e}") from None


def _video_stream(container, path):
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise VideoError(f"{path} has no video stream (streams found: {', '.join(kinds)})")
    return container.streams.video[0]


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read the header of ``path`` (no decoding). Raises :class:`VideoError`."""
    path = Path(path)
    with open_container(path) as container:
        stream = _video_stream(container, path)
        fps = _stream_fps(stream)
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise VideoError(f"{path}: video stream has no frame size (corrupt header)")
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000  # AV_TIME_BASE
        num_frames = int(stream.frames or 0)
        if num_frames <= 0 and duration > 0 and fps > 0:
            num_frames = int(round(duration * fps))
        if duration <= 0 and num_frames > 0 and fps > 0:
            duration = num_frames / fps
        audio = container.streams.audio[0] if container.streams.audio else None
        return VideoInfo(
            fps=fps,
            num_frames=num_frames,
            width=int(width),
            height=int(height),
            duration=duration,
            has_audio=audio is not None,
            audio_sample_rate=int(audio.codec_context.sample_rate) if audio is not None else None,
            audio_channels=int(audio.codec_context.channels) if audio is not None else None,
            audio_duration=_audio_duration(audio),
        )


def _audio_duration(stream) -> Optional[float]:
    """The audio stream's length from its header: its duration, or its frame count where the
    container counts frames in time-base units (AVI), whichever is longer; None if unknown.
    Not the container's duration: a video may legitimately run longer than its sound."""
    if stream is None or not stream.time_base:
        return None
    known = [float(n * stream.time_base) for n in (stream.duration, stream.frames) if n]
    return max(known) if known else None


def resized_shape(height: int, width: int, short_side: Optional[int]) -> tuple[int, int]:
    """(H, W) after scaling so that the shorter side is ``short_side``, keeping aspect."""
    if short_side is None:
        return height, width
    if height <= width:
        return short_side, max(1, int(round(width * short_side / height)))
    return max(1, int(round(height * short_side / width))), short_side


def expected_kept_frames(info: "VideoInfo", *, stride: int = 1, fps: Optional[float] = None,
                         max_frames: Optional[int] = None) -> int:
    """How many frames :func:`iter_frames` should keep, from the header (0 if unknown)."""
    n = info.num_frames
    if n <= 0:
        return 0
    if fps is not None and info.fps > 0:
        n = int(n * min(1.0, fps / info.fps))
    else:
        n = -(-n // stride)
    return min(n, max_frames) if max_frames else n


@dataclass(frozen=True)
class Frame:
    """One decoded, resized RGB frame.

    Attributes:
        index: index of the frame in the source video (0-based, in decode order).
        time: presentation time in seconds on the container's timeline.
        image: ``(H, W, 3)`` uint8 RGB.
    """

    index: int
    time: float
    image: np.ndarray


def iter_frames(
    path: str | os.PathLike,
    *,
    stride: int = 1,
    fps: Optional[float] = None,
    short_side: Optional[int] = 256,
    max_frames: Optional[int] = None,
    threads: int = 0,
    interpolation: str = "BILINEAR",
) -> Iterator[Frame]:
    """Decode ``path`` frame by frame, sampled and resized, without holding the video.

    Sampling keeps every ``stride``-th frame, or (if ``fps`` is given) the first frame at or
    after each tick of a ``fps`` clock that starts at the first frame; a target rate above the
    source rate keeps every frame (frames are never duplicated). Frames are converted to RGB
    and scaled in one swscale pass.

    Args:
        threads: FFmpeg decoding threads; 0 lets FFmpeg choose.

    Raises:
        VideoError: the file cannot be opened, has no video stream, or decoding fails.
    """
    import av

    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    path = Path(path)
    with open_container(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        src_fps = _stream_fps(stream) or 25.0
        out_hw = None
        period = 1.0 / fps if fps else None
        next_tick = None
        kept = 0
        index = -1
        try:
            for frame in container.decode(stream):
                index += 1
                t = frame.time if frame.time is not None else index / src_fps
                if period is not None:
                    if next_tick is None:
                        next_tick = t
                    if t + 1e-6 < next_tick:
                        continue
                    # advance the clock past t so one frame serves at most one tick
                    next_tick += period * max(1, math.floor((t - next_tick) / period + 1e-9) + 1)
                elif index % stride:
                    continue
                if out_hw is None:
                    out_hw = resized_shape(frame.height, frame.width, short_side)
                image = frame.to_ndarray(
                    width=out_hw[1], height=out_hw[0], format="rgb24", interpolation=interpolation
                )
                yield Frame(index=index, time=float(t), image=image)
                kept += 1
                if max_frames is not None and kept >= max_frames:
                    return
        except av.error.FFmpegError as e:
            raise VideoError(f"decoding {path} failed after {index + 1} frames: {e}") from None


@dataclass(frozen=True)
class AudioChunk:
    """Mono float32 samples at the requested rate; ``start`` is the time of sample 0 (s)."""

    samples: np.ndarray
    start: float


def iter_audio(
    path: str | os.PathLike,
    *,
    sample_rate: int = 16000,
    quality: str = "HQ",
) -> Iterator[AudioChunk]:
    """Decode the first audio track of ``path`` as mono float32 at ``sample_rate``, streaming.

    Channels are averaged (as ``librosa.to_mono``) and resampled with soxr's streaming
    resampler (the library librosa resamples with by default). Only the first chunk's
    ``start`` matters for alignment; later chunks carry the running time.

    Raises:
        VideoError: no audio track, or decoding fails.
    """
    import av
    import soxr

    path = Path(path)
    with open_container(path) as container:
        if not container.streams.audio:
            raise NoAudioTrack(f"{path} has no audio track")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp")  # planar float, native rate and layout
        rs = None
        start = None
        emitted = 0
        try:
            for frame in container.decode(stream):
                for f in resampler.resample(frame):
                    x = f.to_ndarray()  # (channels, n) float32
                    mono = x.mean(axis=0, dtype=np.float32) if x.shape[0] > 1 else x[0]
                    if rs is None:
                        start = float(f.time) if f.time is not None else 0.0
                        rs = soxr.ResampleStream(f.sample_rate, sample_rate, 1, dtype="float32", quality=quality)
                    y = rs.resample_chunk(np.ascontiguousarray(mono))
                    if y.size:
                        yield AudioChunk(samples=y, start=start + emitted / sample_rate)
                        emitted += y.size
            for f in resampler.resample(None):
                x = f.to_ndarray()
                mono = x.mean(axis=0, dtype=np.float32) if x.shape[0] > 1 else x[0]
                if rs is not None:
                    y = rs.resample_chunk(np.ascontiguousarray(mono))
                    if y.size:
                        yield AudioChunk(samples=y, start=start + emitted / sample_rate)
                        emitted += y.size
        except av.error.FFmpegError as e:
            raise VideoError(f"decoding the audio of {path} failed: {e}") from None
        if rs is not None:
            y = rs.resample_chunk(np.zeros(0, np.float32), last=True)
            if y.size:
                yield AudioChunk(samples=y, start=start + emitted / sample_rate)
