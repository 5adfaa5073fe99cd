"""Training throughput of the skeleton GCNs: eager float32 against bf16 autocast, torch.compile,
and K models trained at once as CUDA graphs on K CUDA streams, side by side in one process, on
real MSR Action3D batches.

    python benchmarks/skeleton_throughput.py --device cuda --batch 16 64 --concurrent 1 4 12

For each encoder (ST-GCN narrow, CTR-GCN at the paper's width) and batch size, every mode runs
``--warmup`` training steps (compilation and CUDA-graph capture included), then ``--steps`` timed steps (forward,
backward, AdamW) on batches prepared beforehand (augmented joint sequences already on the
device, so the data pipeline is not timed); prints samples/s (all models together) and the
ratio to eager float32. ``--concurrent K`` is ``skeleton_accuracy.py --graphs``'s training step
(:class:`skeleton_accuracy.Member`): K models, each one CUDA graph of forward + backward and a
fused AdamW, each on its own stream. Before timing it, a graphed model and an eager one with the
same seed train ``--steps`` steps on the same batches, and the largest parameter difference is
printed (the parity check: the graph replays the eager kernels).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import skeleton_accuracy as SA  # noqa: E402

MODES = {"eager fp32": (False, None), "bf16 autocast": (True, None), "compile": (False, "default"),
         "compile + bf16": (True, "default"), "compile, CUDA graphs + bf16": (True, "reduce-overhead")}


def rate(enc_args, classes: int, batches: list, device: torch.device, *, amp: bool, compile: str | None,
         warmup: int, steps: int) -> float:
    torch.manual_seed(0)
    model = SA.Classifier(SA.make_encoder(enc_args, ("joint",)), classes).to(device)
    step_model = torch.compile(model, mode=compile) if compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()

    def one(i: int) -> None:
        x, y = batches[i % len(batches)]
        with autocast:
            loss = nn.functional.cross_entropy(step_model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(warmup):
        one(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(steps):
        one(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batches[0][0].shape[0] / (time.perf_counter() - t0)


def graphed_rate(args, enc_args, classes: int, batches: list, device: torch.device, K: int) -> float:
    """Samples/s of K models at once: ``skeleton_accuracy.py --graphs``'s step, on static batches."""
    members = [SA.Member(enc_args, classes, seed, ("joint",), 10 ** 6, device) for seed in range(K)]
    xs, ys = (torch.empty_like(t) for t in batches[0])
    main = torch.cuda.current_stream(device)

    def one(i: int) -> None:
        x, y = batches[i % len(batches)]
        for m in members:  # the static batch is overwritten once every model has read it
            main.wait_stream(m.cuda_stream)
        xs.copy_(x)
        ys.copy_(y)
        for m in members:
            m.cuda_stream.wait_stream(main)
            if m.graph is None and i >= SA.GRAPH_WARMUP:
                torch.cuda.synchronize()
                m.capture(xs, ys)
            m.step(xs, ys)

    for i in range(max(args.warmup, SA.GRAPH_WARMUP + 1)):
        one(i)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(args.steps):
        one(i)
    torch.cuda.synchronize()
    return args.steps * K * batches[0][0].shape[0] / (time.perf_counter() - t0)


def parity(args, enc_args, classes: int, batches: list, device: torch.device) -> float:
    """Largest |parameter difference| between a graphed and an eager model after ``--steps`` steps
    (dropout off: the two draw their masks differently)."""
    enc_args = argparse.Namespace(**{**vars(enc_args), "dropout": 0.0})
    models = []
    for graphed in (True, False):
        m = SA.Member(enc_args, classes, 0, ("joint",), 10 ** 6, device)
        xs, ys = (torch.empty_like(t) for t in batches[0])
        for i in range(args.steps):
            x, y = batches[i % len(batches)]
            torch.cuda.synchronize()
            xs.copy_(x)
            ys.copy_(y)
            m.cuda_stream.wait_stream(torch.cuda.current_stream(device))
            if graphed and m.graph is None and i >= SA.GRAPH_WARMUP:
                torch.cuda.synchronize()
                m.capture(xs, ys)
            m.step(xs, ys)
        torch.cuda.synchronize()
        models.append(m.model)
    return max(float((a - b).abs().max()) for a, b in zip(models[0].parameters(), models[1].parameters()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SA.DATA)
    ap.add_argument("--sequences", type=Path, help="a skeleton_accuracy.py --save-sequences pickle instead of --data")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=15)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--encoders", nargs="+", default=["skeleton_gcn:narrow", "ctr_gcn:paper"])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--concurrent", type=int, nargs="*", default=[1, 4, 12],
                    help="CUDA: also K models at once as CUDA graphs on K streams (see above)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    source = ["--sequences", str(args.sequences)] if args.sequences else ["--data", str(args.data)]
    base = SA.parser().parse_args(["--dataset", "msr_action3d", "--frames", str(args.frames), "--device", args.device,
                                   *source])
    base.dropout = 0.2
    data, classes = SA.load(base)
    train = data["test"]["train"]
    rng = np.random.default_rng(0)
    machine = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "CPU"
    print(f"{machine}, {platform.machine()}, torch {torch.__version__}; MSR Action3D training sequences, "
          f"{args.frames} frames, {args.steps} timed steps after {args.warmup}")
    for spec in args.encoders:
        name, width = spec.split(":")
        enc_args = SA.parser().parse_args(["--encoder", name, "--width", width, "--graphs"])
        enc_args.dropout = 0.2
        for B in args.batch:
            batches = []
            for _ in range(8):
                idx = rng.choice(len(train), B, replace=False)
                x = torch.from_numpy(np.stack([SA.augment(train[i][0], base, rng) for i in idx])).to(device)
                batches.append((x, torch.tensor([train[i][1] for i in idx], device=device)))
            rates = {}
            for mode in args.modes:
                amp, comp = MODES[mode]
                rates[mode] = rate(enc_args, classes, batches, device, amp=amp, compile=comp, warmup=args.warmup,
                                   steps=args.steps)
                ref = rates.get("eager fp32")
                print(f"  {name} {width}, batch {B}, {mode}: {rates[mode]:.0f} samples/s"
                      f"{f' = {rates[mode] / ref:.2f}x eager fp32' if ref else ''}", flush=True)
            if device.type != "cuda" or not args.concurrent:
                continue
            print(f"  {name} {width}, batch {B}, CUDA graphs: graphed vs eager training, {args.steps} steps, "
                  f"largest parameter difference {parity(args, enc_args, classes, batches, device):.2e}", flush=True)
            for K in args.concurrent:
                r = graphed_rate(args, enc_args, classes, batches, device, K)
                ref = rates.get("eager fp32")
                print(f"  {name} {width}, batch {B}, CUDA graphs, {K} models at once: {r:.0f} samples/s"
                      f"{f' = {r / ref:.2f}x eager fp32' if ref else ''}", flush=True)


if __name__ == "__main__":
    main()
