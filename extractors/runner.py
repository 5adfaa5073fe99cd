"""Run an extractor over a video folder: parallel, resumable, reported per video.

* Every video is processed independently; a failure is recorded in the manifest with its
  message and the run goes on.
* Outputs appear only when complete (``FeatureStore.writer``); a killed run leaves at most
  temporary files, swept at the next start.
* Re-running skips entries done with the same config hash, adopts complete files a killed
  run wrote but did not record, and redoes what failed, changed or was found damaged (the
  manifest keeps each committed file's size and SHA-256: ``mhar manifest --verify``).
* A worker process that dies (a decoder crash, the OOM killer) does not stop the run: the
  videos it may have held are retried one at a time in a fresh process, and the one that
  kills its process again is recorded as failed.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from multimodal_har.data.ingest import VideoRecord, scan_videos
from multimodal_har.data.store import FeatureStore, config_attrs, name_problem, source_stat
from multimodal_har.data.video import NoAudioTrack, VideoError, probe

from .base import Extractor


@dataclass
class ExtractionSummary:
    """What a run did. ``failed`` and ``missing`` hold ``(video_id, message)`` pairs."""

    modality: str
    config_hash: str
    total: int = 0
    done: int = 0
    skipped: int = 0
    adopted: int = 0
    failed: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    seconds: float = 0.0
    items: int = 0  # frames (or other unit) written by this run
    unit: str = "frames"

    def format(self) -> str:
        lines = [
            f"{self.modality} [{self.config_hash}]: {self.total} videos: {self.done} extracted, "
            f"{self.skipped} already done, {self.adopted} recovered from an interrupted run, "
            f"{len(self.missing)} without this modality, {len(self.failed)} failed "
            f"({self.seconds:.1f} s"
            + (f", {self.done / self.seconds:.2f} videos/s, {self.items / self.seconds:.1f} {self.unit}/s"
               if self.seconds > 0 and self.done else "")
            + ")"
        ]
        for vid, msg in self.missing:
            lines.append(f"  missing {vid}: {msg}")
        for vid, msg in self.failed:
            lines.append(f"  FAILED  {vid}: {msg}")
        return "\n".join(lines)


def process_video(extractor: Extractor, store: FeatureStore, video_id: str, path: Path,
                  threads: int = 0) -> dict[str, Any]:
    """Extract one video into the store. Never raises for a bad video: returns its status."""
    t0 = time.perf_counter()
    result: dict[str, Any] = {"video_id": video_id, "info": None, "items": 0, "source": source_stat(path)}
    try:
        info = probe(path)
        result["info"] = info
        attrs = config_attrs(extractor.name, extractor.config, extractor.config_hash)
        if result["source"] is not None:  # which version of the video this entry was made from
            attrs["source_size"], attrs["source_mtime_ns"] = result["source"]
        with store.writer(video_id, extractor.modality, attrs=attrs) as out:
            stats = extractor.extract(path, out, info=info, threads=threads)
        # hashed here, in the worker, while the file is in the page cache; the manifest keeps it
        result.update(status="ok", error=None, items=int(stats.get("frames", 0)),
                      fingerprint=store.fingerprint(video_id, extractor.modality))
    except NoAudioTrack as e:
        result.update(status="missing", error=str(e))
    except VideoError as e:
        result.update(status="failed", error=str(e))
    except MemoryError:
        result.update(status="failed", error="out of memory while extracting this video")
    except Exception as e:  # an unexpected bug must not stop the folder; keep where it came from
        tb = traceback.extract_tb(e.__traceback__)[-1]
        result.update(status="failed",
                      error=f"{type(e).__name__}: {e} (at {Path(tb.filename).name}:{tb.lineno})")
    result["seconds"] = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------- worker processes
_WORKER: dict[str, Any] = {}


def _die_with_parent(parent: int) -> None:
    """Make this worker die when the process that started it does, however it dies.

    Without this a SIGKILLed (or SIGTERMed) runner left its workers running: they hold the
    task queue's write end themselves, so they never saw it close, went on writing the tasks
    already queued into the store, then waited forever. On Linux the kernel sends the worker
    SIGKILL when its parent exits (``PR_SET_PDEATHSIG``); elsewhere a thread polls the parent.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before the signal was armed
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _init_worker(extractor: Extractor, store_root: str, parent: int) -> None:
    _die_with_parent(parent)
    _WORKER["extractor"] = extractor
    _WORKER["store"] = FeatureStore(store_root)


def _work(video_id: str, path: str, threads: int) -> dict[str, Any]:
    return process_video(_WORKER["extractor"], _WORKER["store"], video_id, Path(path), threads)


