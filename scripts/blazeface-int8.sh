#!/usr/bin/env bash
# Quantizes the shipped float detector to models/blazeface_short.fer (and its QDQ twin) with
# the engine's own quantizer, calibrated on face frames letterboxed as the pipeline feeds
# them: the demo photo and the project's photos.
#
#   scripts/blazeface-int8.sh [PHOTOS_DIR]      (default: ../shared/data/photos)
#
# The score logits' range is set to [-8, 8], ranges are percentiles, the channels of each
# conv that feeds one other conv are equalized, and the 8x8 score head's weights are split
# into two int8 passes (docs/runtime.md, "The face detector in int8").
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS="${1:-../shared/data/photos}"
[ -d "$PHOTOS" ] || { echo "$PHOTOS: no such folder of face photos" >&2; exit 1; }
CALIB="$(mktemp -d)"
trap 'rm -rf "$CALIB"' EXIT
cp demo/astronaut.jpg "$PHOTOS"/* "$CALIB/"
cargo run --release -q -p fer-runtime --bin fer -- quantize models/blazeface_short.onnx \
  --calib "$CALIB" --letterbox --input-scale 0.0078431373 --input-offset -1 \
  --output-range classificators=-8:8 --method percentile --percentile 99.99 --equalize \
  --split-weights classificator_16 \
  --out models/blazeface_short.fer
