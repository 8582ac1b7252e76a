#!/usr/bin/env bash
# Packs a `fer-train` that trains on an NVIDIA GPU host with no Rust and no network there:
# the binary built here with `--features tch`, LibTorch's and CUDA's libraries from the
# PyTorch wheel (scripts/setup-tch.sh), and `gpu-check`, which times training on the GPU.
#
#   scripts/gpu-bundle.sh OUT_DIR          # about 4.5 GB; copy OUT_DIR to the GPU host, then
#   OUT_DIR/gpu-check [DATA_DIR]           # there: 2 epochs on 2,000 images of DATA_DIR (when
#                                          # given) and the speed of both models, as JSON lines
#
# The host needs an NVIDIA driver that supports CUDA 12.8 (the wheel's CUDA); nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${1:?usage: scripts/gpu-bundle.sh OUT_DIR}"
ENV_SH="$(scripts/setup-tch.sh)"
# shellcheck disable=SC1090
. "$ENV_SH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fer-edge/target}"
cargo build -q --release -p fer-trainer --features tch,tract

SITE="$(python -W ignore -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')"
mkdir -p "$OUT/bin" "$OUT/site-packages/torch"
cp "$CARGO_TARGET_DIR/release/fer-train" "$OUT/bin/"
# The libraries keep the wheel's layout: libtorch_cuda.so finds the nvidia-* libraries through
# its own RUNPATH ($ORIGIN/../../nvidia/<name>/lib).
cp -a "$SITE/torch/lib" "$OUT/site-packages/torch/"
for lib in "$SITE"/nvidia/*/lib; do
  mkdir -p "$OUT/site-packages/nvidia/$(basename "$(dirname "$lib")")"
  cp -a "$lib" "$OUT/site-packages/nvidia/$(basename "$(dirname "$lib")")/"
done
cp scripts/gpu-check "$OUT/gpu-check"
du -sh "$OUT"
