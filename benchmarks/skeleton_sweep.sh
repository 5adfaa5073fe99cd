#!/usr/bin/env bash
# The GPU sweep behind the skeleton accuracy table of benchmarks/README.md: every
# configuration on the test subjects and (MSR) on held-out training subjects (--eval val),
# three seeds each, several configurations at once on one GPU.
#
#   bash benchmarks/skeleton_sweep.sh DATA_DIR OUT_DIR [PARALLEL] [CONFIG_FILE]
#
# CONFIG_FILE (default: the list below) holds one configuration a line: a name, then the
# arguments of skeleton_accuracy.py. Each writes OUT_DIR/NAME.json and OUT_DIR/NAME.log.
set -uo pipefail
data=$1 out=$2 parallel=${3:-6} configs=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
list() {
  if [ -n "$configs" ]; then cat "$configs"; return; fi
  for ev in val test; do
    cat <<LIST
msr-narrow-early60-$ev --dataset msr_action3d --eval $ev --streams joint bone motion --jobs 3
msr-narrow-ens60-$ev --dataset msr_action3d --eval $ev --streams joint bone motion --ensemble --jobs 3
msr-paper-early60-$ev --dataset msr_action3d --eval $ev --width paper --streams joint bone motion --jobs 3
msr-paper-ens60-$ev --dataset msr_action3d --eval $ev --width paper --streams joint bone motion --ensemble --jobs 3
msr-paper-ens120-$ev --dataset msr_action3d --eval $ev --width paper --streams joint bone motion --ensemble --epochs 120 --jobs 3
msr-narrow-ens120-$ev --dataset msr_action3d --eval $ev --streams joint bone motion --ensemble --epochs 120 --jobs 3
msr-lstm-$ev --dataset msr_action3d --eval $ev --encoder pose_lstm --epochs 120 --clip 1 --jobs 3
LIST
  done
  cat <<LIST
utk-narrow-early60-test --dataset utkinect --streams joint bone motion --jobs 3
utk-narrow-ens60-test --dataset utkinect --streams joint bone motion --ensemble --jobs 3
utk-paper-ens60-test --dataset utkinect --width paper --streams joint bone motion --ensemble --jobs 3
utk-paper-ens120-test --dataset utkinect --width paper --streams joint bone motion --ensemble --epochs 120 --jobs 3
utk-lstm-test --dataset utkinect --encoder pose_lstm --epochs 120 --clip 1 --jobs 3
msr-paper-ens120f64-test --dataset msr_action3d --width paper --streams joint bone motion --ensemble --epochs 120 --frames 64 --jobs 3
msr-paper-ens120f64-val --dataset msr_action3d --eval val --width paper --streams joint bone motion --ensemble --epochs 120 --frames 64 --jobs 3
LIST
}
list | grep -v '^\s*$' | xargs -P "$parallel" -L 1 bash -c \
  'name=$0; python "'"$here"'/skeleton_accuracy.py" --data "'"$data"'" --threads 1 --json "'"$out"'/$name.json" "$@" \
     > "'"$out"'/$name.log" 2>&1; echo "done $name: $(tail -1 "'"$out"'/$name.log")"'
