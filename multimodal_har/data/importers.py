"""Import a labelled dataset's own recordings (skeletons, inertial signals, depth) into a feature store.

One entry point for every supported dataset, ``import_dataset(name, src, store, **options)``
(``mhar import NAME SRC STORE``), with a small registry (:data:`IMPORTERS`; an unknown name
lists the choices):

* ``utd_mhad`` (:mod:`multimodal_har.skeleton.utd_mhad`): ``pose3d`` (``kinect_v1_20``),
  ``inertial`` (``data`` ``(N, 6)``) and the depth frames written as a real video
  (``DEPTH_VIDEOS/utd_mhad/a1_s1_t1.mp4``) plus ``DEPTH_VIDEOS/annotations.csv``, so that
  ``mhar extract rgb|flow ... --as depth|depth_flow`` turns them into store entries with the
  same video ids and the skeleton's timeline;
* ``msr_action3d``, ``utkinect`` (:mod:`multimodal_har.skeleton.datasets`), ``ntu``
  (:mod:`multimodal_har.skeleton.ntu`) and ``pyskl`` (:mod:`multimodal_har.skeleton.pyskl`): ``pose3d``.

Video ids are ``<dataset>/<sample id>`` (``utd_mhad/a1_s1_t1``), labels the action names,
splits from the dataset's named protocol (:mod:`multimodal_har.skeleton.splits`).

Importing is resumable: an entry the manifest records as ``ok`` (and whose file exists, with the
size it was committed with) is skipped, a depth video already in place is kept; store entries
are written atomically by :meth:`FeatureStore.add`, videos under a temporary name renamed when
complete. A bad source file is recorded as ``failed`` (manifest and summary, with the file named)
and the import goes on; so is an entry ``mhar manifest --verify`` found damaged, redone by the
next import.
"""

from __future__ import annotations

import csv
import os
import time
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from ..registry import Registry
from ..skeleton.datasets import read_msr_action3d, read_utkinect, store_entry
from .store import FeatureStore

IMPORTERS = Registry("dataset importer")

# depth (mm) -> 8-bit grey: [DEPTH_NEAR_MM, DEPTH_FAR_MM] maps linearly to 1..255, 0 (no reading) stays 0
DEPTH_NEAR_MM = 500
DEPTH_FAR_MM = 4500
ANNOTATIONS_NAME = "annotations.csv"
# UTD-MHAD file kind -> what it becomes (depth: a video, then `depth` entries via `mhar extract`)
_MODALITY = {"skeleton": "pose3d", "inertial": "inertial", "depth": "depth"}


class _Summary:
    """Counts per modality: ``ok`` (written now), ``skipped`` (already done), ``failed``."""

    def __init__(self, dataset: str, store: FeatureStore) -> None:
        self.data: dict[str, Any] = {"dataset": dataset, "store": str(store.root), "samples": 0,
                                     "modalities": {}, "failed": [], "seconds": 0.0}

    def count(self, modality: str, status: str, video_id: str = "", error: str = "") -> None:
        c = self.data["modalities"].setdefault(modality, {"ok": 0, "skipped": 0, "failed": 0})
        c[status] += 1
        if status == "failed":
            self.data["failed"].append((video_id, modality, error))


def _done(store: FeatureStore, video_id: str, modality: str) -> bool:
    e = store.manifest.entry(video_id, modality)
    return (bool(e) and e["status"] == "ok" and store.has(video_id, modality)
            and not store.size_changed(video_id, modality, e))


def _fail(store: FeatureStore, summary: _Summary, video_id: str, modality: str, error: str, *,
          label: Optional[str], split: Optional[str]) -> None:
    from .ingest import VideoRecord

    m = store.manifest
    if m.video(video_id) is None:
        m.upsert_videos([VideoRecord(id=video_id, path="", label=label, split=split)])
    m.record(video_id, modality, status="failed", error=error, extractor="import")
    m.commit()
    summary.count(modality, "failed", video_id, error)


