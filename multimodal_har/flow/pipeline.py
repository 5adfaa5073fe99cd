"""The batched flow pipeline: CPU processes decode, the accelerator computes, threads store.

* Decoding runs in ``workers`` spawned processes (a ``torch.utils.data.DataLoader`` over an
  iterable of videos, results in shared memory, pinned by the loader's pin thread, delivered
  as they come, ``in_order=False``), so the GPU never waits for one slow video.
* Frames of all videos are packed into batches of ``batch_frames`` frames of one shape; a batch
  holds pairs of many videos (a short video never leaves the GPU half idle), each frame is
  encoded once (see :class:`~multimodal_har.flow.raft.FastRAFT`), every batch has the same
  shape (padded with unused pairs), so a compiled model / CUDA graph is reused.
* Host-to-device copies are asynchronous from pinned memory; results are quantised on the
  device (4x or 2x fewer bytes back), copied back asynchronously, and encoded / written for
  batch ``i`` while batch ``i + 1`` runs. With the GPU JPEG encoder (``jpeg_encoder="gpu"``,
  see ``multimodal_har.flow.gpu_jpeg``) the quantised flow stays on the device, the writer thread
  encodes it there on its own CUDA stream, and only JPEG bytes cross to the host.
* Each video is written through :meth:`FeatureStore.writer` (temporary file, renamed when
  complete) and reported through ``record`` like the per-video runner; a video whose decoding
  fails is reported and dropped, and the others go on. A decoding process that dies (a decoder
  crash) loses only the videos it had started: those are retried one at a time.
"""

from __future__ import annotations

import concurrent.futures as cf
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from multimodal_har.data.store import FeatureStore, config_attrs
from multimodal_har.data.video import NoAudioTrack, VideoError, probe

from .gpu_jpeg import encode_pairs

Job = tuple[str, str]  # (video_id, path)


class _DecodeStream(torch.utils.data.IterableDataset):
    """Yields ``("start", i)``, ``("info", i, VideoInfo)``, ``("chunk", i, indices, times,
    frames)`` and ``("end", i, status, message)`` for each video ``i`` of this worker's share."""

    def __init__(self, jobs: Sequence[Job], extractor: Any, chunk: int, threads: int) -> None:
        self.jobs, self.ex, self.chunk, self.threads = list(jobs), extractor, chunk, threads

    def __iter__(self):
        wi = torch.utils.data.get_worker_info()
        ids = range(len(self.jobs)) if wi is None else range(wi.id, len(self.jobs), wi.num_workers)
        for i in ids:
            path = Path(self.jobs[i][1])
            yield ("start", i)
            try:
                info = probe(path)
                yield ("info", i, info)
                for ch in self.ex.iter_chunks(path, info, chunk=self.chunk, threads=self.threads):
                    yield ("chunk", i, ch.frame_indices.tolist(), ch.times.tolist(), torch.from_numpy(ch.images))
                yield ("end", i, "ok", None)
            except NoAudioTrack as e:  # ModalityMissing: fewer than two frames
                yield ("end", i, "missing", str(e))
            except VideoError as e:
                yield ("end", i, "failed", str(e))
            except Exception as e:
                tb = traceback.extract_tb(e.__traceback__)[-1]
                yield ("end", i, "failed", f"{type(e).__name__}: {e} (at {Path(tb.filename).name}:{tb.lineno})")


@dataclass
class _Video:
    id: str
    t0: float = field(default_factory=time.perf_counter)
    info: Any = None
    cm: Any = None  # the store writer's context manager
    writer: Any = None
    enqueued: int = 0
    written: int = 0
    ended: bool = False
    status: Optional[str] = None
    error: Optional[str] = None
    closed: bool = False
    reported: bool = False


@dataclass
class _Bucket:
    """Frames of one shape waiting for a batch."""

    pieces: list = field(default_factory=list)  # (uint8 tensor (n, H, W, 3), offset)
    pairs: list = field(default_factory=list)  # (video, first, second, (i, j), time)
    nf: int = 0
    device_frames: Optional[torch.Tensor] = None


