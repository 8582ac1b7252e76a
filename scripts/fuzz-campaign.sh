#!/usr/bin/env bash
# Runs the fuzz campaigns of docs/reliability.md one target after another, at idle priority
# (scripts/idle.sh: nice 19 that holds against builds in other sessions too),
# outside the work tree (~/.cache/fer-edge/fuzz: binaries, corpora, crash artifacts, logs).
# Resumable: a target whose log ends with libFuzzer's "Done N runs" is skipped; the corpora
# persist, so a campaign cut off restarts from what it had found.
#
#   scripts/fuzz-campaign.sh [RUNS] [TARGET...]     (defaults: 10,000,000 runs, every target)
#
# Build first: (cd fuzz && cargo +nightly fuzz build)   # optimised, debug assertions on, ASan
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-10000000}"; shift || true
TARGETS=("$@")
# Fastest first, so that whole campaigns finish early (the dataset readers write their
# input to a file and index a CSV each run: a few hundred runs a second).
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(fer_model onnx_model image_decode mjpeg_stream fer_csv manifest)
HOME_FUZZ="$HOME/.cache/fer-edge/fuzz"
BUILT="fuzz/target/x86_64-unknown-linux-gnu/release"
# The longest input each target tries: a bit over its largest seed.
declare -A MAX_LEN=([mjpeg_stream]=8192 [image_decode]=8192 [fer_csv]=32768 [manifest]=1024 [fer_model]=4096 [onnx_model]=4096)
# Seconds one input may take. A few hundred bytes of JPEG may declare a large picture within
# the decoders' limits: 0.64 s to decode in a release build, 14 s under AddressSanitizer.
declare -A TIMEOUT=([image_decode]=60 [mjpeg_stream]=60)
# The dataset readers check images on rayon's pool: one thread keeps a run's cost honest.
export RAYON_NUM_THREADS=1
for t in "${TARGETS[@]}"; do
  mkdir -p "$HOME_FUZZ/bin" "$HOME_FUZZ/corpus/$t" "$HOME_FUZZ/artifacts/$t" "$HOME_FUZZ/logs"
  log="$HOME_FUZZ/logs/$t-$RUNS.log"
  if [ -f "$log" ] && grep -q "^Done $RUNS runs" "$log"; then echo "$t: done ($log)"; continue; fi
  # A copy of the binary, so that rebuilding the fuzz crate does not disturb a campaign.
  cp "$BUILT/$t" "$HOME_FUZZ/bin/$t"
  echo "$t: $RUNS runs -> $log"
  start=$SECONDS
  scripts/idle.sh "$HOME_FUZZ/bin/$t" "$HOME_FUZZ/corpus/$t" "fuzz/seeds/$t" \
    -runs="$RUNS" -max_len="${MAX_LEN[$t]}" -rss_limit_mb=2048 -timeout="${TIMEOUT[$t]:-10}" \
    -artifact_prefix="$HOME_FUZZ/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 \
    || { echo "$t: FAILED after $((SECONDS - start)) s, see $log and $HOME_FUZZ/artifacts/$t/"; continue; }
  echo "$t: $(grep -E '^Done' "$log") in $((SECONDS - start)) s"
done
