#!/usr/bin/env bash
# Runs the fuzz campaigns of docs/reliability.md one target after another, at idle priority
# (scripts/idle.sh: nice 19 that holds against builds in other sessions too), outside the
# work tree (~/.cache/fer-edge/fuzz: binaries, corpora, crash artifacts, logs).
#
#   scripts/fuzz-campaign.sh [RUNS] [TARGET...]   (defaults: 10,000,000 runs, every target)
#   scripts/fuzz-campaign.sh --report [RUNS]      (runs so far and findings, per target)
#
# Resumable across sessions: each start of a target writes its own log
# (logs/TARGET/UTC-TIME.log), the corpora persist, and a target's runs are the sum over its
# logs (libFuzzer's final count, or for a start that was cut off, the last count it printed:
# never more than it ran). A start runs only what is missing to RUNS; a target that has
# them all is skipped.
#
# Build first: (cd fuzz && cargo +nightly fuzz build)   # optimised, debug assertions, ASan
set -euo pipefail
cd "$(dirname "$0")/.."
HOME_FUZZ="$HOME/.cache/fer-edge/fuzz"
ALL_TARGETS=(fer_model onnx_model image_decode mjpeg_stream fer_csv manifest)

# Runs executed according to one log.
log_runs() {
  local n
  n=$(grep -m1 '^stat::number_of_executed_units:' "$1" | awk '{print $2}' || true)
  [ -n "$n" ] || n=$(grep -oE '^#[0-9]+' "$1" | tail -n 1 | tr -d '#' || true)
  echo "${n:-0}"
}

# Runs executed for a target, over all its logs.
target_runs() {
  local total=0 log
  for log in "$HOME_FUZZ/logs/$1"/*.log; do
    [ -f "$log" ] && total=$((total + $(log_runs "$log")))
  done
  echo "$total"
}

usage() { sed -n '6,7p' "$0" | sed 's/^# *//' >&2; exit 2; }
number() { [[ $1 =~ ^[0-9]+$ ]] || usage; }

# The first layout kept one log per target and run count (logs/TARGET-RUNS.log).
for t in "${ALL_TARGETS[@]}"; do
  for old in "$HOME_FUZZ/logs/$t"-*.log; do
    [ -f "$old" ] || continue
    mkdir -p "$HOME_FUZZ/logs/$t"
    mv "$old" "$HOME_FUZZ/logs/$t/$(date -u -r "$old" +%Y%m%dT%H%M%SZ).log"
  done
done

if [ "${1:-}" = "--report" ]; then
  RUNS="${2:-10000000}"; number "$RUNS"
  printf '%-14s %22s %6s  %s\n' target runs starts "inputs that stopped a start (crash, timeout, slow unit)"
  for t in "${ALL_TARGETS[@]}"; do
    starts=$( (ls "$HOME_FUZZ/logs/$t"/*.log 2>/dev/null || true) | wc -l)
    kept=$( (ls "$HOME_FUZZ/artifacts/$t" 2>/dev/null || true) | wc -l)
    printf '%-14s %22s %6s  %s\n' "$t" "$(target_runs "$t")/$RUNS" "$starts" "$kept in artifacts/$t"
  done
  exit 0
fi

RUNS="${1:-10000000}"; number "$RUNS"; shift || true
TARGETS=("$@")
# Fastest first, so that whole campaigns finish early (the dataset readers write their
# input to a file and index a CSV each run: a few hundred runs a second).
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
BUILT="fuzz/target/x86_64-unknown-linux-gnu/release"
# The longest input each target tries: a bit over its largest seed.
declare -A MAX_LEN=([mjpeg_stream]=8192 [image_decode]=8192 [fer_csv]=32768 [manifest]=1024 [fer_model]=4096 [onnx_model]=4096)
# Wall-clock seconds one input may take (libFuzzer's -timeout). A few hundred bytes of JPEG
# may declare a large picture within the decoders' limits: 0.64 s to decode in a release
# build, 14 s under AddressSanitizer. And at idle priority a run can wait for a CPU while
# builds hold both: every limit allows for minutes, and a timeout found this way is replayed
# at normal priority before it is called a hang.
declare -A TIMEOUT=([image_decode]=600 [mjpeg_stream]=600)
DEFAULT_TIMEOUT=300
# The dataset readers check images on rayon's pool: one thread keeps a run's cost honest.
export RAYON_NUM_THREADS=1
for t in "${TARGETS[@]}"; do
  mkdir -p "$HOME_FUZZ/bin" "$HOME_FUZZ/corpus/$t" "$HOME_FUZZ/artifacts/$t" "$HOME_FUZZ/logs/$t"
  # One campaign a target at a time (a start that outlived its terminal still holds it).
  exec {lock}>"$HOME_FUZZ/$t.lock"
  flock -n "$lock" || { echo "$t: another campaign is running it; skipped"; continue; }
  done_runs=$(target_runs "$t")
  if [ "$done_runs" -ge "$RUNS" ]; then echo "$t: done ($done_runs runs)"; continue; fi
  left=$((RUNS - done_runs))
  # A copy of the binary, so that rebuilding the fuzz crate does not disturb a campaign
  # (copied beside it and renamed: a running copy cannot be overwritten).
  cp "$BUILT/$t" "$HOME_FUZZ/bin/$t.new" && mv -f "$HOME_FUZZ/bin/$t.new" "$HOME_FUZZ/bin/$t"
  log="$HOME_FUZZ/logs/$t/$(date -u +%Y%m%dT%H%M%SZ).log"
  echo "$t: $left more runs ($done_runs done) -> $log"
  start=$SECONDS
  scripts/idle.sh "$HOME_FUZZ/bin/$t" "$HOME_FUZZ/corpus/$t" "fuzz/seeds/$t" \
    -runs="$left" -max_len="${MAX_LEN[$t]}" -rss_limit_mb=2048 -timeout="${TIMEOUT[$t]:-$DEFAULT_TIMEOUT}" \
    -report_slow_units="${TIMEOUT[$t]:-$DEFAULT_TIMEOUT}" \
    -artifact_prefix="$HOME_FUZZ/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 \
    || { echo "$t: FAILED after $((SECONDS - start)) s, see $log and $HOME_FUZZ/artifacts/$t/"; exec {lock}>&-; continue; }
  echo "$t: $(grep -E '^Done' "$log") in $((SECONDS - start)) s; $(target_runs "$t") in all"
  exec {lock}>&-
done
