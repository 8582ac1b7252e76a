//! The one inference seam: every model the app runs, classifier or detector, runs here,
//! behind [`Backend`]:
//!
//! - [`Own`]: the own int8 engine on a `.fer` model (the default);
//! - [`F32Eval`]: the runtime's own f32 evaluator on a float ONNX model (slow, needs
//!   nothing else);
//! - `Tract`: tract-onnx, f32 (feature `tract`);
//! - [`Ort`]: ONNX Runtime, int8 QDQ or f32, loaded at run time from `libonnxruntime.so`
//!   (feature `ort`); with [`oracle`], the engine's op-by-op oracle in tests.
//!
//! [`BackendKind`] names them for the command line, with `auto` choosing by file.

mod error;
mod f32_eval;
#[cfg(feature = "ort")]
pub mod oracle;
#[cfg(feature = "ort")]
mod ort;
mod own;
#[cfg(feature = "tract")]
mod tract;

use std::path::Path;

pub use error::BackendError;
pub use f32_eval::F32Eval;
#[cfg(feature = "ort")]
pub use ort::{Ort, onnxruntime_library};
pub use own::Own;
#[cfg(feature = "tract")]
pub use tract::Tract;

/// A model loaded on one engine: `[C, H, W]` floats in, every output out.
pub trait Backend {
    fn name(&self) -> String;
    /// `[C, H, W]` of the input `run` takes.
    fn input_shape(&self) -> [usize; 3];
    /// How the model's input is made from pixels: `pixel * scale + offset`, one pair for
    /// every channel or one per channel (from the `.fer`, or the ONNX file's `fer.input_*`
    /// metadata; pixel / 255 when it has none).
    fn input_map(&self) -> &[(f32, f32)];
    /// Runs one input, already as the model takes it, and fills `outputs`: one buffer per
    /// model output in the model's order, resized to fit (they keep their capacity from
    /// call to call).
    fn run(&mut self, input: &[f32], outputs: &mut Vec<Vec<f32>>) -> Result<(), BackendError>;

    /// One image of pixels / 255 (`[C, H, W]`, as the pipeline crops them), mapped to the
    /// model's input by [`input_map`](Self::input_map), to the model's first output.
    fn infer(&mut self, image: &[f32]) -> Result<Vec<f32>, BackendError> {
        let mut buf = Vec::new();
        let input = mapped(image, self.input_map(), &mut buf);
        let mut outputs = Vec::new();
        self.run(input, &mut outputs)?;
        Ok(outputs.into_iter().next().unwrap_or_default())
    }
}

/// Which engine runs a model file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// By the file: the own int8 engine for .fer; for .onnx tract when built in, else the
    /// own f32 evaluator (the detector prefers ONNX Runtime, see `fer predict --help`).
    Auto,
    /// The own int8 engine (.fer models).
    Own,
    /// tract-onnx, f32 (.onnx models; builds with the `tract` feature).
    Tract,
    /// ONNX Runtime (.onnx models: f32, or int8 for a QDQ model; libonnxruntime.so from
    /// ORT_DYLIB_PATH or the tools venv).
    Ort,
    /// The runtime's own f32 evaluator (.onnx models; slow, needs nothing).
    Eval,
}

impl BackendKind {
    /// What [`Auto`](BackendKind::Auto) is for `path`: `own` for `.fer` files; for float
    /// ONNX, tract when built in, else the own f32 evaluator (neither needs a shared
    /// library). Any other kind is itself.
    pub fn for_path(self, path: &Path) -> BackendKind {
        match self {
            BackendKind::Auto if is_fer(path) => BackendKind::Own,
            BackendKind::Auto if cfg!(feature = "tract") => BackendKind::Tract,
            BackendKind::Auto => BackendKind::Eval,
            kind => kind,
        }
    }

    /// Loads `path` on this engine (`Auto` as [`for_path`](Self::for_path) says). A `.fer`
    /// file on a float engine, or an ONNX file on the own engine, is refused by name.
    pub fn open(self, path: &Path) -> Result<Box<dyn Backend>, BackendError> {
        let kind = self.for_path(path);
        if is_fer(path) != (kind == BackendKind::Own) {
            return Err(BackendError::WrongKind {
                path: path.into(),
                kind: kind.name(),
                runs: if kind == BackendKind::Own { ".fer" } else { ".onnx" },
            });
        }
        Ok(match kind {
            BackendKind::Own | BackendKind::Auto => Box::new(Own::load(path)?),
            BackendKind::Eval => Box::new(F32Eval::load(path)?),
            #[cfg(feature = "tract")]
            BackendKind::Tract => Box::new(Tract::load(path)?),
            #[cfg(feature = "ort")]
            BackendKind::Ort => Box::new(Ort::load(path, "ONNX Runtime")?),
            #[allow(unreachable_patterns)]
            other => return Err(BackendError::NotBuilt { kind: other.name() }),
        })
    }

    /// The name the command line takes (`own`, `tract`, ...).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Own => "own",
            BackendKind::Tract => "tract",
            BackendKind::Ort => "ort",
            BackendKind::Eval => "eval",
        }
    }
}

/// Whether `path` names an int8 `.fer` model (by its extension, as the command line does).
pub fn is_fer(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("fer"))
}

/// The pipeline's image (`[C, H, W]`, `pixel / 255`) as a model taking `map` wants it:
/// mapped in `buf`, or the image itself for `pixel / 255`.
fn mapped<'a>(image: &'a [f32], map: &[(f32, f32)], buf: &'a mut Vec<f32>) -> &'a [f32] {
    if crate::preprocess::is_pixel_over_255(map) {
        return image;
    }
    buf.clear();
    buf.extend_from_slice(image);
    crate::preprocess::apply_input_map(buf, map);
    buf
}

/// A float ONNX model's input map (`fer.input_*` metadata), named in the error.
fn onnx_input_map(metadata: &[(String, String)], path: &Path) -> Result<Vec<(f32, f32)>, BackendError> {
    Ok(crate::onnx::graph::metadata_input_map(metadata)
        .map_err(|source| BackendError::Onnx { path: path.into(), source })?
        .unwrap_or_else(|| vec![crate::format::DEFAULT_INPUT_MAP]))
}

/// A model file's bytes, named in the error.
fn read(path: &Path) -> Result<Vec<u8>, BackendError> {
    std::fs::read(path).map_err(|source| BackendError::Read { path: path.into(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_extension() {
        assert_eq!(BackendKind::Auto.for_path(Path::new("m.FER")), BackendKind::Own);
        let float = if cfg!(feature = "tract") { BackendKind::Tract } else { BackendKind::Eval };
        assert_eq!(BackendKind::Auto.for_path(Path::new("m.onnx")), float);
        assert_eq!(BackendKind::Ort.for_path(Path::new("m.onnx")), BackendKind::Ort);
    }

    #[test]
    fn a_model_on_the_wrong_engine_is_refused_by_name() {
        let e = BackendKind::Own.open(Path::new("m.onnx")).err().unwrap().to_string();
        assert_eq!(e, "m.onnx: the own backend runs .fer models");
        let e = BackendKind::Eval.open(Path::new("m.fer")).err().unwrap().to_string();
        assert_eq!(e, "m.fer: the eval backend runs .onnx models");
    }
}
