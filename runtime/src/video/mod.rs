//! Where frames come from: replayed image folders and MJPEG stream files (so everything
//! is testable without a camera), decoded to RGB one at a time.

pub mod replay;

pub use replay::{Replay, ReplayFrame};
