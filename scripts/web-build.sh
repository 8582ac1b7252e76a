#!/usr/bin/env bash
# Builds the browser recognizer (docs/web.md): the fer-web crate to WebAssembly twice, a
# scalar build (web/pkg, any browser) and a SIMD128 build (web/pkg-simd), each with its
# JavaScript glue from wasm-bindgen-cli pinned to the crate's wasm-bindgen version.
#
#   scripts/web-build.sh          # then: python3 -m http.server -d web 8080
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
WASM_BINDGEN=0.2.130 # = web/Cargo.toml's wasm-bindgen

if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN\$"; then
  echo "installing wasm-bindgen-cli $WASM_BINDGEN..." >&2
  cargo install -q wasm-bindgen-cli --version "=$WASM_BINDGEN"
fi
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

cargo build -q -p fer-web --release --target wasm32-unknown-unknown
# The SIMD128 build in its own target folder, so the two builds do not evict each other.
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128" \
  cargo build -q -p fer-web --release --target wasm32-unknown-unknown --target-dir "$TARGET_DIR/simd"

wasm-bindgen --target web --out-name fer --out-dir web/pkg "$TARGET_DIR/wasm32-unknown-unknown/release/fer_web.wasm"
wasm-bindgen --target web --out-name fer --out-dir web/pkg-simd "$TARGET_DIR/simd/wasm32-unknown-unknown/release/fer_web.wasm"
for d in web/pkg web/pkg-simd; do
  echo "$d: $(stat -c %s "$d/fer_bg.wasm") bytes of WebAssembly" >&2
done
