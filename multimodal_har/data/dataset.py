"""A multimodal dataset over a feature store: one time window, every modality, one sample.

Each item is a video (or one of ``windows_per_video`` windows of it). The window
``[start, stop)`` (seconds, the video's timeline) is drawn once, and every configured stream
reads the frames whose timestamps fall inside it: TSN segments of RGB frames, stacks of flow
fields, pose frames, the log-mel frames of the audio, the rows of a signal. A stream whose
entry is missing for a video is absent from the sample; :meth:`StoreDataset.collate` pads the
batch and gives each input a ``(B, T)`` mask and the batch a ``present`` matrix.

Sample (one item) and batch formats are the data/training contract of issue 6::

    sample = {"id", "label", "inputs": {input: {kwarg: array}}, "start", "stop", ["affine"]}
    batch  = {"ids", "label" (B,), "inputs": {input: {kwarg: (B, T, ...), "mask": (B, T)}},
              "present": (B, len(modalities)), "start" (B,), "stop" (B,), ["affine"]}

RGB and flow leave the dataset as uint8 crops with a per-sample scale and offset (``affine``)
and are normalised to float32 on the training device (``DataConfig.normalize_on_device``,
:mod:`multimodal_har.data.batch`); ``train.to_device`` does it, so models never see uint8.

How a stream is timed, sampled, read, augmented and normalised is its kind's
(:mod:`multimodal_har.data.kinds`: one class and one typed config per stored kind, looked up
by name; this module never branches on a kind).

Config keys of :class:`DataConfig.modalities` are *streams*; each feeds the model input
``input`` (default: the key) through the keyword argument ``kwarg`` (default ``x``, whose mask is
``mask``; another kwarg ``k`` gets ``k_mask``, e.g. TwoStream's ``rgb`` / ``rgb_mask``). So
``joint``, ``bone`` and ``motion`` can be three inputs from one ``pose3d`` entry, and ``rgb`` and
``flow`` streams can feed one ``two_stream`` input.

Determinism: a sample is a function of ``(seed, epoch, index)`` only (window, snippet offsets
and augmentation draw from ``numpy.random.default_rng([seed, epoch, index, source])``), so any
worker computes the same sample and a resumed run sees the same data. Streams read from the
same store entry (``joint``, ``bone``, ``motion`` of one ``pose3d``) share their generator's
seed, so they see the same frames, rotation, scale and jitter: fusing them at the token level
(early, slow, cross-attention) compares the same moments of the same augmented skeleton. The epoch travels with
the index from :func:`make_loader`'s sampler, so :meth:`StoreDataset.set_epoch` works with
persistent workers, which keep their own copy of the dataset.

Bad input: a store without a configured modality, val/test classes unknown to the train
split, or an rgb/flow crop larger than the stored frames, raise ``ValueError`` at construction. A video whose entry is missing (manifest status not
``ok``) lacks that stream; a video lacking every stream is dropped at construction with a
warning. An entry that fails to read, or holds NaN/inf in the frames read, is logged and treated
as missing for that sample (training goes on; the log names video and stream), unless its file
is not the one committed (truncated, bytes changed: :meth:`FeatureStore.verify_entry`): that
raises :class:`~multimodal_har.data.store.DamagedEntryError`, naming the entry and its file.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from torch.utils.data import Dataset

from multimodal_har.config import config_dataclass

from .batch import apply_affine, collate, finish_batch, mask_name, times_name
from .kinds import (FLOW_STD, IMAGENET_MEAN, IMAGENET_STD, Kind, StreamConfig, StreamConfigField, get_kind,
                    infer_kind, resolve_config, stream_config)
from .loader import EpochSampler, make_loader, seed_worker
from .store import FeatureStore, open_entry, raise_if_damaged

log = logging.getLogger(__name__)



def ModalityConfig(**kwargs: Any) -> StreamConfig:  # noqa: N802 - the name of the former class
    """The former all-kinds stream config, kept for code that builds one by hand: the typed
    config of ``kind`` (``PoseStreamConfig`` for ``kind="pose"``...), or one that takes its kind
    from the store entry when ``kind`` is not given. New code: the kinds' own config classes
    (:mod:`multimodal_har.data.kinds`)."""
    return stream_config(kwargs, where="ModalityConfig")


_OPEN_FILES = 64  # HDF5 files each worker keeps open
_CACHED_TIMES = 4096  # entries whose frame times each worker keeps


@config_dataclass(kw_only=True)
class DataConfig:
    """Which store, which streams, and how samples are cut.

    Attributes:
        store: the feature store directory.
        modalities: stream name -> its stream config, one class per kind
            (:mod:`multimodal_har.data.kinds`; mappings are converted by their ``kind``).
        window: seconds per sample (None: the whole video).
        windows_per_video: items per video (training: independent random windows; evaluation:
            evenly spaced windows).
        train_split, val_split, test_split: manifest split names. Videos without a split count
            as train. If no video has ``val_split``, a ``val_fraction`` of each train class is
            carved out deterministically by video id (the same videos for every seed).
        class_balanced: draw training samples with equal class probability.
        num_workers: DataLoader worker processes.
        time_splits: split every video in time instead of splitting the videos: ``{split:
            [lo, hi]}`` fractions of each video's time span, e.g. ``{train: [0, 0.6], val:
            [0.6, 0.8], test: [0.8, 1]}`` (ranges must not overlap; leave gaps between them if
            neighbouring frames are too alike). Every video is then in each of these splits
            (the manifest's splits and ``val_fraction`` are ignored) and a split's windows lie
            inside its range; a window longer than the range is cut to it. For datasets where
            each video is its own class or one long recording per subject (``mhar demo``).
        normalize_on_device: rgb and flow crops leave the dataset as uint8 with a per-sample
            scale and offset (``sample["affine"]``), and :func:`~multimodal_har.data.batch.finish_batch`
            normalises them on the training device (``train.to_device`` calls it): a quarter of
            the bytes to copy and no float work per pixel in the workers. False: the dataset
            returns normalised float32 (the same values), e.g. to look at ``dataset[i]``.
        token_times: every stream also gives the time of each step it read (``times`` beside
            ``x``, ``{kwarg}_times`` beside another kwarg: seconds from the window's start; rgb
            and flow: each segment's mean), which the model turns into its tokens' timestamps
            (``extras["timestamps"]``) so that fusion can place modalities of different rates
            on one time axis (``cross_attention``).
        id_splits: assign splits by video id instead of the manifest: ``{split: [glob, ...]}``
            (``fnmatch`` patterns), e.g. leave-one-subject-out on UTD-MHAD ``{train:
            ["*_s1_*", "*_s3_*", "*_s5_*"], val: ["*_s7_*"]}``; a video matching no pattern
            is in no split, one matching two is an error. ``val_fraction`` does not apply.
    """

    store: str
    modalities: dict[str, StreamConfigField]
    window: Optional[float] = None
    windows_per_video: int = 1
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    val_fraction: float = 0.1
    class_balanced: bool = False
    num_workers: int = 4
    time_splits: Optional[dict[str, list[float]]] = None
    normalize_on_device: bool = True
    token_times: bool = True
    id_splits: Optional[dict[str, list[str]]] = None

    def __post_init__(self) -> None:
        if not self.modalities:
            raise ValueError("DataConfig.modalities is empty: configure at least one stream")
        self.modalities = {k: stream_config(v, where=f"data.modalities.{k}") for k, v in self.modalities.items()}
        if self.window is not None and not self.window > 0:
            raise ValueError(f"window must be > 0 seconds or None, got {self.window}")
        if self.windows_per_video < 1:
            raise ValueError(f"windows_per_video must be >= 1, got {self.windows_per_video}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.id_splits is not None:
            if self.time_splits is not None:
                raise ValueError("id_splits and time_splits exclude each other: choose one")
            if not isinstance(self.id_splits, Mapping) or not all(
                    isinstance(v, (list, tuple)) and v and all(isinstance(p, str) for p in v)
                    for v in self.id_splits.values()):
                raise ValueError(f"id_splits must map split names to non-empty lists of id patterns, e.g. "
                                 f"{{train: ['*_s1_*'], val: ['*_s7_*']}}; got {self.id_splits!r}")
            self.id_splits = {str(k): [str(p) for p in v] for k, v in self.id_splits.items()}
        if self.time_splits is not None:
            self.time_splits = {k: _time_range(k, v) for k, v in self.time_splits.items()}
            ranges = sorted(self.time_splits.items(), key=lambda kv: kv[1])
            for (a, (_, hi)), (b, (lo, _)) in zip(ranges, ranges[1:]):
                if lo < hi:
                    raise ValueError(f"time_splits {a!r} and {b!r} overlap: {self.time_splits[a]} and "
                                     f"{self.time_splits[b]} (the test windows must be unseen time ranges)")


def _time_range(split: str, value: Any) -> list[float]:
    """``[lo, hi]`` with ``0 <= lo < hi <= 1`` (``time_splits`` values), or a ValueError."""
    try:
        lo, hi = (float(x) for x in value)
    except (TypeError, ValueError):
        raise ValueError(f"time_splits.{split} must be [lo, hi] (fractions of a video's span), got {value!r}") from None
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"time_splits.{split} must satisfy 0 <= lo < hi <= 1, got {value!r}")
    return [lo, hi]


@dataclass
class _Stream:
    name: str
    cfg: StreamConfig
    source: str
    input: str
    kind: str  # "" until known (a config without kind: the first entry tells)
    videos: set = field(default_factory=set)  # ids with an ok entry
    handler: Optional[Kind] = None  # the kind's reader, for this stream

    def resolve(self, kind: str) -> None:
        """Become a stream of ``kind``: its typed config and its reader."""
        self.cfg = resolve_config(self.cfg, kind, where=f"data.modalities.{self.name}")
        self.kind = kind
        self.handler = get_kind(kind)(config=self.cfg, stream=self.name, source=self.source)


def _id_split(video_id: str, id_splits: Mapping[str, Sequence[str]]) -> Optional[str]:
    """The split whose patterns match ``video_id`` (None: no split); two matching is an error."""
    from fnmatch import fnmatchcase

    hits = [k for k, pats in id_splits.items() if any(fnmatchcase(video_id, p) for p in pats)]
    if len(hits) > 1:
        raise ValueError(f"video {video_id!r} matches the id_splits of {hits}: the splits must not overlap")
    return hits[0] if hits else None


def _hash01(text: str) -> float:
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) / float(1 << 48)


def split_videos(videos: Sequence[Mapping[str, Any]], config: DataConfig, split: str) -> list[dict]:
    """The manifest rows of ``split`` (see :class:`DataConfig` for the train/val rules)."""
    if config.time_splits is not None:  # every video, cut in time (StoreDataset._window)
        return [dict(v) for v in videos] if split in config.time_splits else []
    if config.id_splits is not None:
        return [dict(v) for v in videos if _id_split(v["id"], config.id_splits) == split]
    has = {v["split"] for v in videos}
    train = [dict(v) for v in videos if v["split"] in (config.train_split, None)]
    carve = config.val_split not in has and config.val_fraction > 0
    val_ids: set = set()
    if carve:  # per class, the videos of smallest hash(id): stable under added videos and seeds
        by_class = collections.defaultdict(list)
        for v in train:
            by_class[v["label"]].append(v["id"])
        for ids in by_class.values():
            k = round(len(ids) * config.val_fraction)
            k = max(k, 1) if len(ids) > 1 else 0
            val_ids.update(sorted(ids, key=_hash01)[:k])
    if split == config.train_split:
        return [v for v in train if v["id"] not in val_ids]
    if split == config.val_split and carve:
        return [v for v in train if v["id"] in val_ids]
    return [dict(v) for v in videos if v["split"] == split]


class StoreDataset(Dataset):
    """Samples of a :class:`FeatureStore` split; see the module docstring for the formats.

    Args:
        config: the data config.
        split: a split name (``config.train_split`` / ``val_split`` / ``test_split`` or another).
        train: random windows, offsets and augmentation (else deterministic centres).
        classes: the class list (default: sorted labels of the train split).
        seed: with the epoch and index, fixes every random choice.
    """

    def __init__(self, config: DataConfig, split: str, *, train: bool, classes: Optional[list[str]] = None,
                 seed: int = 0) -> None:
        self.config, self.split, self.train, self.seed = config, split, train, seed
        self.epoch = 0
        store = FeatureStore(config.store)
        self.root = store.root
        manifest = store.manifest
        have = sorted(set(store.modalities()) | {e["modality"] for e in manifest.entries()})
        self.streams: list[_Stream] = []
        for name, cfg in config.modalities.items():
            source = cfg.source or name
            if source not in have:
                raise ValueError(f"the store {store.root} has no modality {source!r} (stream {name!r}); "
                                 f"it has: {', '.join(have) or 'nothing'}")
            ok = {e["video_id"] for e in manifest.entries(modality=source, status="ok")}
            stream = _Stream(name, cfg, source, cfg.input or name, "", ok)
            if cfg.kind is not None:
                stream.resolve(cfg.kind)
            self.streams.append(stream)
        self.modalities = list(dict.fromkeys(s.input for s in self.streams))
        # one generator seed per store entry (0 is the window's): streams of one source share it
        self._source_seed = {src: i + 1 for i, src in enumerate(dict.fromkeys(s.source for s in self.streams))}
        kwargs = collections.Counter((s.input, s.cfg.kwarg) for s in self.streams)
        clash = [k for k, n in kwargs.items() if n > 1]
        if clash:
            raise ValueError(f"several streams feed the same (input, kwarg): {clash}; give them distinct kwargs")

        all_videos = manifest.videos()
        train_rows = split_videos(all_videos, config, config.train_split)
        if classes is None:
            classes = sorted({v["label"] for v in train_rows if v["label"] is not None})
        self.classes = list(classes)
        rows = train_rows if split == config.train_split else split_videos(all_videos, config, split)
        if not rows and config.time_splits is not None:
            raise ValueError(f"split {split!r} is not one of time_splits {sorted(config.time_splits)} "
                             f"(with time_splits every split is a time range of every video)")
        if not rows:
            splits = sorted({str(v["split"]) for v in all_videos})
            raise ValueError(f"split {split!r} of store {store.root} has no videos (manifest splits: {splits}; "
                             f"videos without a split count as {config.train_split!r})")
        unknown = sorted({v["label"] for v in rows if v["label"] is not None} - set(self.classes))
        if unknown:
            raise ValueError(f"split {split!r} has classes the train split does not: {unknown} "
                             f"(train classes: {self.classes})")
        index = {c: i for i, c in enumerate(self.classes)}
        self.videos, skipped = [], []
        for v in rows:
            if any(v["id"] in s.videos for s in self.streams):
                self.videos.append((v["id"], -1 if v["label"] is None else index[v["label"]]))
            else:
                skipped.append(v["id"])
        if skipped:
            log.warning("%s: %d video(s) of split %r have none of the streams %s and are skipped: %s%s",
                        store.root, len(skipped), split, [s.source for s in self.streams],
                        skipped[:5], " ..." if len(skipped) > 5 else "")
        if not self.videos:
            raise ValueError(f"no video of split {split!r} has any of the configured modalities")
        self.labels = [lab for _, lab in self.videos for _ in range(config.windows_per_video)]
        self._files: collections.OrderedDict = collections.OrderedDict()
        self._time_cache: collections.OrderedDict = collections.OrderedDict()
        self._pid = os.getpid()
        self._shapes: dict[tuple[str, str], tuple[int, ...]] = {}
        self._probe()

    # ------------------------------------------------------------------ set-up
    def _probe(self) -> None:
        """Infer each stream's kind and check it can be timed, from one entry; learn its
        per-frame shape so that a batch without it still gets a zero input of the right shape."""
        for s in self.streams:
            vids = [v for v, _ in self.videos if v in s.videos]
            if not vids:
                continue
            f = self._open(vids[0], s.source)
            if s.handler is None:
                s.resolve(infer_kind(f))
            s.handler.check(f, vids[0])
            for vid in vids[:3]:  # the first readable, finite entry
                out = self._load(vid, s, -np.inf, np.inf, None)
                if out is not None:
                    self._shapes[(s.input, s.cfg.kwarg)] = tuple(out[0].shape[1:])
                    break
        self._close_all()

    # ------------------------------------------------------------------ files
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_files"] = collections.OrderedDict()  # an open HDF5 handle never crosses processes
        return state

    def _open(self, vid: str, source: str) -> Any:
        if os.getpid() != self._pid:  # a forked worker: the parent's handles are not ours to use
            self._files, self._pid = collections.OrderedDict(), os.getpid()
        key = (vid, source)
        f = self._files.get(key)
        if f is None:
            f = open_entry(self.root, vid, source)  # a damaged file raises DamagedEntryError
            self._files[key] = f
            while len(self._files) > _OPEN_FILES:
                self._files.popitem(last=False)[1].close()
        else:
            self._files.move_to_end(key)
        return f

    def _close_all(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def _times(self, f: Any, s: _Stream) -> np.ndarray:
        """The entry's frame times (s), read once per process (each sample needs them twice)."""
        key = (f.filename, s.name)
        t = self._time_cache.get(key)
        if t is None:
            t = s.handler.times(f)
            self._time_cache[key] = t
            while len(self._time_cache) > _CACHED_TIMES:
                self._time_cache.popitem(last=False)
        return t

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return len(self.videos) * self.config.windows_per_video

    def set_epoch(self, epoch: int) -> None:
        """Window sampling and augmentation of the next epoch (exact resume: set the epoch)."""
        self.epoch = int(epoch)

    def _rng(self, epoch: int, index: int, stream: int) -> Optional[np.random.Generator]:
        return np.random.default_rng([self.seed, epoch, index, stream]) if self.train else None

    def _window(self, index: int, epoch: int, spans: list[tuple[float, float]]) -> tuple[float, float]:
        lo, hi = max(a for a, _ in spans), min(b for _, b in spans)
        if hi < lo:  # the streams do not overlap in time: use their union
            lo, hi = min(a for a, _ in spans), max(b for _, b in spans)
        cut = self.config.time_splits is not None
        if cut:  # this split's part of the span
            a, b = self.config.time_splits[self.split]
            lo, hi = lo + a * (hi - lo), lo + b * (hi - lo)
        if self.config.window is None:
            return lo, hi
        slack = max(0.0, hi - lo - self.config.window)
        rng = self._rng(epoch, index, 0)
        w = index % self.config.windows_per_video
        u = rng.random() if rng is not None else (w + 0.5) / self.config.windows_per_video
        start = lo + u * slack
        return start, min(start + self.config.window, hi) if cut else start + self.config.window

    def _inclusive_stop(self) -> bool:
        """Whether a sample's stop time is inclusive: whole videos, or time ranges up to the end."""
        ts = self.config.time_splits
        return self.config.window is None and (ts is None or ts[self.split][1] == 1.0)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = item if isinstance(item, tuple) else (self.epoch, item)
        seed_worker(self.seed, epoch)  # in a worker: its global RNGs follow (seed, epoch) too
        vid, label = self.videos[index // self.config.windows_per_video]
        spans, here = [], []
        for s in self.streams:
            if vid not in s.videos:
                continue
            try:
                t = self._times(self._open(vid, s.source), s)
            except (OSError, KeyError) as e:
                raise_if_damaged(self.root, vid, s.source, e)
                log.warning("%s: cannot read %s of %r (%s): treated as missing", self.root, s.source, vid, e)
                continue
            if len(t):
                spans.append((float(t[0]), float(t[-1])))
                here.append(s)
        start, stop = self._window(index, epoch, spans) if spans else (0.0, 0.0)
        inputs: dict[str, dict[str, np.ndarray]] = {}
        affine: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        shared: dict[tuple, Any] = {}
        for s in self.streams:
            if s not in here:
                continue
            # stop is inclusive for a whole video (its last frame), half-open for windows and
            # time ranges (the frame at a boundary belongs to the next range)
            end = np.nextafter(stop, np.inf) if self._inclusive_stop() else stop
            out = self._load(vid, s, start, end, self._rng(epoch, index, self._source_seed[s.source]), shared)
            if out is None:
                continue
            x, aff, times = out
            if aff is not None and not self.config.normalize_on_device:
                x, aff = apply_affine(x, *aff), None
            inputs.setdefault(s.input, {})[s.cfg.kwarg] = x
            if self.config.token_times:  # seconds from the window's start, one per step of x
                origin = start if np.isfinite(start) else 0.0
                inputs[s.input][times_name(s.cfg.kwarg)] = (times - origin).astype(np.float32)
            if aff is not None:
                affine.setdefault(s.input, {})[s.cfg.kwarg] = aff
        sample = {"id": vid, "label": label, "inputs": inputs, "start": start, "stop": stop}
        if affine:
            sample["affine"] = affine
        return sample

    def sample_times(self, index: int, *, epoch: Optional[int] = None) -> dict[str, np.ndarray]:
        """The timestamps each stream reads for item ``index`` (rgb/flow ``(K, s)``, others ``(T,)``).

        For checking and visualising alignment; the window is ``self[index]``'s start/stop.
        """
        epoch = self.epoch if epoch is None else epoch
        sample = self[(epoch, index)]
        vid = sample["id"]
        end = np.nextafter(sample["stop"], np.inf) if self._inclusive_stop() else sample["stop"]
        out = {}
        for s in self.streams:
            if s.input in sample["inputs"] and s.cfg.kwarg in sample["inputs"][s.input]:
                f = self._open(vid, s.source)
                t = self._times(f, s)
                pos = self._positions(t, s, sample["start"], end,
                                      self._rng(epoch, index, self._source_seed[s.source]))
                out[s.name] = t[pos]
        return out

    # ------------------------------------------------------------------ reading one stream
    def _positions(self, t: np.ndarray, s: _Stream, start: float, stop: float,
                   rng: Optional[np.random.Generator]) -> np.ndarray:
        """Frame indices of the entry that the stream reads in ``[start, stop)``; the frame
        nearest the window's centre when none falls inside. The RNG is drawn from first here,
        in the same order as in :meth:`_load`."""
        lo, hi = np.searchsorted(t, start, "left"), np.searchsorted(t, stop, "left")
        if hi <= lo:
            mid = (start + stop) / 2 if np.isfinite(start) else t[len(t) // 2]
            lo = int(np.clip(np.searchsorted(t, mid), 1, len(t) - 1)) if len(t) > 1 else 0
            if len(t) > 1 and abs(t[lo - 1] - mid) <= abs(t[lo] - mid):
                lo -= 1
            hi = lo + 1
        return lo + s.handler.positions(hi - lo, rng)  # (T,) or (K, length) for segments

    def _load(self, vid: str, s: _Stream, start: float, stop: float, rng: Optional[np.random.Generator],
              shared: Optional[dict] = None) -> Optional[tuple[np.ndarray, Optional[tuple], np.ndarray]]:
        """One stream's model input for the window, for uint8 frames their per-channel
        ``(scale, offset)`` to normalised float32, and the times (s) of its steps (rgb/flow: each
        segment's mean); None (logged) if unreadable or not finite.

        ``shared`` (one dict per sample) keeps what a stream read (decoded, augmented) for the
        streams of the same entry with the same :meth:`Kind.share_key` (``joint``, ``bone``,
        ``motion`` of one pose entry): they draw the same generator, so reading once gives what
        each would have read.
        """
        try:
            f = self._open(vid, s.source)
            share = s.handler.share_key() if shared is not None else None
            key = (s.source, *share) if share is not None else None
            if key is not None and key in shared:
                data, times = shared[key]
            else:
                t = self._times(f, s)
                pos = self._positions(t, s, start, stop, rng)
                data = s.handler.read(f, pos, rng if s.cfg.augment else None)
                times = t[pos] if pos.ndim == 1 else t[pos].mean(axis=1)  # (T,) or (K,) segment centres
                if key is not None:
                    shared[key] = data, times
        except (OSError, KeyError) as e:
            raise_if_damaged(self.root, vid, s.source, e)
            log.warning("%s: cannot read %s of %r (%s): treated as missing", self.root, s.source, vid, e)
            return None
        x, aff = s.handler.output(data, video=vid)
        if x.dtype != np.uint8 and not np.all(np.isfinite(x)):
            log.warning("%s: NaN/inf in %s of %r (stream %r, window %.3f-%.3f s): treated as missing",
                        self.root, s.source, vid, s.name, start, stop)
            return None
        return x, aff, times

    # ------------------------------------------------------------------ batching
    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        """:func:`collate` for this dataset's inputs; an input absent from the whole batch is
        zeros of its known shape with an all-False mask."""
        return collate(samples, self.modalities, shapes=self._shapes)


__all__ = ["DataConfig", "FLOW_STD", "IMAGENET_MEAN", "IMAGENET_STD", "ModalityConfig", "StoreDataset", "collate", "finish_batch", "make_loader",
           "EpochSampler", "split_videos", "mask_name"]
