"""One table of the JSON files written by ``skeleton_accuracy.py --json`` (or by
``skeleton_sweep.sh``): name, evaluated split, per-seed top-1, mean +- std, time per seed.

    python benchmarks/skeleton_summary.py OUT_DIR [--merge merged.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--merge", type=Path, help="also write every result into one JSON file")
    args = ap.parse_args()
    runs = {p.stem: json.loads(p.read_text()) for p in sorted(args.folder.glob("*.json"))}
    print("| run | eval | top-1 per seed (%) | mean +- std (%) | s per seed | per-model mean (%) |")
    print("| --- | --- | --- | --- | ---: | --- |")
    for name, r in runs.items():
        seeds = r["seeds"]
        per = ", ".join(f"{100 * s['top1']:.1f}" for s in seeds)
        secs = sum(s["seconds"] for s in seeds) / len(seeds)
        models = seeds[0]["per_model"]
        parts = ", ".join(f"{m} {100 * sum(s['per_model'][m] for s in seeds) / len(seeds):.1f}" for m in models) \
            if len(models) > 1 else ""
        print(f"| {name} | {r['config']['eval']} | {per} | {100 * r['mean']:.1f} +- {100 * r['std']:.1f} "
              f"| {secs:.0f} | {parts} |")
    if args.merge:
        args.merge.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
