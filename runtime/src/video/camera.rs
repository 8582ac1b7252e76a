//! Webcam capture with nokhwa (feature `camera`; on Linux its V4L2 backend, whose bindings
//! are generated with libclang at build time). Frames arrive as MJPEG (decoded here with
//! `image`, as replayed clips are) or YUYV/NV12/gray (converted by nokhwa), and leave as RGB.

use nokhwa::Camera;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};
use serde::Serialize;

use super::VideoError;
use super::capture::Capture;
use super::replay::decode_jpeg;

/// A camera the system lists.
#[derive(Clone, Debug, Serialize)]
pub struct CameraInfo {
    /// What `--camera` takes.
    pub index: String,
    pub name: String,
    pub description: String,
}

/// The cameras the native backend sees (V4L2 on Linux: `/dev/video*`).
pub fn list() -> Result<Vec<CameraInfo>, VideoError> {
    let cams =
        nokhwa::query(ApiBackend::Auto).map_err(|e| VideoError::Camera(format!("listing cameras: {e}")))?;
    Ok(cams
        .into_iter()
        .map(|c| CameraInfo {
            index: c.index().to_string(),
            name: c.human_name(),
            description: c.description().to_string(),
        })
        .collect())
}

/// What to ask the camera for; it gives the closest mode it has.
#[derive(Clone, Copy, Debug)]
pub struct CameraRequest {
    pub index: u32,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// An open camera, streaming.
pub struct CameraStream {
    camera: Camera,
}

/// The error for a camera that would not open, with what to do about it.
fn open_error(req: &CameraRequest, e: &nokhwa::NokhwaError) -> VideoError {
    let text = e.to_string();
    let hint = if text.contains("busy") || text.contains("os error 16") {
        "another program is using it; close that program or pick another camera"
    } else if text.contains("ermission") || text.contains("os error 13") {
        "no permission: add yourself to the `video` group (then log in again)"
    } else {
        "check that it is plugged in; `fer live --list-cameras` lists the cameras"
    };
    VideoError::Camera(format!("camera {}: {text} ({hint})", req.index))
}

impl CameraStream {
    /// Opens camera `req.index` and starts its stream. A missing index is named together
    /// with the cameras that exist.
    pub fn open(req: CameraRequest) -> Result<CameraStream, VideoError> {
        let cams = list()?;
        if !cams.iter().any(|c| c.index == req.index.to_string()) {
            let found: Vec<String> = cams.iter().map(|c| format!("{} ({})", c.index, c.name)).collect();
            return Err(VideoError::Camera(if found.is_empty() {
                format!("camera {}: no camera found on this machine", req.index)
            } else {
                format!("camera {}: no such camera; found {}", req.index, found.join(", "))
            }));
        }
        let wanted = CameraFormat::new_from(req.width, req.height, FrameFormat::MJPEG, req.fps);
        let format = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(wanted));
        let mut camera =
            Camera::new(CameraIndex::Index(req.index), format).map_err(|e| open_error(&req, &e))?;
        camera.open_stream().map_err(|e| open_error(&req, &e))?;
        Ok(CameraStream { camera })
    }

    /// The mode the camera agreed to, e.g. `640x480 MJPEG @ 30 fps`.
    pub fn mode(&self) -> String {
        let f = self.camera.camera_format();
        format!(
            "{}x{} {} @ {} fps",
            f.resolution().width(),
            f.resolution().height(),
            f.format(),
            f.frame_rate()
        )
    }
}

impl Capture for CameraStream {
    fn grab(&mut self) -> Result<Result<image::RgbImage, String>, String> {
        // A failed read means the device is gone or wedged: the caller reopens it.
        let buffer = self.camera.frame().map_err(|e| e.to_string())?;
        let image = match buffer.source_frame_format() {
            FrameFormat::MJPEG => decode_jpeg(buffer.buffer()).map_err(|e| format!("MJPEG frame: {e}")),
            _ => buffer.decode_image::<RgbFormat>().map_err(|e| e.to_string()),
        };
        Ok(image)
    }
}
