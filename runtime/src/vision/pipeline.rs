//! `frame -> detect -> align and crop -> classify -> faces`: the one recognition pipeline
//! every command uses. Buffers live in the pipeline and are reused frame after frame.

use std::time::Instant;

use serde::Serialize;

use super::VisionError;
use super::classify::Classifier;
use super::decode::{Detection, KEYPOINTS};
use super::detector::BlazeFace;
pub use super::frame::{CropOptions, crop_of};
use super::frame::{RgbFrame, crop_into};

/// One recognised face.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Face {
    /// `[x, y, w, h]`, frame pixels, top-left corner first.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// Detector confidence in [0, 1] (1 when the whole image was taken as the face).
    pub score: f32,
    /// Right eye, left eye, nose, mouth, right ear, left ear (the subject's), frame pixels.
    pub keypoints: Vec<[f32; 2]>,
    pub label: String,
    pub probabilities: Vec<f32>,
    /// The tracker's id (`fer live`), absent elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track: Option<u64>,
}

impl super::track::Tracked for Face {
    fn bbox(&self) -> [f32; 4] {
        self.bbox
    }
    fn probabilities_mut(&mut self) -> &mut Vec<f32> {
        &mut self.probabilities
    }
    fn set_track(&mut self, id: u64) {
        self.track = Some(id);
    }
}

/// Milliseconds spent per stage on the last frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Timings {
    pub detect_ms: f64,
    pub classify_ms: f64,
}

pub struct Pipeline {
    pub detector: Option<BlazeFace>,
    pub classifier: Classifier,
    pub crop: CropOptions,
    crop_buf: Vec<f32>,
    pub last: Timings,
}

impl Pipeline {
    /// With `detector: None`, every frame is taken as one face (already-cropped images).
    pub fn new(detector: Option<BlazeFace>, classifier: Classifier) -> Pipeline {
        let [c, h, w] = classifier.input_shape();
        Pipeline {
            detector,
            classifier,
            crop: CropOptions::default(),
            crop_buf: vec![0.0; c * h * w],
            last: Timings::default(),
        }
    }

    /// The faces in `frame`, best detection first.
    pub fn faces(&mut self, frame: &RgbFrame) -> Result<Vec<Face>, VisionError> {
        let t0 = Instant::now();
        let detections: Vec<Detection> = match &mut self.detector {
            Some(det) => det.detect(frame)?.to_vec(),
            None => vec![whole_frame(frame)],
        };
        let t1 = Instant::now();
        let [c, h, w] = self.classifier.input_shape();
        let mut faces = Vec::with_capacity(detections.len());
        for d in &detections {
            if self.detector.is_some() {
                crop_into(frame, &crop_of(d, &self.crop), c, h, &mut self.crop_buf);
            } else {
                stretch_into(frame, [c, h, w], &mut self.crop_buf)?;
            }
            let probabilities = self.classifier.classify(&self.crop_buf)?;
            faces.push(Face {
                bbox: d.xywh(),
                score: d.score,
                keypoints: d.keypoints.to_vec(),
                label: self.classifier.label_for(&probabilities),
                probabilities,
                track: None,
            });
        }
        self.last = Timings {
            detect_ms: (t1 - t0).as_secs_f64() * 1e3,
            classify_ms: t1.elapsed().as_secs_f64() * 1e3,
        };
        Ok(faces)
    }
}

/// The whole frame as a detection (for face crops that need no detector).
fn whole_frame(frame: &RgbFrame) -> Detection {
    let (w, h) = (frame.width as f32, frame.height as f32);
    Detection { cx: w / 2.0, cy: h / 2.0, w, h, keypoints: [[w / 2.0, h / 2.0]; KEYPOINTS], score: 1.0 }
}

/// The whole frame resized to the model input, aspect not kept: exactly what the trainer
/// (and `preprocess::image_input`) does with its images.
fn stretch_into(frame: &RgbFrame, shape: [usize; 3], out: &mut [f32]) -> Result<(), VisionError> {
    let img = image::RgbImage::from_raw(frame.width as u32, frame.height as u32, frame.pixels.to_vec())
        .ok_or_else(|| VisionError::Frame("the frame's pixels do not match its size".into()))?;
    let input = crate::preprocess::image_input(image::DynamicImage::ImageRgb8(img), shape)?;
    out.copy_from_slice(&input);
    Ok(())
}
