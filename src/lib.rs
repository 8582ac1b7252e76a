//! fer-edge: the end-to-end tests (`tests/`) and benchmarks (`benches/`) of the FER edge
//! stack. The stages themselves live in `fer-trainer` and `fer-runtime`.

use std::path::PathBuf;

pub use fer_runtime;
pub use fer_trainer;

pub use fer_runtime::testdata::shared_data;

/// The project's Python tools environment: `~/.cache/fer-edge/venv`, created with
/// `python3 -m venv` and given `packages` with pip when they do not import yet. `None`, with
/// the reason on stderr, when that fails; with `FER_REQUIRE_ONNX_TOOLS=1` (as CI sets it) a
/// panic instead.
pub fn venv_python(packages: &[&str]) -> Option<PathBuf> {
    use std::process::Command;
    let venv = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/fer-edge/venv");
    let python = venv.join("bin/python");
    let ok = |cmd: &mut Command| cmd.output().is_ok_and(|o| o.status.success());
    let imports = |p: &str| ok(Command::new(&python).args(["-c", &format!("import {p}")]));
    let ready = (python.exists() || ok(Command::new("python3").arg("-m").arg("venv").arg(&venv)))
        && packages
            .iter()
            .all(|p| imports(p) || ok(Command::new(venv.join("bin/pip")).args(["install", "-q", p])));
    if ready {
        return Some(python);
    }
    missing_tool(&format!(
        "could not prepare {} with {} (needs python3 with venv and pip, and the package index)",
        venv.display(),
        packages.join(", ")
    ))
}

fn missing_tool<T>(msg: &str) -> Option<T> {
    if std::env::var("FER_REQUIRE_ONNX_TOOLS").is_ok_and(|v| v == "1") {
        panic!("{msg}; FER_REQUIRE_ONNX_TOOLS=1 requires it");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// An absolute path to ONNX Runtime's shared library, for `ort`'s load-dynamic:
/// `$ORT_DYLIB_PATH` when set, else the PyPI `onnxruntime` wheel's, installed into
/// [`venv_python`]'s environment when missing and found there as the runtime finds it
/// ([`fer_runtime::backends::onnxruntime_library`]).
pub fn onnxruntime_library() -> Option<PathBuf> {
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        venv_python(&["onnxruntime"])?;
    }
    match fer_runtime::backends::onnxruntime_library() {
        Ok(lib) => Some(lib),
        Err(e) => missing_tool(&e.to_string()),
    }
}

/// Models and images the end-to-end tests build for themselves.
pub mod testing {
    use burn::prelude::*;
    use fer_trainer::data::ImageSpec;
    use fer_trainer::model::{FerModel, ModelConfig, ModelKind};
    use fer_trainer::train::checkpoint::ModelCard;
    use fer_trainer::train::metrics::SetMetrics;

    /// A model whose BatchNorm running statistics are not the identity: a few training-mode
    /// passes over random batches move them.
    pub fn model(kind: ModelKind, device: &Device) -> (FerModel, ModelCard) {
        let config = ModelConfig::builtin(kind, ImageSpec::FER48_GRAY, 7, 0.5);
        let ad = device.clone().autodiff();
        ad.seed(11);
        let m = config.init(&ad);
        for _ in 0..3 {
            let x = Tensor::<4>::random([4, 1, 48, 48], burn::tensor::Distribution::Uniform(0.0, 1.0), &ad);
            let _ = m.forward(x);
        }
        (m.valid(), ModelCard::new(config, 1, SetMetrics::default()))
    }

    /// `n` 48x48 gray images in [0, 1] with face-like structure (smooth blobs and edges at
    /// seeded positions), so activations spread as they do on real faces.
    pub fn images(n: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f32 / (1u64 << 53) as f32
        };
        (0..n)
            .map(|_| {
                let blobs: Vec<[f32; 4]> = (0..6)
                    .map(|_| [next() * 48.0, next() * 48.0, 3.0 + next() * 10.0, next() * 2.0 - 1.0])
                    .collect();
                let base = next() * 0.5 + 0.25;
                (0..48 * 48)
                    .map(|i| {
                        let (y, x) = ((i / 48) as f32, (i % 48) as f32);
                        let v = blobs.iter().fold(base, |acc, [by, bx, r, a]| {
                            let d2 = (y - by).powi(2) + (x - bx).powi(2);
                            acc + a * 0.3 * (-d2 / (r * r)).exp()
                        });
                        (v + 0.05 * (next() - 0.5)).clamp(0.0, 1.0)
                    })
                    .collect()
            })
            .collect()
    }
}
