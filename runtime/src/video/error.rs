//! What stops frames from coming, naming the file, folder or device at fault. (A single
//! damaged frame is not an error: it arrives as a frame whose image is `Err(why)`, skipped
//! and counted.)

use std::path::PathBuf;

use crate::preprocess::ImageError;

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("{}: {source}", .path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// A path given to replay that holds no frames it can play.
    #[error("{}: {what}", .path.display())]
    NoFrames { path: PathBuf, what: &'static str },
    #[error("nothing to replay: give images, folders or .mjpeg files")]
    Nothing,
    #[error(transparent)]
    Folder(#[from] ImageError),
    /// A camera that would not list or open, with what to do about it.
    #[error("{0}")]
    Camera(String),
    /// A device lost for longer than the backoff allows.
    #[error("{name} was lost ({lost}) and did not come back in {secs:.0} s of retries (last error: {last})")]
    Lost { name: String, lost: String, secs: f64, last: String },
}