class FlowPipeline:
    """Runs a batched pair model over videos into a store.

    Args:
        extractor: a :class:`~extractors.flow_base.BatchedFlowExtractor` (its ``run_batch``,
            ``device`` and ``config``: sampling, pair plan, storage).
        batch_frames: frames per batch ``F`` (pairs per batch: up to ``F - 1``).
        workers: decoding processes (0 decodes in this process).
        encode_threads: threads that encode results (JPEG, or zlib for ``uint8`` / ``float16``).
    """

    def __init__(self, extractor: Any, store: FeatureStore, *, batch_frames: int, workers: int,
                 encode_threads: int = 8, chunk: int = 32, decode_threads: int = 1) -> None:
        self.ex, self.store, self.cfg = extractor, store, extractor.config
        self.F, self.workers, self.chunk, self.decode_threads = batch_frames, workers, chunk, decode_threads
        self.device: torch.device = extractor.device
        self.pool = cf.ThreadPoolExecutor(max(1, encode_threads), thread_name_prefix="flow-encode")
        self.buckets: dict[tuple[int, int], _Bucket] = {}
        self.inflight: list = []
        self.done_q: queue.Queue = queue.Queue()
        self.host_ring: dict[tuple, list] = {}
        self.attrs = config_attrs(extractor.name, extractor.config, extractor.config_hash)
        self.gpu_jpeg = None  # the GPU JPEG encoder, if asked for
        if self.cfg.format == "jpeg":
            from .gpu_jpeg import resolve_encoder

            self.gpu_jpeg = resolve_encoder(getattr(self.cfg, "jpeg_encoder", "cpu"), self.device,
                                            quality=self.cfg.jpeg_quality)
        # where the main thread spends its time (printed by benchmarks/flow_throughput.py)
        self.stats = {"pairs": 0, "batches": 0, "loader_wait_s": 0.0, "launch_s": 0.0, "gpu_wait_s": 0.0,
                      "encode_s": 0.0, "write_s": 0.0,
                      "writer_gpu_wait_s": 0.0}

    # ----------------------------------------------------------------- running
    def run(self, jobs: Sequence[Job], record: Callable[[dict], None]) -> None:
        pending = list(jobs)
        for _ in range(3):  # rounds: a crashed decoder's videos are retried alone
            if not pending:
                return
            suspects, pending = self._round(pending, self.workers, record)
            for job in suspects:
                again, _ = self._round([job], 1, record)
                for vid, _ in again:
                    record(self._result(_Video(vid), "failed", "the decoding process died on this video "
                                        "(a crash in the decoder, or killed for using too much memory)"))
        for vid, _ in pending:
            record(self._result(_Video(vid), "failed", "not processed: decoding processes kept dying"))

    def loader(self, jobs: Sequence[Job], workers: int) -> torch.utils.data.DataLoader:
        """The decoding processes' messages (see ``_DecodeStream``), pinned for the device."""
        ds = _DecodeStream(jobs, self.ex, self.chunk, self.decode_threads)
        kw: dict[str, Any] = {}
        if workers > 0:
            import multiprocessing as mp

            kw = dict(num_workers=workers, prefetch_factor=4, multiprocessing_context=mp.get_context("spawn"),
                      in_order=False)
        return torch.utils.data.DataLoader(ds, batch_size=None, pin_memory=self.device.type == "cuda", **kw)

    def _round(self, jobs: list[Job], workers: int, record) -> tuple[list[Job], list[Job]]:
        """Process ``jobs``; returns (videos in progress when a decoder died, videos not started)."""
        loader = self.loader(jobs, workers)
        videos: dict[int, _Video] = {}
        self.record = record
        self.buckets.clear()
        crashed = False
        st = self.stats
        self._start_writer()
        it = iter(loader)
        try:
            while True:
                t = time.perf_counter()
                msg = next(it, None)
                st["loader_wait_s"] += time.perf_counter() - t
                if msg is None:
                    break
                kind, i = msg[0], int(msg[1])
                if kind == "start":
                    videos[i] = _Video(jobs[i][0])
                elif kind == "info":
                    videos[i].info = msg[2]
                elif kind == "chunk":
                    self._feed(videos[i], msg[4], msg[2], msg[3])
                else:
                    v = videos[i]
                    v.status, v.error = msg[2], msg[3]
                    v.ended = True  # after status: the writer thread may look at once
                    # a failed video's temporary file goes and its pending pairs are dropped
                    self.write_q.put(("abort" if v.status != "ok" else "check", v))
                self._report()
        except RuntimeError as e:
            if "DataLoader worker" not in str(e):
                raise
            crashed = True
        except BaseException:
            for v in videos.values():
                self.write_q.put(("abort", v))
            self._stop_writer()
            raise
        for key in list(self.buckets):
            self._launch(key)
        self._drain(0)
        by_id = {j[0]: j for j in jobs}
        suspects = [by_id[v.id] for v in videos.values() if not v.ended]
        for v in videos.values():
            if not v.ended:  # lost with a dead decoder: dropped here, retried by run()
                v.reported = True
                self.write_q.put(("abort", v))
        self._stop_writer()
        if not crashed:
            return [], []
        started = {v.id for v in videos.values()}
        return suspects, [j for j in jobs if j[0] not in started]

    # ----------------------------------------------------------------- packing
    def _feed(self, v: _Video, frames: torch.Tensor, indices: list, times: list) -> None:
        if v.closed:
            return
        h, w = int(frames.shape[1]), int(frames.shape[2])
        if v.writer is None:
            v.cm = self.store.writer(v.id, self.ex.modality, attrs=self.attrs)
            out = v.cm.__enter__()
            v.writer = self.ex.new_writer(out, h, w, v.info)
        start, n = 0, int(frames.shape[0])
        while n - start >= 2:
            b = self.buckets.setdefault((h, w), _Bucket())
            room = self.F - b.nf
            if room < 2:
                self._launch((h, w))
                continue
            take = min(n - start, room)
            b.pieces.append((frames[start:start + take], b.nf))
            for k in range(take - 1):
                b.pairs.append((v, b.nf + k, b.nf + k + 1, (indices[start + k], indices[start + k + 1]),
                                times[start + k]))
            v.enqueued += take - 1
            b.nf += take
            start += take - 1  # the next piece starts with this piece's last frame
            if self.F - b.nf < 2:
                self._launch((h, w))

    def _launch(self, key: tuple[int, int]) -> None:
        b = self.buckets[key]
        if not b.pairs:
            return
        h, w = key
        dev = self.device
        if b.device_frames is None:
            b.device_frames = torch.zeros((self.F, h, w, 3), dtype=torch.uint8, device=dev)
        frames = b.device_frames
        for piece, off in b.pieces:
            frames[off:off + piece.shape[0]].copy_(piece, non_blocking=True)
        npairs = len(b.pairs)
        idx = torch.zeros((2, self.F - 1), dtype=torch.long)  # unused slots: pair (0, 0), discarded
        idx[0, :npairs] = torch.tensor([p[1] for p in b.pairs])
        idx[1, :npairs] = torch.tensor([p[2] for p in b.pairs])
        idx = idx.to(dev, non_blocking=True)
        t0 = time.perf_counter()
        flow = self.ex.run_batch(frames, idx[0], idx[1])[:npairs]
        packed = self._pack(flow)
        if self.gpu_jpeg is not None:  # stays on the device; the writer thread encodes it there
            event = torch.cuda.Event()
            event.record()
            self.inflight.append((event, packed, b.pairs, b.pieces))
        else:
            self._to_host(packed, b.pairs, b.pieces)
        self.stats["batches"] += 1
        self.stats["launch_s"] += time.perf_counter() - t0
        # a fresh bucket that reuses the device buffer (stream order protects it)
        self.buckets[key] = _Bucket(device_frames=frames)
        self._drain(1)

    def _to_host(self, packed: torch.Tensor, pairs: list, pieces: list) -> None:
        """Copy ``packed`` into a free pinned buffer (asynchronously) and queue it in flight."""
        dev, npairs = self.device, len(pairs)
        ring = self.host_ring.setdefault((tuple(packed.shape[1:]), packed.dtype), [])
        host = None
        for buf in ring:
            if not buf[1]:
                host = buf
                break
        if host is None:
            t = torch.empty((self.F - 1, *packed.shape[1:]), dtype=packed.dtype,
                            pin_memory=dev.type == "cuda")
            host = [t, False]
            ring.append(host)
        host[1] = True
        host[0][:npairs].copy_(packed, non_blocking=True)
        event = None
        if dev.type == "cuda":
            event = torch.cuda.Event()
            event.record()
        self.inflight.append((event, host, pairs, pieces))

    def _pack(self, flow: torch.Tensor) -> torch.Tensor:
        from .codec import quantize

        packed = flow.to(torch.float16) if self.cfg.format == "float16" else quantize(flow, self.cfg.bound)
        return packed.contiguous()  # here, on the main stream (the GPU encoder takes views of it)

    # ----------------------------------------------------------------- results
    def _drain(self, keep: int) -> None:
        """Hand finished batches (oldest first) to the writer thread, keeping ``keep`` in flight.

        Results copied to the host are waited for here; results left on the device for the GPU
        encoder go at once with their event (the writer thread waits for it), so the main thread
        can launch the next batches meanwhile (the writer queue's size bounds how many)."""
        while len(self.inflight) > keep:
            event, payload, pairs, pieces = self.inflight.pop(0)
            if isinstance(payload, torch.Tensor):  # the host frames stay referenced until the event
                self.write_q.put(("batch", (event, payload, pieces), pairs))
                continue
            if event is not None:
                t = time.perf_counter()
                event.synchronize()
                self.stats["gpu_wait_s"] += time.perf_counter() - t
            self.write_q.put(("batch", payload, pairs))
        self._report()

    # ----------------------------------------------------------------- writer thread
    # JPEG encoding (in a thread pool: PIL releases the GIL) and HDF5 writes happen here, so
    # the main thread only receives frames and launches batches. Results go back via done_q
    # (the manifest's SQLite connection stays in the main thread).
    def _start_writer(self) -> None:
        self.write_q: queue.Queue = queue.Queue(maxsize=4)
        self.writer_error: Optional[BaseException] = None
        self.writer_thread = threading.Thread(target=self._writer_loop, name="flow-writer", daemon=True)
        self.writer_thread.start()

    def _stop_writer(self) -> None:
        self.write_q.put(None)
        self.writer_thread.join()
        self._report()
        if self.writer_error is not None:
            raise self.writer_error

    def _writer_loop(self) -> None:
        while True:
            item = self.write_q.get()
            if item is None:
                return
            try:
                if item[0] == "batch":
                    self._write_batch(item[1], item[2])
                elif item[0] == "abort":
                    self._abort(item[1])
                    self._finish_if_done(item[1])
                else:  # "check"
                    self._finish_if_done(item[1])
            except BaseException as e:  # keep consuming so the main thread never blocks
                self.writer_error = self.writer_error or e

    def _write_batch(self, payload: Any, pairs: list) -> None:
        live = [(k, p) for k, p in enumerate(pairs) if not p[0].closed]
        t = time.perf_counter()
        if isinstance(payload, tuple):  # (event, (P, 2, H, W) uint8 on the device, host frames): GPU JPEG
            event, q, pieces = payload
            event.synchronize()
            del pieces  # their copies to the device are done
            self.stats["writer_gpu_wait_s"] += time.perf_counter() - t
            t = time.perf_counter()
            # every pair, in this thread (one encoder, one CUDA stream); rows of videos closed
            # meanwhile (failed) are dropped
            every = encode_pairs(self.gpu_jpeg, q, ready=event)
            rows = [every[k] for k, _ in live]
            del q, payload  # encoded: the device memory may be reused
        else:  # a pinned host buffer
            arr = payload[0][:len(pairs)].numpy()
            rows = list(self.pool.map(lambda kp: kp[1][0].writer.encode(arr[kp[0]]), live))
            payload[1] = False  # the pinned buffer may be reused (encode copies)
        t1 = time.perf_counter()
        self.stats["encode_s"] += t1 - t
        for (k, p), row in zip(live, rows):
            v = p[0]
            if not v.closed:
                v.writer.add(row, p[3], p[4])
                v.written += 1
        self.stats["pairs"] += len(live)
        for v in {id(p[0]): p[0] for _, p in live}.values():
            self._finish_if_done(v)
        self.stats["write_s"] += time.perf_counter() - t1

    def _finish_if_done(self, v: _Video) -> None:
        if not v.ended or v.written < v.enqueued or v.reported:
            return
        if v.status == "ok" and not v.closed:
            try:
                v.writer.flush()
                v.cm.__exit__(None, None, None)
                v.closed = True
            except Exception as e:
                v.status, v.error = "failed", f"writing the store entry failed: {type(e).__name__}: {e}"
                self._abort(v)
        v.reported = True
        self.done_q.put(self._result(v, v.status, v.error))

    def _abort(self, v: _Video) -> None:
        if v.cm is not None and not v.closed:
            try:
                v.cm.__exit__(RuntimeError, RuntimeError("aborted"), None)
            except RuntimeError:
                pass
        v.closed = True
        v.written = v.enqueued

    def _report(self) -> None:
        while True:
            try:
                res = self.done_q.get_nowait()
            except queue.Empty:
                return
            self.record(res)

    def _result(self, v: _Video, status: str, error: Optional[str]) -> dict[str, Any]:
        return {"video_id": v.id, "info": v.info, "items": v.written if status == "ok" else 0,
                "status": status, "error": error, "seconds": time.perf_counter() - v.t0}

    def close(self) -> None:
        self.pool.shutdown(wait=True)