def _new_pool(workers: int, extractor: Extractor, store: FeatureStore) -> cf.ProcessPoolExecutor:
    # spawn: workers start clean (no inherited SQLite handle, threads or CUDA state)
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                  initializer=_init_worker, initargs=(extractor, str(store.root), os.getpid()))


def _plan(extractor: Extractor, store: FeatureStore, videos_root: Path, records: Sequence[VideoRecord],
          summary: ExtractionSummary) -> tuple[list[VideoRecord], dict[str, Any]]:
    """Record what is already done; return the videos that need work and every video's
    ``(size, mtime_ns)``.

    Done means: the manifest says ``ok`` with this config hash, for the source as it is now,
    the file has the size recorded when it was committed and passes
    ``FeatureStore.check_entry`` (opens, complete, same hash and source); or ``missing`` with
    this hash for the same source. A file that passes the check but that the manifest does not
    record as done (a run killed between the rename and the record, or a lost manifest) is
    adopted, unless the manifest records this entry as ``failed`` for this config and source
    (``mhar manifest --verify`` found it damaged). Everything else is extracted.
    """
    manifest, h, m, todo, sources = store.manifest, extractor.config_hash, extractor.modality, [], {}
    for r in records:
        problem = name_problem("video id", r.id)
        if problem is not None:  # this video fails, the others go on
            summary.failed.append((r.id, problem))
            if _utf8(r.id):
                manifest.record(r.id, m, status="failed", error=problem, extractor=extractor.name,
                                config_hash=h)
                manifest.commit()
            continue
        src = sources[r.id] = source_stat(videos_root / r.path)
        e = manifest.entry(r.id, m)
        current = (e is not None and e["config_hash"] == h
                   and (src is None or e.get("source_size") is None
                        or (e["source_size"], e["source_mtime_ns"]) == src))
        if current and e["status"] == "missing":
            summary.skipped += 1
            continue
        if current and e["status"] == "failed":  # failed, or found damaged: never trust its file
            todo.append(r)
            continue
        if store.has(r.id, m) and store.check_entry(r.id, m, config_hash=h, source=src,
                                                    datasets=extractor.outputs) is None:
            if current and e["status"] == "ok":
                if not store.size_changed(r.id, m, e):
                    summary.skipped += 1
                else:  # not the size it was committed with: truncated or overwritten
                    todo.append(r)
                continue
            attrs = store.entry_attrs(r.id, m) or {}
            made_from = (attrs.get("source_size"), attrs.get("source_mtime_ns"))
            manifest.record(r.id, m, status="ok", extractor=extractor.name,
                            config_json=attrs.get("config_json"), config_hash=h,
                            path=store.relpath(r.id, m), source=None if None in made_from else made_from,
                            fingerprint=store.fingerprint(r.id, m))
            manifest.commit()  # per write: never hold the lock through the loop
            summary.adopted += 1
            continue
        todo.append(r)
    return todo, sources


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def run_extraction(
    extractor: Extractor,
    *,
    videos_root: str | os.PathLike,
    store: FeatureStore | str | os.PathLike,
    annotations: str | os.PathLike | None = None,
    records: Optional[Sequence[VideoRecord]] = None,
    workers: Optional[int] = None,
    progress: bool = True,
    rank: int = 0,
    world_size: int = 1,
) -> ExtractionSummary:
    """Extract one modality for every video of a folder into a store.

    Args:
        extractor: a configured extractor (e.g. ``RGBExtractor(config=RGBConfig())``).
        videos_root: the dataset folder; ``records`` (or ``annotations``) may narrow it.
        workers: processes (default: all cores, or the extractor's ``default_workers``
            where it sets one); 1 runs in this process.
        rank, world_size: process ``rank`` of ``world_size`` handles videos ``rank::world_size``.
    """
    videos_root = Path(videos_root)
    if not isinstance(store, FeatureStore):
        store = FeatureStore(store, create=True)
    if records is None:
        records = scan_videos(videos_root, annotations=annotations)
    manifest = store.manifest
    manifest.upsert_videos([r for r in records if _utf8(r.id) and _utf8(r.path)])  # SQLite text is UTF-8
    manifest.set_meta("videos_root", str(videos_root.resolve()))
    manifest.commit()
    store.sweep_tmp()

    records = list(records)[rank::world_size]
    summary = ExtractionSummary(modality=extractor.modality, config_hash=extractor.config_hash,
                                total=len(records), unit=getattr(extractor, "unit", "frames"))
    t0 = time.perf_counter()
    todo, sources = _plan(extractor, store, videos_root, records, summary)
    workers_given = workers
    cores = os.cpu_count() or 1
    workers = max(1, min(workers or min(cores, extractor.default_workers or cores), len(todo) or 1))
    threads = max(1, (os.cpu_count() or 1) // workers)
    config_json = config_attrs(extractor.name, extractor.config, extractor.config_hash)["config_json"]

    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), unit="video", desc=f"extract {extractor.modality}",
               disable=not progress or not todo, dynamic_ncols=True)

    def record(res: dict[str, Any]) -> None:
        vid = res["video_id"]
        if res["info"] is not None:
            manifest.set_probe(vid, res["info"])
        elif res["status"] == "failed":
            manifest.set_probe(vid, error=res["error"])
        ok = res["status"] == "ok"
        manifest.record(vid, extractor.modality, status=res["status"], error=res["error"],
                        extractor=extractor.name, config_json=config_json,
                        config_hash=extractor.config_hash,
                        path=store.relpath(vid, extractor.modality) if ok else None,
                        seconds=res["seconds"], source=res.get("source") or sources.get(vid),
                        fingerprint=(res.get("fingerprint") or store.fingerprint(vid, extractor.modality)) if ok
                        else None)
        if res["status"] == "ok":
            summary.done += 1
            summary.items += res["items"]
        elif res["status"] == "missing":
            summary.missing.append((vid, res["error"]))
        else:
            summary.failed.append((vid, res["error"]))
        bar.update(1)
        elapsed = time.perf_counter() - t0
        bar.set_postfix({f"{summary.unit}_per_s": f"{summary.items / max(elapsed, 1e-9):.0f}",
                        "failed": len(summary.failed)})
        # commit each result: an uncommitted write keeps SQLite's write lock, and another
        # writer (a second rank) waiting on it through a whole video gave up "database is locked"
        manifest.commit()

    estimate = getattr(extractor, "estimate_disk", None)
    if estimate is not None and todo:
        message = estimate([videos_root / r.path for r in todo])
        if message and progress:
            print(message, flush=True)
    with _sigterm_unwinds():
        try:
            if getattr(extractor, "batched", False) and todo:
                jobs = [(r.id, str(videos_root / r.path)) for r in todo]
                # decoding processes; two cores stay for the main and writer threads
                extractor.run_folder(jobs, store, record, workers=max(1, (os.cpu_count() or 1) - 2)
                                     if workers_given is None else workers_given)
            elif workers == 1:
                for r in todo:
                    record(process_video(extractor, store, r.id, videos_root / r.path, threads))
            else:
                _run_pool(extractor, store, videos_root, todo, workers, threads, record)
        finally:
            bar.close()
            manifest.commit()
            summary.seconds = time.perf_counter() - t0
            manifest.export_csv(store.root / "manifest.csv")
    return summary


