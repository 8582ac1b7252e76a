//! fer-edge: the end-to-end tests (`tests/`) and benchmarks (`benches/`) of the FER edge
//! stack. The stages themselves live in `fer-trainer` and `fer-runtime`.

use std::path::PathBuf;

pub use fer_runtime;
pub use fer_trainer;

/// The project's shared data folder (`../shared/data` beside the checkout, or
/// `$FER_SHARED_DATA`), or `None` with a message on stderr when it is absent.
///
/// With `FER_REQUIRE_SHARED=1` (as CI sets it) an absent folder panics instead, so a CI
/// machine without the data fails loudly rather than skipping the end-to-end checks.
pub fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("FER_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "shared data not found at {} (set FER_SHARED_DATA, or place the project's shared/ beside the checkout)",
        dir.display()
    );
    if std::env::var("FER_REQUIRE_SHARED").is_ok_and(|v| v == "1") {
        panic!("{msg}; FER_REQUIRE_SHARED=1 requires it");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// An absolute path to ONNX Runtime's shared library, for `ort`'s load-dynamic.
///
/// `$ORT_DYLIB_PATH` when set; else the one in the PyPI `onnxruntime` wheel of a virtual
/// environment under `~/.cache/fer-edge/venv`, created (`python3 -m venv`, `pip install
/// onnxruntime`) on first use. `None`, with the reason on stderr, when neither works; with
/// `FER_REQUIRE_ORT=1` (as CI sets it) that is a panic instead.
pub fn onnxruntime_library() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return std::path::absolute(PathBuf::from(p)).ok();
    }
    let venv = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/fer-edge/venv");
    let find = || -> Option<PathBuf> {
        let lib = std::fs::read_dir(venv.join("lib")).ok()?.filter_map(Result::ok).next()?.path();
        let capi = lib.join("site-packages/onnxruntime/capi");
        let mut libs: Vec<PathBuf> = std::fs::read_dir(capi)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so")))
            .collect();
        libs.sort();
        libs.pop()
    };
    if let Some(p) = find() {
        return Some(p);
    }
    let run = |cmd: &mut std::process::Command| cmd.status().is_ok_and(|s| s.success());
    let pip = venv.join("bin/pip");
    let installed = (pip.exists()
        || run(std::process::Command::new("python3").arg("-m").arg("venv").arg(&venv)))
        && run(std::process::Command::new(&pip).args(["install", "-q", "onnxruntime"]));
    if installed && let Some(p) = find() {
        return Some(p);
    }
    let msg = format!(
        "ONNX Runtime not found: set ORT_DYLIB_PATH to libonnxruntime.so, or let the tests install the PyPI \
         wheel into {} (needs python3 with venv and pip)",
        venv.display()
    );
    if std::env::var("FER_REQUIRE_ORT").is_ok_and(|v| v == "1") {
        panic!("{msg}; FER_REQUIRE_ORT=1 requires it");
    }
    eprintln!("SKIPPED: {msg}");
    None
}
