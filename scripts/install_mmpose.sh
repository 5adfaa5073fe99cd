#!/usr/bin/env bash
# Install the mmpose backend of `mhar extract pose` into the active Python environment.
#
#   pip install -c requirements/constraints.txt -e ".[mediapipe,test]" # the README install first
#   bash scripts/install_mmpose.sh                                     # then this (10-25 min on 2 cores)
#
# mmpose 1.3.2 needs mmcv 2.1.0, which has no wheel for current torch: it is built here from
# source. The steps and why each is needed (measured, see ../shared/notes/environment.md):
#   1. setuptools < 81 at run time (mmengine imports pkg_resources), wheel and cython to build.
#   2. chumpy's isolated build fails: build it against the installed setuptools.
#   3. xtcocotools' wheels are built for numpy 1: rebuild it against the installed numpy.
#   4. mmcv from source without build isolation (it must see the installed torch); torch >= 2.14
#      needs C++20, so setup.py's -std=c++17 becomes -std=c++20. CUDA ops are built when torch
#      sees a GPU or FORCE_CUDA=1; the mmpose backend itself needs only the CPU ops (RTMO and
#      the lifters are plain torch), so CPU-only machines can run it for tests.
#   5. mmengine, mmdet (mmpose's APIs import it) and mmpose themselves.
#
# Offline machines: put the wheels and sdists in a folder and run with
#   PIP_NO_INDEX=1 PIP_FIND_LINKS=/path/to/folder bash scripts/install_mmpose.sh
# (pip reads both variables). MAX_JOBS sets the compile parallelism (default: all cores).
set -euo pipefail

PY=${PYTHON:-python}
PIP="$PY -m pip"
export MAX_JOBS=${MAX_JOBS:-$(nproc)}

$PIP install "setuptools==80.10.2" wheel cython
$PIP install --no-build-isolation "chumpy==0.70" || echo "chumpy not installed (only SMPL models need it)"
$PIP install --no-build-isolation --no-binary xtcocotools xtcocotools

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$PIP download --no-deps --no-binary :all: --no-build-isolation -d "$work" "mmcv==2.1.0" \
  || { echo "could not fetch the mmcv 2.1.0 source archive (offline? see PIP_FIND_LINKS above)"; exit 1; }
tar -xzf "$work"/mmcv-2.1.0.tar.gz -C "$work"
if $PY - <<'PYEOF'
import sys, torch
major, minor = (int(x) for x in torch.__version__.split(".")[:2])
sys.exit(0 if (major, minor) >= (2, 14) else 1)
PYEOF
then
  sed -i 's/-std=c++17/-std=c++20/g' "$work"/mmcv-2.1.0/setup.py
fi
(cd "$work"/mmcv-2.1.0 && $PIP install --no-build-isolation --no-deps .)
$PIP install --no-deps "mmengine==0.10.7" "mmdet==3.3.0" "mmpose==1.3.2"
# their runtime needs, without letting pip replace torch, numpy or OpenCV
$PIP install addict yapf termcolor rich terminaltables json_tricks munkres shapely pycocotools scipy matplotlib
$PY -c "import mmcv, mmpose, mmdet; from mmcv import ops; from mmpose.apis import init_model; print('mmpose', mmpose.__version__, 'mmcv', mmcv.__version__, 'ready')"
