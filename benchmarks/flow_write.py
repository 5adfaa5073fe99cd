"""Cost of storing one flow pair, per format: encoding (in a thread pool, as the pipeline does)
and the HDF5 write (in the one writer thread), against the previous uint8 path where HDF5
compressed while writing, in the writer thread.

    python benchmarks/flow_write.py [--pairs 200] [--threads N]

Synthetic smooth flow with noise at 256x341 (the cost does not depend much on content).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import os
import time

import h5py
import numpy as np

from multimodal_har.flow.codec import FORMATS, FlowWriter, quantize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:256, 0:341] / 30.0
    flows = [(np.stack([2 * np.sin(xs + i / 7), np.cos(ys)]) + rng.normal(0, 0.2, (2, 256, 341))).astype(np.float32)
             for i in range(args.pairs)]
    FlowWriter(h5py.File(io.BytesIO(), "w"), height=256, width=341).encode(flows[0])  # imports, warm-up
    print(f"{args.pairs} pairs of 256x341, encode pool of {args.threads} threads")
    for fmt in FORMATS:
        with h5py.File(io.BytesIO(), "w") as h, cf.ThreadPoolExecutor(args.threads) as pool:
            w = FlowWriter(h, height=256, width=341, format=fmt)
            t = time.perf_counter()
            rows = list(pool.map(w.encode, flows))
            t1 = time.perf_counter()
            for k, r in enumerate(rows):
                w.add(r, (k, k + 1), 0.0)
            w.flush()
            t2 = time.perf_counter()
        print(f"  {fmt:<8} encode {1e3 * (t1 - t) / args.pairs:6.2f} ms/pair (pool)   "
              f"writer thread {1e3 * (t2 - t1) / args.pairs:6.3f} ms/pair")
    with h5py.File(io.BytesIO(), "w") as h:
        ds = h.create_dataset("f", shape=(0, 2, 256, 341), maxshape=(None, 2, 256, 341), chunks=(1, 2, 256, 341),
                              dtype=np.uint8, compression="gzip", compression_opts=4)
        qs = np.stack([quantize(f) for f in flows])
        t = time.perf_counter()
        ds.resize(args.pairs, axis=0)
        ds[:] = qs
        print(f"  previous uint8 path: HDF5 gzip while writing, writer thread "
              f"{1e3 * (time.perf_counter() - t) / args.pairs:6.3f} ms/pair")


if __name__ == "__main__":
    main()
