"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

from pathlib import Path

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared/data/videos"


def replicate_videos(src: str | Path, dst: Path, replicas: int) -> Path:
    """A folder of ``replicas`` copies (symlinks) of every video in ``src``: enough videos
    to keep every core busy, under distinct ids."""
    for r in range(replicas):
        (dst / f"r{r}").mkdir(parents=True)
        for v in sorted(Path(src).iterdir()):
            (dst / f"r{r}" / v.name).symlink_to(v.resolve())
    return dst


def one_core_vs_all(backend: str, videos: str | Path, *, replicas: int, unit: str, **config) -> None:
    """Run a CPU extractor over the replicated folder pinned to one core, then with one
    process per core; print both rates and their ratio."""
    import os
    import platform
    import tempfile

    from multimodal_har.extractors import build_extractor
    from multimodal_har.extractors.runner import run_extraction

    cores = os.cpu_count() or 1
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = replicate_videos(videos, Path(tmp) / "v", replicas)
        allowed = os.sched_getaffinity(0)
        for workers in (1, cores):
            ex = build_extractor(backend, **config)
            os.sched_setaffinity(0, {min(allowed)} if workers == 1 else allowed)
            s = run_extraction(ex, videos_root=root, store=Path(tmp) / f"s{workers}", workers=workers,
                               progress=False)
            os.sched_setaffinity(0, allowed)
            rates[workers] = s.items / s.seconds
            print(f"{backend}, {'1 core' if workers == 1 else f'{workers} processes'}: {s.items} {unit} "
                  f"in {s.seconds:.1f} s = {rates[workers]:.1f} {unit}/s")
    print(f"{platform.machine()}, {cores} cores: ratio all cores / one core = {rates[cores] / rates[1]:.2f}x "
          f"(linear would be {cores}x)")


def loader_rate(ds, *, workers: int, batch_size: int, epochs: int, class_balanced: bool = False,
                pin: bool | None = None, device=None) -> float:
    """Samples/s that ``make_loader`` delivers over ``epochs`` epochs, after one warm-up epoch
    (workers start, files open, caches fill). ``device``: each batch also goes there through
    ``train.to_device`` (copy, and uint8 frames normalised there), timed to the last one's arrival."""
    import time

    import torch

    from multimodal_har.data.dataset import make_loader
    from multimodal_har.engine import to_device

    loader = make_loader(ds, batch_size, shuffle=True, class_balanced=class_balanced, num_workers=workers, seed=0)
    if pin is not None:
        loader.pin_memory = pin

    def deliver(batch):
        return batch if device is None else to_device(batch, device)

    ds.set_epoch(0)
    for batch in loader:
        deliver(batch)
    n, t0 = 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        ds.set_epoch(epoch)
        for batch in loader:
            deliver(batch)
            n += len(batch["ids"])
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    rate = n / (time.perf_counter() - t0)
    del loader
    return rate


def stop_pool(pool) -> None:
    """Stop a ``ProcessPoolExecutor`` at a deadline: its running workers are terminated (a later
    call of the benchmark continues the unfinished runs), queued ones cancelled."""
    for proc in list(getattr(pool, "_processes", {}).values()):
        proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
