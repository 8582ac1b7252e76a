#!/usr/bin/env bash
# Builds the edge model's layers on ARM's CMSIS-NN (edge_layers.c) for the Cortex-M4 with
# arm-none-eabi-gcc, and counts their instructions under QEMU with the same plugin as our
# engine's (../insn-count). Prints the per-op table.
#
#   CMSIS_NN=/path/to/CMSIS-NN firmware/cmsis-nn/run.sh
#
# CMSIS_NN: a checkout of https://github.com/ARM-software/CMSIS-NN (measured at commit
# 99f736a6). Needs gcc-arm-none-eabi and libnewlib-arm-none-eabi (Debian packages).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${CMSIS_NN:?set CMSIS_NN to a CMSIS-NN checkout}"
out="${TMPDIR:-/tmp}/fer-cmsis-nn"
mkdir -p "$out"
# Every integer kernel (the linker keeps what the harness calls); not the float ones.
mapfile -t sources < <(find "$CMSIS_NN/Source" -name '*.c' ! -name '*_f16.c' ! -name '*_f32.c' | sort)
arm-none-eabi-gcc -O3 -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard \
  -ffunction-sections -fdata-sections -nostartfiles -Wl,--gc-sections -T "$here/link.ld" \
  -I "$CMSIS_NN/Include" -o "$out/edge_layers.elf" \
  "$here/startup.c" "$here/edge_layers.c" "${sources[@]}" -lc -lm
"$here/../insn-count/qemu-counted.sh" "$out/edge_layers.elf"