@contextlib.contextmanager
def _sigterm_unwinds():
    """While extracting, SIGTERM (a launcher stopping the job, ``kill``) unwinds like Ctrl-C:
    the workers are killed, the manifest committed and ``manifest.csv`` written, where the
    default action ended the process on the spot. Only the main thread can set a handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def unwind(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _kill_workers(pool: cf.ProcessPoolExecutor) -> None:
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.kill()


def _run_pool(extractor, store, videos_root, todo, workers, threads, record) -> None:
    pending = list(reversed(todo))
    pool = _new_pool(workers, extractor, store)
    in_flight: dict[cf.Future, VideoRecord] = {}
    suspects: list[VideoRecord] = []
    try:
        while pending or in_flight:
            while pending and len(in_flight) < 2 * workers:
                r = pending.pop()
                in_flight[pool.submit(_work, r.id, str(videos_root / r.path), threads)] = r
            done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
            broken = False
            for fut in done:
                r = in_flight.pop(fut)
                try:
                    record(fut.result())
                except cf.process.BrokenProcessPool:
                    suspects.append(r)
                    broken = True
            if broken:
                # every task still in flight is lost with the pool: retry each alone
                suspects.extend(in_flight.values())
                in_flight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                for r in suspects:
                    record(_run_isolated(extractor, store, videos_root, r, threads))
                suspects.clear()
                pool = _new_pool(workers, extractor, store)
    except BaseException:  # SIGTERM, Ctrl-C: stop now rather than finish the videos in flight
        _kill_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_isolated(extractor, store, videos_root, r: VideoRecord, threads: int) -> dict[str, Any]:
    with _new_pool(1, extractor, store) as pool:
        try:
            return pool.submit(_work, r.id, str(videos_root / r.path), threads).result()
        except cf.process.BrokenProcessPool:
            return {"video_id": r.id, "info": None, "items": 0, "seconds": 0.0, "status": "failed",
                    "error": "the extracting process died on this video (a crash in the decoder, "
                             "or killed for using too much memory)"}
