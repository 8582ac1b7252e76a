//! Faces in frames: the BlazeFace detector, the classifier, the pipeline that chains them,
//! and the tracker that follows faces across frames. The detector's anchors and decoding,
//! the letterbox and the aligned face crop come from `fer_core::vision`.

pub mod classify;
pub mod detector;
pub mod draw;
mod error;
pub mod pipeline;

// The arithmetic every target shares lives in the no_std core (the browser build runs it).
pub use fer_core::vision::{anchors, decode, frame, track};

pub use classify::Classifier;
pub use decode::Detection;
pub use detector::BlazeFace;
pub use draw::draw_faces;
pub use error::VisionError;
pub use frame::RgbFrame;
pub use pipeline::{Face, Pipeline};
