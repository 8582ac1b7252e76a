//! Where frames come from: replayed image folders and MJPEG stream files (so everything
//! is testable without a camera), MJPEG streams read from a pipe as they arrive, and cameras (feature `camera`), decoded to RGB one at a
//! time. A camera is read through [`capture::Reconnecting`], which reopens it when it fails.

#[cfg(feature = "camera")]
pub mod camera;
pub mod capture;
mod error;
pub mod replay;
pub mod stream;

pub use capture::{Backoff, Capture, Reconnecting};
pub use error::VideoError;
pub use replay::{Frame, Replay};
pub use stream::MjpegStream;
