#!/usr/bin/env bash
# Runs a command at idle priority, for the long background jobs (training, fuzzing) that
# share the machine with builds:
#
#   scripts/idle.sh COMMAND [ARGS...]
#
# `nice 19` alone is not enough on Linux with autogroup scheduling (the default on desktop
# and many server kernels): the CPU is first shared between sessions, so a niced job in its
# own session still takes half a 2-core machine from a build in another one. This runs the
# command in a session of its own whose group is at nice 19 too (so that the caller's
# session is not lowered), in SCHED_IDLE where `chrt` allows it. Ctrl-C, TERM and HUP are
# passed on to the command; its exit status is this script's.
#
# A job at idle priority can wait a long time for a CPU: wall-clock time limits inside it
# (libFuzzer's -timeout) must allow for that (scripts/fuzz-campaign.sh does).
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

if [ -z "${FER_IDLE_SESSION:-}" ]; then
  # As a background job of this non-interactive script, setsid's child is not a group
  # leader, so setsid does not fork: $child leads the new session and its process group.
  FER_IDLE_SESSION=1 setsid "$0" "$@" &
  child=$!
  trap 'kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null || true' INT TERM HUP
  rc=0
  while :; do
    wait "$child" && rc=0 || rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  exit "$rc"
fi
unset FER_IDLE_SESSION
# Only this new session's group; absent (no autogroup) or read-only is fine.
{ echo 19 > /proc/self/autogroup; } 2>/dev/null || true
if command -v chrt >/dev/null && chrt --idle 0 true 2>/dev/null; then
  exec chrt --idle 0 nice -n 19 "$@"
fi
exec nice -n 19 "$@"
