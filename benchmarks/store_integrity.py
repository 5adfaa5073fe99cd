"""What the store's checksums cost: SHA-256 of every committed entry against the extraction
that wrote them, side by side in one process.

    python benchmarks/store_integrity.py [--videos DIR] [--workers N] [--repeats 3]

1. **baseline**: ``rgb`` extraction of the videos (default: the 7 bundled sample clips) into a
   fresh store (``api.extract``, default settings; the worker hashes each entry after writing
   it, which is inside this time);
2. **hashing**: :meth:`FeatureStore.fingerprint` of every entry again, one thread (what the
   commit adds per entry, the file in the page cache), best of ``--repeats``;
3. **verify**: :meth:`FeatureStore.verify` of the whole store (``mhar manifest --verify``), best
   of ``--repeats``.

Prints MB hashed, SHA-256 MB/s and the hashing / extraction ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from multimodal_har import api
from multimodal_har.data.store import FeatureStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=api.SAMPLE_VIDEOS)
    ap.add_argument("--workers", type=int, default=None, help="extraction processes (default: all cores)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        t = time.perf_counter()
        summary = api.extract("rgb", videos=args.videos, store=store, workers=args.workers)
        extract_s = time.perf_counter() - t
        fs = FeatureStore(store)
        rows = fs.manifest.entries(status="ok")
        mb = sum(fs.path(e["video_id"], e["modality"]).stat().st_size for e in rows) / 1e6
        hash_s, verify_s = float("inf"), float("inf")
        for _ in range(args.repeats):
            t = time.perf_counter()
            for e in rows:
                fs.fingerprint(e["video_id"], e["modality"])
            hash_s = min(hash_s, time.perf_counter() - t)
            t = time.perf_counter()
            damaged = fs.verify(mark=False)
            verify_s = min(verify_s, time.perf_counter() - t)
    assert not damaged, damaged
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {args.videos}: "
          f"{summary.done} rgb entries, {mb:.1f} MB")
    print(f"baseline  rgb extraction      {extract_s:8.2f} s")
    print(f"hashing   SHA-256, 1 thread   {hash_s:8.3f} s  ({mb / hash_s:,.0f} MB/s)  "
          f"ratio to extraction {hash_s / extract_s:.4f} ({100 * hash_s / extract_s:.2f} %)")
    print(f"verify    mhar manifest --verify {verify_s:5.3f} s")


if __name__ == "__main__":
    main()
