"""Stream-ensemble weights chosen on validation subjects, then applied to the test models.

    python benchmarks/skeleton_ensemble_weights.py --dataset msr_action3d \\
        --val-models OUT/val/models/msr-ctr-paper-base \\
        --test-models OUT/final/models/msr_action3d-ctr_gcn-paper-base [--sequences SEQ] [--json FILE]

``--val-models``: the per-model scores of a ``skeleton_accuracy.py --eval val`` run (trained on
the training subjects 1, 3, 5 of MSR Action3D / UTKinect, scored on training subjects 7, 9:
``benchmarks/sweeps/skeleton_val.txt``); ``--test-models``: those of the same recipe's test run
(trained on every training subject, scored on the test subjects). Both hold
``{val|test}_seed{S}_{stream}.npz`` for the same seeds and streams (what ``--ensemble`` runs
keep). Every weight vector on a grid of the simplex (``--step``) is scored on the validation
subjects (top-1 of the weighted sum of the streams' scores, mean over seeds, as
``skeleton_accuracy.py`` scores an ensemble); the best (ties: the higher worst seed, then the
one nearest equal weights) is the choice, and only then are the test scores read. Printed beside
it: the papers' 0.6 / 0.6 / 0.4 / 0.4, equal weights and each stream alone, on both splits.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import skeleton_accuracy as sa  # noqa: E402  (the benchmark's data loading and folds)


def read_scores(folder: Path, fold: str) -> dict[tuple[int, str], np.ndarray]:
    """``{(seed, stream): (N, C) scores}`` of the ``{fold}_seed{S}_{stream}.npz`` files in ``folder``."""
    out = {}
    for path in sorted(folder.glob(f"{fold}_seed*_*.npz")):
        m = re.fullmatch(rf"{fold}_seed(\d+)_(\w+)\.npz", path.name)
        if m:
            with np.load(path) as z:
                out[int(m.group(1)), m.group(2)] = z["scores"]
    if not out:
        raise SystemExit(f"no {fold}_seed*_*.npz model scores in {folder}")
    return out


def labels_of(dataset: str, eval_split: str, extra: list[str]) -> np.ndarray:
    args = sa.parser().parse_args(["--dataset", dataset, "--eval", eval_split, *extra])
    data, _ = sa.load(args)
    (fold,) = data.values()
    return np.array([y for _, y in fold["test"]])


def top1(scores: dict, labels: np.ndarray, seeds: list[int], streams: list[str], w) -> np.ndarray:
    """``(seeds,)`` top-1 of the weighted ensemble per seed."""
    return np.array([float((sum(wi * scores[s, m] for wi, m in zip(w, streams)).argmax(1) == labels).mean())
                     for s in seeds])


def simplex(n: int, step: float) -> list[tuple[float, ...]]:
    k = round(1 / step)
    return [tuple(c / k for c in combo) for combo in itertools.product(range(k + 1), repeat=n) if sum(combo) == k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=list(sa.READERS), required=True)
    ap.add_argument("--val-models", type=Path, required=True)
    ap.add_argument("--test-models", type=Path, required=True)
    ap.add_argument("--step", type=float, default=0.1, help="grid step of the weights (they sum to 1)")
    ap.add_argument("--sequences", type=Path, help="a skeleton_accuracy.py --save-sequences pickle")
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()
    extra = ["--sequences", str(args.sequences)] if args.sequences else []

    val = read_scores(args.val_models, "val")
    seeds = sorted({s for s, _ in val})
    streams = [m for m in sa.FOUR_STREAMS if (seeds[0], m) in val]
    if set(val) != {(s, m) for s in seeds for m in streams}:
        raise SystemExit(f"{args.val_models}: not every seed has every stream: {sorted(val)}")
    y_val = labels_of(args.dataset, "val", extra)
    uniform = np.full(len(streams), 1 / len(streams))

    def key(w):
        acc = top1(val, y_val, seeds, streams, w)
        return acc.mean(), acc.min(), -float(np.linalg.norm(np.array(w) - uniform))

    grid = simplex(len(streams), args.step)
    chosen = max(grid, key=key)  # chosen on the validation subjects only

    test = read_scores(args.test_models, "test")  # read after the choice
    missing = {(s, m) for s in seeds for m in streams} - set(test)
    if missing:
        raise SystemExit(f"{args.test_models}: no test scores for {sorted(missing)}")
    y_test = labels_of(args.dataset, "test", extra)
    rows = {"chosen on val": chosen, "equal": tuple(uniform)}
    if tuple(streams) == sa.FOUR_STREAMS:
        rows["paper 0.6/0.6/0.4/0.4"] = sa.PAPER_ENSEMBLE
    for i, m in enumerate(streams):
        rows[f"{m} alone"] = tuple(float(i == j) for j in range(len(streams)))
    result = {"dataset": args.dataset, "streams": streams, "seeds": seeds, "step": args.step,
              "grid_size": len(grid), "chosen": list(chosen), "rows": {}}
    print(f"{args.dataset}: streams {', '.join(streams)}, seeds {seeds}; weights chosen on the validation subjects "
          f"({len(y_val)} sequences) over {len(grid)} points of the simplex, step {args.step}")
    print("| weights | " + " / ".join(streams) + " | val top-1 (%) | test top-1, mean +- std (%) |")
    print("| --- | --- | ---: | ---: |")
    for name, w in rows.items():
        v, t = top1(val, y_val, seeds, streams, w), top1(test, y_test, seeds, streams, w)
        result["rows"][name] = {"weights": list(w), "val": v.tolist(), "test": t.tolist()}
        print(f"| {name} | {' / '.join(f'{x:.2f}' for x in w)} | {100 * v.mean():.1f} | "
              f"{100 * t.mean():.1f} +- {100 * t.std():.1f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
