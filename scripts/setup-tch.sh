#!/usr/bin/env bash
# Installs PyTorch 2.9.0 (the libtorch that burn-tch 0.22 / tch 0.22 build against) into a
# virtual environment and writes the environment a `--features tch` build and run need.
#
#   scripts/setup-tch.sh              # venv in ~/.cache/fer-edge/torch-venv
#   . ~/.cache/fer-edge/torch-venv/tch-env.sh
#   cargo build --release -p fer-trainer --features tch
#   fer-train fit ... --devices libtorch          # or libtorch-cuda:0 on a GPU host
#
# PyPI's x86-64 Linux wheel is the CUDA 12 build (about 4 GB with its nvidia-* packages):
# the same libraries train on the CPU here and on a GPU host. torch-sys finds the headers and
# libraries through `python` (LIBTORCH_USE_PYTORCH=1); at run time the binary needs
# torch/lib on the library path (libtorch_cuda.so finds the nvidia libraries itself).
set -euo pipefail

VENV="${FER_TORCH_VENV:-$HOME/.cache/fer-edge/torch-venv}"
TORCH_VERSION=2.9.0

[ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
if ! "$VENV/bin/python" -W ignore -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "installing torch==$TORCH_VERSION into $VENV (about 4 GB)..." >&2
  "$VENV/bin/pip" install -q --progress-bar off "torch==$TORCH_VERSION"
fi

TORCH_LIB="$("$VENV/bin/python" -W ignore -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
cat > "$VENV/tch-env.sh" <<EOF
# Written by scripts/setup-tch.sh: the environment of a \`--features tch\` build and run.
export LIBTORCH_USE_PYTORCH=1
export VIRTUAL_ENV="$VENV"
export PATH="$VENV/bin:\$PATH"
export LD_LIBRARY_PATH="$TORCH_LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF
echo "$VENV/tch-env.sh"
