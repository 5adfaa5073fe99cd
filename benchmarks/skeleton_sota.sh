#!/usr/bin/env bash
# The GPU runs behind "Modern GCNs and the four-stream ensemble" in benchmarks/README.md.
#
#   bash benchmarks/skeleton_sota.sh OUT_DIR [VAL_DEADLINE_S] [FINAL_DEADLINE_S] [-- ARGS for skeleton_accuracy.py]
#
# On a GPU pass "-- --graphs --group fold": a fold's 12 models (3 seeds x 4 streams) train at once
# in one process, as CUDA graphs on their own CUDA streams (the launch-bound CTR-GCN needs it).
# 1. Choice, on held-out TRAINING subjects only (MSR Action3D and UTKinect: train 1,3,5,
#    validate 7,9; benchmarks/sweeps/skeleton_val.txt, first experiments first): for each encoder,
#    the augmentation (base: rotation about y, scale, temporal crop; aug: + tilt 10 deg, shear 0.2)
#    with the higher mean validation top-1 over the datasets it finished; base when none did.
#    VAL_DEADLINE_S 0 skips this step and takes the base recipe (fixed beforehand: the one
#    chosen on MSR validation subjects for ST-GCN, "GPU runs, 2026-11-29").
# 2. The evaluation with the chosen recipes: MSR Action3D and UTKinect cross-subject test, then
#    UTD-MHAD leave-one-subject-out (1,3,5,7) (smallest first); CTR-GCN first, then ST-GCN; 4 streams, 3 seeds.
#    A deadline stops the pool and keeps every model that finished (OUT_DIR/*/models); running
#    the script again with the same OUT_DIR trains only the missing ones.
# SOTA_RESUME_FROM="DIR ..." (results folders of earlier calls, e.g. benchmarks/results/skeleton_sota_*):
#    their chosen.txt, finished experiments' JSONs and models/ are copied into OUT_DIR first, so a
#    fresh machine continues where they stopped (the 3-fold *-partial.json summaries are not copied).
set -uo pipefail
out=$1 val_deadline=${2:-200} final_deadline=${3:-380}
shift $(( $# >= 3 ? 3 : $# )); [ "${1:-}" = "--" ] && shift
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/val" "$out/final/models"
for d in ${SOTA_RESUME_FROM:-}; do
  [ -d "$d" ] || { echo "SOTA_RESUME_FROM: no folder $d" >&2; exit 2; }
  [ -f "$out/chosen.txt" ] || [ ! -f "$d/chosen.txt" ] || cp "$d/chosen.txt" "$out/"
  for j in "$d"/*.json; do case $j in *-partial.json) ;; *) [ -f "$j" ] && cp -n "$j" "$out/final/" ;; esac; done
  [ -d "$d/models" ] && cp -rn "$d/models/." "$out/final/models/"
done
run() { python "$here/skeleton_accuracy.py" --jobs 16 --threads 1 "$@"; }
if [ ! -f "$out/chosen.txt" ] && [ "$val_deadline" = 0 ]; then  # no choice step: the base recipe
  printf "ctr_gcn base (not chosen: no validation run)\nskeleton_gcn base (not chosen: no validation run)\n" \
    > "$out/chosen.txt"
elif [ ! -f "$out/chosen.txt" ]; then
  run --sweep "$here/sweeps/skeleton_val.txt" --out "$out/val" --deadline "$val_deadline" "$@" > "$out/val.log" 2>&1
  python - "$out/val" > "$out/chosen.txt" <<'PY'
import json, sys
from pathlib import Path
runs = {p.stem: json.loads(p.read_text())["mean"] for p in Path(sys.argv[1]).glob("*.json")}
for enc, tag in (("ctr_gcn", "ctr-paper"), ("skeleton_gcn", "st-narrow")):
    score = {v: [m for n, m in runs.items() if n.endswith(f"{tag}-{v}")] for v in ("base", "aug")}
    pick = "aug" if score["aug"] and (not score["base"] or sum(score["aug"]) / len(score["aug"])
                                      > sum(score["base"]) / len(score["base"])) else "base"
    print(enc, pick, {v: [round(100 * m, 1) for m in s] for v, s in score.items()})
PY
fi
cat "$out/chosen.txt"
aug() { grep "^$1 " "$out/chosen.txt" | awk '{print $2}'; }
flags() { [ "$(aug "$1")" = aug ] && echo "--tilt 10 --shear 0.2"; }
E="--ensemble --streams joint bone motion bone_motion --epochs 120"
{
  for enc in ctr_gcn skeleton_gcn; do
    w=$([ $enc = ctr_gcn ] && echo paper || echo narrow)
    for ds in msr_action3d utkinect utd_mhad; do
      name="$ds-$enc-$w-$(aug $enc)"
      [ -f "$out/final/$name.json" ] || echo "$name --dataset $ds --encoder $enc --width $w $E $(flags $enc)"
    done
  done
} > "$out/final.txt"
cat "$out/final.txt"
[ -s "$out/final.txt" ] && run --sweep "$out/final.txt" --out "$out/final" --deadline "$final_deadline" "$@" \
  > "$out/final.log" 2>&1
grep "^\[" "$out/val.log" "$out/final.log" 2>/dev/null | grep -v "fold(s)"
