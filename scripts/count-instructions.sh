#!/usr/bin/env bash
# Instructions per inference, for speed comparisons where time is too noisy (docs/runtime.md):
# cachegrind runs `fer bench` at --reps 5 and 25, whose difference is 22 inferences of each
# backend (warm-up reps / 10 + 5, then reps). valgrind hides AVX-512, so x86 peers run
# their AVX2 paths. Needs valgrind and a release `fer`.
#
#   scripts/count-instructions.sh MODEL.fer KERNELS [PEERS]   (PEERS: '' or ort)
#
# With PEERS=ort the figure is the engine's and ONNX Runtime's together: subtract the
# engine's own (PEERS='').
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$1; KERNELS=$2; PEERS=${3:-}
FER="${CARGO_TARGET_DIR:-target}/release/fer"
[ -x "$FER" ] || cargo build -q --release -p fer-runtime --bin fer
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
refs() {
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$OUT/cg.$1" \
    "$FER" bench --model "$MODEL" --kernels "$KERNELS" --peers "$PEERS" --reps "$1" 2>&1 >/dev/null \
    | grep -m1 'I *refs' | tr -d ',' | awk '{print $NF}'
}
a=$(refs 5); b=$(refs 25)
echo "$MODEL, $KERNELS, peers '${PEERS}': $(( (b - a) / 22 )) instructions per inference"
