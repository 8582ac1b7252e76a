//! What can go wrong loading or running a model, each naming the file or engine at fault.

use std::path::PathBuf;

use crate::engine::EngineError;
use crate::format::FormatError;
use crate::onnx::OnnxError;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{}: {source}", .path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// A `.fer` file that does not load (bad magic, checksum, offsets...).
    #[error("{}: {source}", .path.display())]
    Format { path: PathBuf, source: FormatError },
    /// An ONNX file the runtime's reader does not take.
    #[error("{}: {source}", .path.display())]
    Onnx { path: PathBuf, source: OnnxError },
    /// A model that loads but does not fit its use (its input, outputs or metadata).
    #[error("{}: {what}", .path.display())]
    Unfit { path: PathBuf, what: String },
    #[error("{}: the {kind} backend runs {runs} models", .path.display())]
    WrongKind { path: PathBuf, kind: &'static str, runs: &'static str },
    #[error("this build of the runtime has no {kind} backend (cargo feature `{kind}`)")]
    NotBuilt { kind: &'static str },
    /// The own engine refused a run (arena or input size).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The own f32 evaluator failed on a run.
    #[error(transparent)]
    Eval(#[from] OnnxError),
    /// ONNX Runtime or tract: not found, failed to load a model, or failed on a run.
    #[error("{engine}: {message}")]
    Peer { engine: &'static str, message: String },
}

impl BackendError {
    /// An error of a second engine (`engine`: "ONNX Runtime", "tract"), with its message.
    pub fn peer(engine: &'static str, e: impl std::fmt::Display) -> BackendError {
        BackendError::Peer { engine, message: e.to_string() }
    }
}
