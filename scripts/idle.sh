#!/usr/bin/env bash
# Runs a command at idle priority, for the long background jobs (training, fuzzing) that
# share the machine with builds:
#
#   scripts/idle.sh COMMAND [ARGS...]
#
# `nice 19` alone is not enough on Linux with autogroup scheduling (the default on desktop
# and many server kernels): the CPU is first shared between sessions, so a niced job in its
# own session still takes half a 2-core machine from a build in another one. This puts the
# session's group at nice 19 too, and the command in SCHED_IDLE where `chrt` allows it.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
# A session of its own, so that only this job's group is lowered, not the caller's.
if [ "$(ps -o sid= -p $$ | tr -d ' ')" != "$$" ]; then exec setsid -w "$0" "$@"; fi
echo 19 > /proc/self/autogroup 2>/dev/null || true
if command -v chrt >/dev/null && chrt --idle 0 true 2>/dev/null; then
  exec chrt --idle 0 nice -n 19 "$@"
fi
exec nice -n 19 "$@"
