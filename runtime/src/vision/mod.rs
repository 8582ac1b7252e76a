//! Faces in frames: the BlazeFace detector's anchors and decoding, letterboxing and the
//! aligned face crop, the classifier, the pipeline that chains them, and the tracker that
//! follows faces across frames.

pub mod anchors;
pub mod classify;
pub mod decode;
pub mod detector;
pub mod draw;
mod error;
pub mod frame;
pub mod pipeline;
pub mod track;

pub use classify::Classifier;
pub use decode::Detection;
pub use detector::BlazeFace;
pub use draw::draw_faces;
pub use error::VisionError;
pub use frame::RgbFrame;
pub use pipeline::{Face, Pipeline};
