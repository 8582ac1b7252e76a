#!/usr/bin/env bash
# Runs a Cortex-M firmware ELF under qemu-system-arm (MPS2 AN386, as .cargo/config.toml
# does) with the instruction-counting plugin, and turns its marks into a per-op table.
#
#   CARGO_TARGET_THUMBV7EM_NONE_EABIHF_RUNNER=insn-count/qemu-counted.sh cargo run --release --bin layers
#
# The plugin is built here with the host's C compiler (QEMU's plugin ABI needs no header
# from QEMU: see insn_count.c). The firmware's output and the plugin's counts go to
# stdout; the table follows: for each "op I ..." line the firmware printed, the
# instructions between mark I and mark I+1.
set -euo pipefail
elf="$1"
here="$(cd "$(dirname "$0")" && pwd)"
plugin="${TMPDIR:-/tmp}/fer-insn-count.so"
if [ ! -f "$plugin" ] || [ "$here/insn_count.c" -nt "$plugin" ]; then
  cc -O2 -shared -fPIC -Wall -o "$plugin" "$here/insn_count.c"
fi
mark="$(nm "$elf" | awk '$3 == "fer_mark" { print "0x" $1 }')"
[ -n "$mark" ] || { echo "$elf: no fer_mark symbol" >&2; exit 1; }
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
  -semihosting-config enable=on,target=native \
  -plugin "$plugin,mark=$mark" -d plugin -kernel "$elf" >"$log" 2>&1 || { cat "$log"; exit 1; }
cat "$log"
awk '
  /^mark [0-9]+:/ { m[substr($2, 1, length($2) - 1)] = $3 }
  /^op [0-9]+ / { op[$2] = $0; n = $2 + 1 }
  /^total:/ { total = $2 }
  END {
    printf "\n| op | layer | MACs | instructions | instructions/MAC |\n|---:|---|---:|---:|---:|\n"
    for (i = 0; i < n; i++) {
      d = m[i + 1] - m[i]; sum += d
      split(op[i], f, " "); macs = f[length(f)]; layer = op[i]; sub(/^op [0-9]+ /, "", layer); sub(/ macs [0-9]+$/, "", layer)
      allmacs += macs
      printf "| %d | %s | %d | %d | %s |\n", i, layer, macs, d, (macs > 0 ? sprintf("%.2f", d / macs) : "")
    }
    printf "| | all ops | %d | %d | %.2f |\n", allmacs, sum, sum / allmacs
    printf "\nwhole program (boot, printing, all ops): %d instructions\n", total
  }' "$log"
