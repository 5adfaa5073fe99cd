"""RAFT flow throughput: the naive per-pair baseline vs this package's pipeline, same process.

(a) baseline: what typical scripts (and ptlflow's ``infer``) do: decode a video, call
    torchvision RAFT on one pair at a time in fp32, copy the flow back, quantise, JPEG-encode
    and store it. (b) ``run_extraction`` with the ``raft`` extractor: decoding processes,
    batches across videos, bf16, the video forward, ``torch.compile``. Both end to end, from
    video files to stored entries; pairs/s, GPU memory and the ratio b/a are printed.
``--steps`` also measures the model alone on a fixed batch, adding one change at a time.
``--jpeg-encoders cpu gpu`` runs (b) once per JPEG encoder (libjpeg in threads; nvJPEG through
nvImageCodec, ``multimodal_har.flow.gpu_jpeg``), and first checks their parity and speed on the
quantised DIS flow of real frames (error against the float flow, bytes, images/s).

    python benchmarks/flow_throughput.py --videos ../shared/data/videos --replicas 20 \
        [--model raft_large] [--steps] [--baseline-pairs 200] [--jpeg-encoders cpu gpu]

Random weights (``--weights none``): the cost of RAFT does not depend on its weights.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def pairs_per_s(fn, batch: int, n: int, warmup: int) -> float:
    """Pairs/s of ``fn`` (one batch of ``batch`` pairs per call) over ``n`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    _sync()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    _sync()
    return batch * n / (time.perf_counter() - t)


def baseline(videos: list[Path], model: str, pairs: int, short_side: int, device) -> float:
    """One fp32 torchvision call per pair, decode to stored JPEG flow, as a typical script."""
    import h5py

    from multimodal_har.data.video import iter_frames
    from multimodal_har.flow.codec import FlowWriter
    from multimodal_har.flow.raft import crop_flow, load_raft, pad_to_raft, prepare_frames

    net = load_raft(model, None).to(device)
    done, t0 = 0, None
    tmp = Path(tempfile.mkdtemp())
    with torch.inference_mode():
        for v in videos:
            prev = None
            with h5py.File(tmp / f"{v.stem}.h5", "w") as out:
                writer = None
                for fr in iter_frames(v, short_side=short_side):
                    img = torch.from_numpy(fr.image)[None].to(device)
                    if prev is not None:
                        pad = pad_to_raft(*img.shape[1:3])
                        x1, x2 = prepare_frames(prev, pad), prepare_frames(img, pad)
                        flow = crop_flow(net(x1, x2)[-1], pad)[0].cpu().numpy()
                        if writer is None:
                            writer = FlowWriter(out, height=flow.shape[1], width=flow.shape[2])
                        writer.add(writer.encode(flow), (fr.index - 1, fr.index), fr.time)
                        done += 1
                        if done == 10:  # after warm-up (cuDNN autotuning, allocator)
                            _sync()
                            t0, start = time.perf_counter(), done
                        if done >= pairs:
                            break
                    prev = img
                if writer is not None:
                    writer.flush()
            if done >= pairs:
                break
    _sync()
    shutil.rmtree(tmp)
    return (done - start) / (time.perf_counter() - t0)


def jpeg_parity(videos: list[Path], short_side: int, pairs: int = 64, quality: int = 95) -> None:
    """CPU (libjpeg) vs GPU (nvJPEG) greyscale JPEG of the same quantised flow: the end-point
    error of each decoded result against the float flow, bytes per pair, and images/s."""
    from concurrent.futures import ThreadPoolExecutor

    import cv2
    import numpy as np

    from multimodal_har.data.video import iter_frames
    from multimodal_har.flow.codec import decode_gray_jpeg, dequantize, encode_gray_jpeg, quantize
    from multimodal_har.flow.gpu_jpeg import GpuJpegEncoder

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flows = []
    for v in videos:
        prev = None
        for fr in iter_frames(v, short_side=short_side):
            g = cv2.cvtColor(fr.image, cv2.COLOR_RGB2GRAY)
            if prev is not None and prev.shape == g.shape and len(flows) < pairs:
                flows.append(dis.calc(prev, g, None).transpose(2, 0, 1))
            prev = g
        if len(flows) >= pairs:
            break
    shape = flows[0].shape
    flows = np.stack([f for f in flows if f.shape == shape])
    q = quantize(flows)
    imgs = q.reshape(-1, *shape[1:])
    pool = ThreadPoolExecutor(min(8, os.cpu_count() or 1))
    t = time.perf_counter()
    cpu = list(pool.map(lambda im: encode_gray_jpeg(im, quality), imgs))
    cpu_rate = len(imgs) / (time.perf_counter() - t)
    enc = GpuJpegEncoder(quality=quality, device=torch.device("cuda"))
    dev = torch.from_numpy(imgs).cuda()
    enc.encode(dev)  # warm-up
    _sync()
    t = time.perf_counter()
    gpu = enc.encode(dev)
    gpu_rate = len(imgs) / (time.perf_counter() - t)

    def epe(blobs):
        d = dequantize(np.stack([decode_gray_jpeg(b) for b in blobs]).reshape(flows.shape))
        return float(np.linalg.norm(d - np.clip(flows, -20, 20), axis=1).mean())

    same = np.mean([np.abs(decode_gray_jpeg(a).astype(int) - decode_gray_jpeg(b)).max() for a, b in zip(cpu, gpu)])
    print(f"\nJPEG parity, DIS flow of {len(flows)} real frame pairs {shape[1]}x{shape[2]}, quality {quality}:")
    print(f"  uint8 quantisation alone: EPE {float(np.linalg.norm(dequantize(q) - np.clip(flows, -20, 20), axis=1).mean()):.4f} px")
    for name, blobs, rate in (("cpu libjpeg (8 threads)", cpu, cpu_rate), (f"gpu nvJPEG ({enc.backend})", gpu, gpu_rate)):
        print(f"  {name:<26} EPE {epe(blobs):.4f} px, {sum(map(len, blobs)) / len(flows):8.0f} B/pair, "
              f"{rate:8.0f} images/s")
    print(f"  decoded gpu vs cpu: mean over images of the max |difference| {same:.2f} levels")
    pool.shutdown()


def pipeline(ex, root: Path, store: Path, args, warm_root: Path, jpeg_encoder: str) -> tuple[float, dict]:
    """(b) with ``ex`` storing through ``jpeg_encoder``. The first call warms ``ex`` up (compiles
    each frame size once; the compiled functions stay cached in ``ex`` for later calls)."""
    from multimodal_har.extractors.runner import run_extraction
    ex.config.jpeg_encoder = jpeg_encoder  # does not change the model or its compiled forward
    t = time.perf_counter()
    run_extraction(ex, videos_root=warm_root, store=store.with_name(f"warm-{jpeg_encoder}"), progress=False,
                   workers=args.workers)
    warm = time.perf_counter() - t
    torch.cuda.reset_peak_memory_stats()
    s = run_extraction(ex, videos_root=root, store=store, progress=False, workers=args.workers)
    print(f"jpeg encoder {jpeg_encoder}: " + s.format().splitlines()[0])
    print("  main thread: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in ex.last_stats.items()))
    return s.items / s.seconds, {"warmup_s": warm, "pairs": s.items, "seconds": s.seconds,
                                 "peak_gpu_gb": torch.cuda.max_memory_allocated() / 1e9}


def decode_only(root: Path, args) -> float:
    """Frames/s of the decoding processes alone (the pipeline's loader, nothing consumes)."""
    from multimodal_har.extractors import build_extractor
    from multimodal_har.data.ingest import scan_videos
    from multimodal_har.flow.pipeline import FlowPipeline

    ex = build_extractor("raft", weights="none", short_side=args.short_side, device="cpu")
    jobs = [(r.id, str(root / r.path)) for r in scan_videos(root)]
    pipe = FlowPipeline(ex, None, batch_frames=64, workers=args.workers or max(1, os.cpu_count() - 2),
                        encode_threads=1)
    frames, t = 0, None
    for msg in pipe.loader(jobs, pipe.workers):
        if msg[0] == "chunk":
            if t is None:  # from the first chunk: process start-up excluded
                t = time.perf_counter()
            else:
                frames += msg[4].shape[0]
    return frames / (time.perf_counter() - t)


def steps(model: str, batch: int, h: int, w: int, device) -> None:
    """The model alone on one batch of consecutive frames, adding one change at a time."""
    from multimodal_har.flow.raft import FastRAFT, load_raft

    net = load_raft(model, None).to(device)
    frames = torch.rand(batch + 1, 3, h, w, device=device) * 2 - 1
    first = torch.arange(batch, device=device)
    second = first + 1

    def timeit(fn, n=10):
        try:
            return _timeit(fn, n)
        except Exception as e:  # report and go on with the other steps
            print(f"  step failed: {type(e).__name__}: {e}")
            return float("nan")

    def _timeit(fn, n):
        return pairs_per_s(fn, batch, n, warmup=3)

    bf16 = dict(device_type="cuda", dtype=torch.bfloat16)
    rows = []
    with torch.inference_mode():
        rows.append(("torchvision, one pair at a time, fp32", timeit(lambda: net(frames[:1], frames[1:2])[-1], 20) / batch))
        rows.append((f"torchvision, batch {batch}, fp32", timeit(lambda: net(frames[:-1], frames[1:])[-1])))
        with torch.autocast(**bf16):
            rows.append(("+ bf16 autocast", timeit(lambda: net(frames[:-1], frames[1:])[-1])))
            fast_gs = FastRAFT(net, lookup="grid_sample")
            rows.append(("+ frame features once, upsample last only",
                         timeit(lambda: fast_gs(frames, first, second))))
            fast = FastRAFT(net, lookup="gather")
            rows.append(("+ gather lookup", timeit(lambda: fast(frames, first, second))))
            net_cl = net.to(memory_format=torch.channels_last)
            fr_cl = frames.contiguous(memory_format=torch.channels_last)
            rows.append(("+ channels_last", timeit(lambda: fast(fr_cl, first, second))))
        for mode in ("default", "reduce-overhead"):
            def run(fast=fast):
                with torch.autocast(**bf16):
                    return fast(fr_cl, first, second)
            t = time.perf_counter()
            comp = torch.compile(run, mode=mode, dynamic=False)
            try:
                comp()
            except Exception as e:
                print(f"  compile {mode} failed: {type(e).__name__}: {e}")
                continue
            _sync()
            took = time.perf_counter() - t
            rows.append((f"+ torch.compile({mode!r}) [compile {took:.0f} s]", timeit(comp)))
        del net_cl
    print(f"\nmodel alone, {model}, {batch} pairs of {h}x{w}, 12 updates (pairs/s):")
    for name, v in rows:
        print(f"  {name:<58}{v:>9.0f}")


def profile(model: str, batch: int, h: int, w: int, device, cudnn_benchmark: bool) -> None:
    """The compiled model alone (``torch.compile`` default mode: kernels, not graph replays) under
    ``torch.profiler``: GPU time by kind of kernel and the top kernels, for one batch. First the
    eager model with and without ``cudnn.benchmark`` (cheap: no compile)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from multimodal_har.flow.raft import FastRAFT, load_raft

    torch.backends.cudnn.benchmark = cudnn_benchmark
    net = FastRAFT(load_raft(model, None).to(device)).to(memory_format=torch.channels_last)
    frames = (torch.rand(batch + 1, 3, h, w, device=device) * 2 - 1).contiguous(memory_format=torch.channels_last)
    first = torch.arange(batch, device=device)

    def run():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return net(frames, first, first + 1)

    with torch.inference_mode():
        for cb in (False, True):
            torch.backends.cudnn.benchmark = cb
            print(f"eager {model}, bf16, channels_last, cudnn.benchmark {cb}: "
                  f"{pairs_per_s(run, batch, 5, warmup=2):.0f} pairs/s")
    torch.backends.cudnn.benchmark = cudnn_benchmark
    comp = torch.compile(run, dynamic=False)
    with torch.inference_mode():
        rate = pairs_per_s(comp, batch, 5, warmup=3)
        with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                comp()
            _sync()
    rows = []
    for e in prof.key_averages():
        t_us = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)
        if t_us and e.device_type.name == "CUDA":
            rows.append((t_us / 3, e.count // 3, e.key))
    total = sum(r[0] for r in rows)

    def kind(name: str) -> str:
        n = name.lower()
        if "triton" in n:
            return "Triton (Inductor's fused elementwise / reductions / gathers)"
        if any(k in n for k in ("conv", "cudnn", "xmma", "implicit", "nhwc", "dgrad", "fprop")):
            return "convolution (cuDNN)"
        if any(k in n for k in ("gemm", "cutlass", "nvjet", "matmul", "sm90")):
            return "matrix product (cuBLAS)"
        if "gather" in n or "index" in n:
            return "gather / index"
        return "other"

    by_kind: dict[str, float] = {}
    for t_us, _, name in rows:
        by_kind[kind(name)] = by_kind.get(kind(name), 0.0) + t_us
    print(f"\nprofile, {model} compiled (default mode), bf16, channels_last, cudnn.benchmark "
          f"{cudnn_benchmark}, {batch} pairs of {h}x{w}: {rate:.0f} pairs/s unprofiled; "
          f"GPU time per batch {total / 1e3:.1f} ms")
    for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<62}{v / 1e3:8.2f} ms {100 * v / total:5.1f} %")
    print("  top kernels (ms per batch, launches per batch):")
    for t_us, count, name in sorted(rows, reverse=True)[:15]:
        print(f"    {t_us / 1e3:7.2f} ms {count:5d}x  {name[:110]}")
    torch.backends.cudnn.benchmark = False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", default=str(Path(__file__).resolve().parents[2] / "shared/data/videos"))
    ap.add_argument("--replicas", type=int, default=20, help="copies of the folder (symlinks) to process")
    ap.add_argument("--model", default="raft_large")
    ap.add_argument("--short-side", type=int, default=256)
    ap.add_argument("--batch-frames", type=int, default=64)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--compile", default="reduce-overhead")
    ap.add_argument("--lookup", default="gather")
    ap.add_argument("--format", default="jpeg")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--baseline-pairs", type=int, default=200)
    ap.add_argument("--steps", action="store_true", help="also measure the model alone, step by step")
    ap.add_argument("--no-e2e", action="store_true")
    ap.add_argument("--profile", action="store_true", help="profile the compiled model alone (GPU time by kernel)")
    ap.add_argument("--cudnn-benchmark", action="store_true", help="--profile: with cudnn.benchmark on")
    ap.add_argument("--jpeg-encoders", nargs="+", default=["cpu"], choices=["cpu", "gpu"],
                    help="run (b) once with each (jpeg format)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU")
    device = torch.device("cuda")
    print(f"{torch.cuda.get_device_name()} | {os.cpu_count()} CPU cores | torch {torch.__version__} | "
          f"Python {platform.python_version()}")
    src = Path(args.videos)
    videos = sorted(p for p in src.iterdir() if p.is_file())
    if args.steps:
        steps(args.model, args.batch_frames, args.short_side, 344, device)
    if args.profile:
        try:
            profile(args.model, args.batch_frames - 1, args.short_side, 344, device, args.cudnn_benchmark)
        except Exception as e:  # report, and go on with the end-to-end runs
            print(f"profile failed: {type(e).__name__}: {e}")
    if args.no_e2e:
        return
    work = Path(tempfile.mkdtemp())
    root, warm = work / "videos", work / "warm"
    for r in range(args.replicas):
        (root / f"r{r:02d}").mkdir(parents=True)
        for v in videos:
            (root / f"r{r:02d}" / v.name).symlink_to(v.resolve())
    warm.mkdir()
    for v in videos:
        (warm / v.name).symlink_to(v.resolve())
    print(f"decoding alone ({args.workers or max(1, os.cpu_count() - 2)} processes): {decode_only(root, args):.0f} frames/s "
          "(chunks overlap by one frame)")
    torch.cuda.reset_peak_memory_stats()
    a = baseline(videos, args.model, args.baseline_pairs, args.short_side, device)
    a_mem = torch.cuda.max_memory_allocated() / 1e9
    print(f"(a) baseline: {a:.1f} pairs/s")
    torch.cuda.empty_cache()
    if "gpu" in args.jpeg_encoders:
        try:
            jpeg_parity(videos, args.short_side)
        except Exception as e:  # report, and go on with the encoders that work
            print(f"GPU JPEG parity failed: {type(e).__name__}: {e}")
    from multimodal_har.extractors import build_extractor

    ex = build_extractor("raft", model=args.model, weights="none", short_side=args.short_side,
                         batch_frames=args.batch_frames, precision=args.precision, compile=args.compile,
                         lookup=args.lookup, format=args.format)
    results = []
    for enc in args.jpeg_encoders:
        store = work / f"store-{enc}"
        try:
            results.append((enc, *pipeline(ex, root, store, args, warm, enc)))
        except Exception as e:
            print(f"jpeg encoder {enc}: failed: {type(e).__name__}: {e}")
        shutil.rmtree(store, ignore_errors=True)
    if not results:
        return
    info = results[0][2]
    print(f"\nend to end, {args.model}, short side {args.short_side}, 12 updates, {len(videos)} videos x "
          f"{args.replicas} ({info['pairs']} pairs), store format {args.format}:")
    print(f"  (a) baseline, one pair at a time, fp32   {a:8.1f} pairs/s   peak GPU memory {a_mem:.2f} GB")
    for enc, b, info in results:
        print(f"  (b) pipeline (batch {args.batch_frames} frames, {args.precision}, compile {args.compile}, lookup "
              f"{args.lookup}, jpeg encoder {enc})  {b:8.1f} pairs/s   peak GPU memory {info['peak_gpu_gb']:.2f} GB   "
              f"(warm-up incl. compile {info['warmup_s']:.0f} s)   ratio b/a: {b / a:.1f}x")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