def import_dataset(name: str, src: str | os.PathLike, store: str | os.PathLike | FeatureStore,
                   **options: Any) -> dict[str, Any]:
    """Import dataset ``name`` from ``src`` into ``store`` (created if needed).

    Returns:
        a summary: ``dataset``, ``store``, ``samples`` (sequences seen), ``modalities``
        (modality -> ``{"ok", "skipped", "failed"}`` counts), ``failed`` (``(video_id,
        modality, message)``), ``seconds``; ``utd_mhad`` adds ``depth_videos``,
        ``annotations`` and ``next_commands`` (the ``mhar extract`` lines for the depth videos).
    """
    import inspect

    fn = IMPORTERS.get(name)
    params = {k: p for k, p in inspect.signature(fn).parameters.items() if p.kind == p.KEYWORD_ONLY}
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ValueError(f"importer {name!r} takes no option {', '.join(unknown)}; its options: "
                         f"{', '.join(params) or 'none'}")
    missing = [k for k, p in params.items() if p.default is p.empty and k not in options]
    if missing:
        raise ValueError(f"importer {name!r} needs the option(s) {', '.join(missing)}")
    if not Path(src).exists():
        raise FileNotFoundError(f"{name} source {src} does not exist")
    if not isinstance(store, FeatureStore):
        store = FeatureStore(store, create=True)
    t0 = time.perf_counter()
    summary = fn(Path(src), store, **options)
    summary["seconds"] = time.perf_counter() - t0
    store.manifest.export_csv(store.root / "manifest.csv")
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """The summary of :func:`import_dataset` as the lines ``mhar import`` prints."""
    lines = [f"{summary['dataset']}: {summary['samples']} samples into {summary['store']} "
             f"({summary['seconds']:.1f} s)"]
    for modality, c in summary["modalities"].items():
        lines.append(f"  {modality:12s} {c['ok']} ok, {c['skipped']} already done, {c['failed']} failed")
    for vid, modality, msg in summary["failed"]:
        lines.append(f"  FAILED {modality} {vid}: {msg}")
    if summary.get("depth_videos"):
        lines.append(f"depth videos: {summary['depth_videos']} (annotations: {summary['annotations']})")
    if summary.get("next_commands"):
        lines.append("next, depth frames and their optical flow into the same store:")
        lines += [f"  {c}" for c in summary["next_commands"]]
    return "\n".join(lines)


# ---------------------------------------------------------------------- skeleton datasets
def _import_sequences(store: FeatureStore, sequences: Iterable, *, dataset: str,
                      summary: _Summary, extra_attrs: Optional[dict[str, Any]] = None) -> None:
    """Write :class:`SkeletonSequence` objects as ``pose3d`` entries (:func:`store_entry`, as
    ``add_to_store`` does), skipping those already done."""
    for s in sequences:
        vid, arrays, attrs = store_entry(s, dataset)
        summary.data["samples"] += 1
        if _done(store, vid, "pose3d"):
            summary.count("pose3d", "skipped")
            continue
        store.add(vid, "pose3d", arrays, attrs={**attrs, **(extra_attrs or {})}, label=s.label, split=s.split)
        summary.count("pose3d", "ok")


def import_msr_action3d(src: Path, store: FeatureStore, *, split: Optional[str] = "cross_subject",
                        protocol_files_only: bool = True) -> dict[str, Any]:
    """MSR Action3D skeletons as ``pose3d`` (:func:`~multimodal_har.skeleton.datasets.read_msr_action3d`)."""
    summary = _Summary("msr_action3d", store)
    _import_sequences(store, read_msr_action3d(src, split=split, protocol_files_only=protocol_files_only),
                      dataset="msr_action3d", summary=summary)
    return summary.data


def import_utkinect(src: Path, store: FeatureStore, *, split: Optional[str] = "cross_subject") -> dict[str, Any]:
    """UTKinect-Action3D action segments as ``pose3d`` (:func:`~multimodal_har.skeleton.datasets.read_utkinect`)."""
    summary = _Summary("utkinect", store)
    _import_sequences(store, read_utkinect(src, split=split), dataset="utkinect", summary=summary)
    return summary.data


