//! What can go wrong finding and reading faces.

use std::path::PathBuf;

use crate::backends::BackendError;

#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A model that runs but does not fit its role (its input shape, its outputs).
    #[error("{}: {what}", .path.display())]
    Unfit { path: PathBuf, what: String },
    /// A model that is not a BlazeFace short-range detector (its input, its outputs).
    #[error("{0}")]
    Detector(String),
    /// A frame that cannot be read as its size says.
    #[error("{0}")]
    Frame(String),
    #[error(transparent)]
    FrameSize(#[from] fer_core::vision::frame::FrameError),
    /// Detector outputs that are not BlazeFace's (their sizes).
    #[error(transparent)]
    Outputs(#[from] fer_core::vision::blazeface::OutputsError),
    #[error(transparent)]
    Image(#[from] crate::preprocess::ImageError),
}
