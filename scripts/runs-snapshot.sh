#!/usr/bin/env bash
# Commits a training run folder (~/.cache/fer-edge/runs/NAME: recipe, checkpoints, log) to
# the branch runs/NAME of this repository, so that a later session on a fresh machine can
# resume it: `git worktree add /tmp/r runs/NAME && cp -r /tmp/r/NAME ~/.cache/fer-edge/runs/`,
# then the folder's run.sh. The binary copy (fer-train) is left out: rebuild it.
#   scripts/runs-snapshot.sh NAME
set -euo pipefail
NAME="$1"
SRC="$HOME/.cache/fer-edge/runs/$NAME"
[ -d "$SRC" ] || { echo "$SRC: no such run" >&2; exit 1; }
REPO="$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)"
WT="$(mktemp -d)"
trap 'git -C "$REPO" worktree remove --force "$WT" >/dev/null 2>&1 || true' EXIT
if git -C "$REPO" rev-parse -q --verify "refs/heads/runs/$NAME" >/dev/null; then
  git -C "$REPO" worktree add -q "$WT" "runs/$NAME"
else
  git -C "$REPO" worktree add -q --orphan -b "runs/$NAME" "$WT"
fi
rm -rf "${WT:?}/$NAME"
mkdir -p "$WT/$NAME"
# Checkpoints are written whole and swapped in by rename; copy what is there now.
(cd "$SRC" && find . -type f ! -name fer-train ! -path './work/*.tmp/*' -print0 | xargs -0 cp --parents -t "$WT/$NAME")
git -C "$WT" add -A
git -C "$WT" -c user.name="${GIT_AUTHOR_NAME:-fer-edge}" -c user.email="${GIT_AUTHOR_EMAIL:-fer-edge@localhost}" \
  commit -q -m "runs/$NAME: $(tail -n 1 "$SRC/log.txt" | cut -c1-120)" || true
git -C "$REPO" log --oneline -1 "runs/$NAME"
