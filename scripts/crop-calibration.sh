#!/usr/bin/env bash
# Where BlazeFace puts its box on FER2013's own face crops: the crop margin and centre
# shift that make `fer predict` frame faces as the training images are framed.
#   scripts/crop-calibration.sh [DIR]   (default ../shared/data/fer2013/public_test)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-../shared/data/fer2013/public_test}"
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
# Any classifier will do: only the boxes are read.
cargo run -q --release -p fer-runtime --bin fer -- predict "$DIR" --model firmware/vectors/tiny.fer --json > "$OUT"
python3 - "$OUT" <<'PY'
import json, statistics as st, sys
images = json.load(open(sys.argv[1]))
boxes = [i["faces"][0]["box"] for i in images if i["faces"] and i["width"] == i["height"]]
side = st.median([i["width"] for i in images])
w = st.median([b[2] for b in boxes])
cy = st.median([b[1] + b[3] / 2 for b in boxes])
print(f"{len(boxes)} of {len(images)} crops have a face; median box {w:.1f} of {side:.0f} px, centre y {cy:.1f}")
print(f"margin {side / w - 1:.3f}, shift_down {(side / 2 - cy) / w:.3f}")
PY
