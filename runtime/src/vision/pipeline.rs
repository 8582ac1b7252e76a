//! `frame -> detect -> align and crop -> classify -> faces`: the one recognition pipeline
//! every command uses. Buffers live in the pipeline and are reused frame after frame.

use std::time::Instant;

use serde::Serialize;

use super::VisionError;
use super::classify::Classifier;
use super::decode::{Detection, KEYPOINTS};
use super::detector::BlazeFace;
use super::frame::{Crop, RgbFrame, crop_into};

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

/// How a detection becomes the square the classifier sees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropOptions {
    /// Side = the box's larger side times (1 + margin).
    pub margin: f32,
    /// Centre moved down by this fraction of the box height (negative: up).
    pub shift_down: f32,
    /// Rotate so that the eyes are level.
    pub align: bool,
}

/// The defaults frame a face as FER2013 does. BlazeFace run on the 3,589 `public_test` crops
/// finds a face in 3,254; its median box is 41.6 of the 48 pixels, centred 3.3 pixels below
/// the crop's centre: FER2013's crop is 1.15 box sides wide, centred 8% of the box height
/// above the box's centre (`scripts/crop-calibration.sh` measures it).
impl Default for CropOptions {
    fn default() -> Self {
        CropOptions { margin: 0.15, shift_down: -0.08, align: true }
    }
}

/// The crop of a detection (frame pixels).
pub fn crop_of(d: &Detection, o: &CropOptions) -> Crop {
    let [right_eye, left_eye] = [d.keypoints[0], d.keypoints[1]];
    let angle = if o.align { (left_eye[1] - right_eye[1]).atan2(left_eye[0] - right_eye[0]) } else { 0.0 };
    // A profile face can put both eyes on one point; atan2(0, 0) is 0, fine.
    let angle = if angle.is_finite() { angle } else { 0.0 };
    Crop { cx: d.cx, cy: d.cy + o.shift_down * d.h, side: d.w.max(d.h) * (1.0 + o.margin), angle }
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