def import_ntu(src: Path, store: FeatureStore, *, benchmark: str = "ntu60", split: Optional[str] = "cross_subject",
               max_people: int = 2, dataset: Optional[str] = None) -> dict[str, Any]:
    """NTU RGB+D ``.skeleton`` files of ``src`` as ``pose3d`` (``ntu_25``), ids ``<benchmark>/<name>``.

    A file whose entry is already done is skipped before it is parsed.
    """
    from ..skeleton.ntu import BENCHMARKS, parse_name, read_ntu

    dataset = dataset or benchmark
    summary = _Summary(dataset, store)
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown NTU benchmark {benchmark!r}; valid choices: {', '.join(BENCHMARKS)}")
    last_setup, last_action = BENCHMARKS[benchmark]
    todo = []
    for f in sorted(Path(src).glob("*.skeleton")):
        a = parse_name(f)
        if a["setup"] > last_setup or a["action"] > last_action:
            continue
        if _done(store, f"{dataset}/{f.name.split('.')[0]}", "pose3d"):
            summary.data["samples"] += 1
            summary.count("pose3d", "skipped")
        else:
            todo.append(f)
    if todo:
        # read_ntu reads a folder: give it a folder of links to the files still to do
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            for f in todo:
                os.symlink(f.resolve(), Path(tmp) / f.name)
            _import_sequences(store, read_ntu(tmp, benchmark=benchmark, split=split, max_people=max_people),
                              dataset=dataset, summary=summary)
    elif not summary.data["samples"]:
        raise FileNotFoundError(f"no NTU .skeleton files in {src}")
    return summary.data


def import_pyskl(src: Path, store: FeatureStore, *, layout: str, split: Optional[str | Sequence[str]] = None,
                 dataset: Optional[str] = None, labels: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """A PYSKL / MMAction2 pickle's poses as ``pose3d`` in ``layout``, ids ``<dataset>/<frame_dir>``.

    ``split``: ``"xsub_train,xsub_val"`` (train list, test list of the file) or ``None`` (see
    :func:`~multimodal_har.skeleton.pyskl.read_pyskl`); ``dataset`` defaults to the file's stem.
    """
    from ..skeleton.pyskl import read_pyskl

    if isinstance(split, str):
        split = tuple(s.strip() for s in split.split(","))
    if split is not None and len(split) != 2:
        raise ValueError(f"pyskl split must name a train and a test list ('xsub_train,xsub_val'), got {split!r}")
    dataset = dataset or Path(src).stem
    summary = _Summary(dataset, store)
    _import_sequences(store, read_pyskl(src, layout=layout, split=split, labels=labels),
                      dataset=dataset, summary=summary)
    return summary.data


# ---------------------------------------------------------------------- UTD-MHAD
def depth_to_gray(depth: np.ndarray, near: int = DEPTH_NEAR_MM, far: int = DEPTH_FAR_MM) -> np.ndarray:
    """``(..., H, W)`` uint16 mm -> uint8: ``[near, far]`` linearly to 1..255 (clipped), 0 stays 0."""
    d = depth.astype(np.float32)
    g = 1.0 + (np.clip(d, near, far) - near) * (254.0 / (far - near))
    return np.where(depth > 0, np.rint(g), 0).astype(np.uint8)


def write_depth_video(path: str | os.PathLike, depth: np.ndarray, duration: float, *, crf: int = 0,
                      near: int = DEPTH_NEAR_MM, far: int = DEPTH_FAR_MM) -> Path:
    """Write ``(T, H, W)`` uint16 depth (mm) as an H.264 mp4 of ``T`` frames spanning ``duration`` s.

    The frame rate is the exact rational ``T / duration``, so a decoder puts frame ``i`` at
    ``i * duration / T`` (the skeleton's timeline). Pixels: :func:`depth_to_gray`, encoded as
    full-range grey (``yuvj420p`` with neutral chroma), ``crf=0`` lossless: decoding to RGB gives
    the grey value in all three channels, exactly. Written to a temporary name beside ``path``
    and renamed when complete.
    """
    import av

    path = Path(path)
    T, H, W = depth.shape
    if T < 1 or duration <= 0:
        raise ValueError(f"need at least one frame and a positive duration, got T={T}, duration={duration}")
    rate = Fraction(T) / Fraction(duration).limit_denominator(1_000_000)
    gray = depth_to_gray(depth, near, far)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp{path.suffix}")
    try:
        with av.open(str(tmp), "w", format="mp4") as out:
            st = out.add_stream("libx264", rate=rate)
            st.width, st.height = W + W % 2, H + H % 2
            st.pix_fmt = "yuvj420p"
            st.options = {"crf": str(crf), "preset": "medium" if crf else "ultrafast"}
            st.codec_context.time_base = 1 / rate
            chroma = np.full(((H + 1) // 2, (W + 1) // 2), 128, np.uint8)
            for i in range(T):
                y = gray[i]
                if H % 2 or W % 2:  # 4:2:0 needs even sizes
                    y = np.pad(y, ((0, H % 2), (0, W % 2)), mode="edge")
                frame = _yuv_frame(y, chroma)
                frame.pts = i
                frame.time_base = 1 / rate
                for pkt in st.encode(frame):
                    out.mux(pkt)
            for pkt in st.encode(None):
                out.mux(pkt)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _yuv_frame(y: np.ndarray, chroma: np.ndarray):
    """A full-range ``yuvj420p`` frame with luma ``y`` ``(H, W)`` uint8 and neutral chroma."""
    import av

    frame = av.VideoFrame(y.shape[1], y.shape[0], "yuvj420p")
    for plane, data in zip(frame.planes, (y, chroma, chroma)):
        h, w = data.shape
        buf = np.zeros((h, plane.line_size), np.uint8)
        buf[:, :w] = data
        plane.update(buf)
    return frame


def _write_annotations(depth_dir: Path, rows: list[tuple[str, str, Optional[str]]]) -> Path:
    """``DEPTH_DIR/annotations.csv`` (``path,label,split``, paths relative to ``DEPTH_DIR``), atomically.

    Rows of earlier imports into the same folder whose videos still exist are kept (``rows``
    override them), so importing part of a dataset at a time lists every video.
    """
    path = depth_dir / ANNOTATIONS_NAME
    merged: dict[str, tuple[str, str]] = {}
    if path.is_file():
        with open(path, newline="") as f:
            for row in csv.reader(f):
                if len(row) == 3 and row[0] != "path" and (depth_dir / row[0]).is_file():
                    merged[row[0]] = (row[1], row[2])
    merged.update({rel: (label, split or "") for rel, label, split in rows})
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split"])
        for rel in sorted(merged):
            w.writerow([rel, *merged[rel]])
    os.replace(tmp, path)
    return path


def import_utd_mhad(src: Path, store: FeatureStore, *, modalities: Sequence[str] | str = ("skeleton", "inertial", "depth"),
                    depth_videos: Optional[str | os.PathLike] = None, split: Optional[str] = "cross_subject",
                    subjects: Optional[Iterable[int]] = None, actions: Optional[Iterable[int | str]] = None,
                    trials: Optional[Iterable[int]] = None, limit: Optional[int] = None,
                    dataset: str = "utd_mhad", crf: int = 0) -> dict[str, Any]:
    """UTD-MHAD into ``pose3d`` and ``inertial`` entries and depth videos (see the module docstring).

    Args:
        modalities: any of ``skeleton`` (-> ``pose3d``), ``inertial``, ``depth`` (-> videos).
        depth_videos: the folder for the depth videos and their ``annotations.csv``
            (default: ``<store>_depth_videos`` beside the store).
        split: a protocol of ``utd_mhad`` or ``None``.
        subjects, actions, trials, limit: import only part of the dataset.
        crf: x264's constant rate factor for the depth videos (0: lossless).
    """
    from ..skeleton import utd_mhad as U
    from ..skeleton.datasets import _split_of

    modalities = U.check_modalities(modalities)
    split_of = _split_of("utd_mhad", split)
    src = Path(src)
    summary = _Summary(dataset, store)
    depth_dir = None
    if "depth" in modalities:
        depth_dir = Path(depth_videos) if depth_videos else store.root.with_name(store.root.name + "_depth_videos")
        depth_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for sid, a, s, t, paths in U.scan_utd_mhad(src, modalities=modalities, subjects=subjects,
                                               actions=actions, trials=trials):
        if limit is not None and summary.data["samples"] >= limit:
            break
        summary.data["samples"] += 1
        vid, label, sp = f"{dataset}/{sid}", U.UTD_MHAD_ACTIONS[a - 1], split_of(subject=s)
        common = {"dataset": dataset, "subject": s, "trial": t, "label_index": a - 1}
        todo = [m for m in modalities
                if not (m == "depth" and (depth_dir / f"{vid}.mp4").is_file())
                and not (m != "depth" and _done(store, vid, _MODALITY[m]))]
        for m in modalities:
            if m not in todo:
                summary.count(_MODALITY[m], "skipped")
        if "depth" in modalities and "depth" not in todo:
            rows.append((f"{vid}.mp4", label, sp))
        if not todo:
            continue
        # one timeline for the sample: the inertial duration (the reader's rule); a bad file
        # fails its own modality only, the others are read again without it
        wanted = tuple(m for m in todo if m != "depth")
        try:
            samples = [U.read_sample(src, sid, a, s, t, paths, wanted, sp)]
        except U.UTDFileError:
            samples = []
            for m in wanted + (() if wanted else ("depth",)):
                try:
                    samples.append(U.read_sample(src, sid, a, s, t, paths, (m,) if m != "depth" else (), sp))
                except U.UTDFileError as e:
                    _fail(store, summary, vid, _MODALITY[m], str(e), label=label, split=sp)
                    todo.remove(m)
        for sample in samples:
            timeline = {"duration_s": sample.duration, "timeline": sample.timeline}
            if sample.skeleton is not None:
                k = sample.skeleton
                store.add(vid, "pose3d", {"keypoint": k.keypoint, "score": k.score,
                                          "timestamps": sample.skeleton_timestamps},
                          attrs={"layout": k.layout, **common, **timeline,
                                 "fps": len(k.keypoint) / sample.duration},
                          label=label, split=sp)
                summary.count("pose3d", "ok")
            if sample.inertial is not None:
                store.add(vid, "inertial", {"data": sample.inertial, "timestamps": sample.inertial_timestamps},
                          attrs={"rate_hz": U.INERTIAL_RATE_HZ, "channels": list(U.INERTIAL_CHANNELS),
                                 "units": list(U.INERTIAL_UNITS),
                                 "placement": "right wrist" if a in U.WRIST_ACTIONS else "right thigh",
                                 **common, **timeline},
                          label=label, split=sp)
                summary.count("inertial", "ok")
        if "depth" in todo:
            try:
                if "depth" not in paths:
                    raise U.UTDFileError(f"{U.expected_path(src, sid, 'depth')}: no such file")
                depth = U.load_depth(paths["depth"])
                # the depth frames take the skeleton's timeline (the same T frames over D seconds)
                duration = samples[0].duration if samples else len(depth) / U.NOMINAL_KINECT_FPS
                write_depth_video(depth_dir / f"{vid}.mp4", depth, duration, crf=crf)
            except U.UTDFileError as e:
                _fail(store, summary, vid, "depth", str(e), label=label, split=sp)
                continue
            rows.append((f"{vid}.mp4", label, sp))
            summary.count("depth", "ok")
    if depth_dir is not None:
        ann = _write_annotations(depth_dir, rows)
        summary.data.update(depth_videos=str(depth_dir), annotations=str(ann),
                            next_commands=depth_commands(depth_dir, ann, store.root))
    return summary.data


def depth_commands(depth_dir: str | os.PathLike, annotations: str | os.PathLike,
                   store: str | os.PathLike) -> list[str]:
    """The ``mhar extract`` lines that turn the depth videos into ``depth`` and ``depth_flow`` entries."""
    common = f"--videos {depth_dir} --annotations {annotations} --store {store} --short-side 240"
    return [f"mhar extract rgb {common} --as depth",
            f"mhar extract flow --backend dis {common} --as depth_flow"]


IMPORTERS.register("utd_mhad", import_utd_mhad)
IMPORTERS.register("msr_action3d", import_msr_action3d)
IMPORTERS.register("utkinect", import_utkinect)
IMPORTERS.register("ntu", import_ntu)
IMPORTERS.register("pyskl", import_pyskl)

__all__ = ["IMPORTERS", "import_dataset", "format_summary", "import_utd_mhad", "import_msr_action3d",
           "import_utkinect", "import_ntu", "import_pyskl",
           "write_depth_video", "depth_to_gray", "depth_commands"]
