//! fer-web: the face-expression recognizer of `fer predict` and `fer live`, in the browser.
//!
//! The shipped int8 models (`models/blazeface_short.fer`, `models/edge.fer`) are inside
//! the WebAssembly, and run on the same `no_std` core as the native app: the same
//! letterbox, decoding, crop, int8 kernels (SIMD128 when the browser has it), softmax and
//! tracker. Given the same frame pixels, the faces are the native app's to the bit.
//!
//! [`Recognizer`] is the Rust API (the native tests drive it); [`WebRecognizer`] is what
//! JavaScript sees (`web/fer.js` wraps it as `recognize(imageData) -> faces`).

use fer_core::engine::Engine;
use fer_core::format::{Model, apply_input_map, is_pixel_over_255};
use fer_core::overlay::{RgbBuffer, draw_face_at};
use fer_core::scores::softmax_into;
use fer_core::vision::blazeface::{Decoder, INPUT};
use fer_core::vision::decode::{Detection, KEYPOINTS};
use fer_core::vision::frame::{CropOptions, RgbFrame, crop_into, crop_of};
use fer_core::vision::track::{Tracked, Tracker, TrackerOptions};
use wasm_bindgen::prelude::*;

/// Model bytes at the 16-byte alignment the `.fer` loader needs.
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static DETECTOR: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/blazeface_short.fer"));
static CLASSIFIER: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/edge.fer"));

/// One model on the engine, with its arena and input map.
struct Net {
    engine: Engine<'static>,
    arena: Vec<u8>,
    input_map: Vec<(f32, f32)>,
    mapped: Vec<f32>,
}

impl Net {
    fn load(bytes: &'static [u8], what: &str) -> Result<Net, String> {
        let model = Model::new(bytes).map_err(|e| format!("{what}: {e}"))?;
        let input_map = (0..model.input_map_len()).map(|k| model.input_map_at(k)).collect();
        let engine = Engine::with_best_kernels(model);
        Ok(Net { arena: vec![0; engine.arena_size()], engine, input_map, mapped: Vec::new() })
    }

    fn shape(&self) -> [usize; 3] {
        self.engine.input().shape
    }

    /// Every output of `input`, already as the model takes it (the detector's).
    fn run(&mut self, input: &[f32], outputs: &mut Vec<Vec<f32>>) -> Result<(), String> {
        self.engine.infer_into(&mut self.arena, input, outputs).map_err(|e| e.to_string())
    }

    /// Probabilities of a crop of pixels / 255, mapped to the model's input as the native
    /// classifier maps it.
    fn classify(&mut self, crop: &[f32]) -> Result<Vec<f32>, String> {
        let input = if is_pixel_over_255(&self.input_map) {
            crop
        } else {
            self.mapped.clear();
            self.mapped.extend_from_slice(crop);
            apply_input_map(&mut self.mapped, &self.input_map);
            &self.mapped
        };
        let logits = self.engine.infer(&mut self.arena, input).map_err(|e| e.to_string())?;
        let mut p = vec![0.0; logits.len()];
        softmax_into(&logits, &mut p);
        Ok(p)
    }
}

/// One recognised face, in frame pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Face {
    /// `[x, y, w, h]`, top-left corner first.
    pub bbox: [f32; 4],
    pub score: f32,
    pub keypoints: [[f32; 2]; KEYPOINTS],
    pub probabilities: Vec<f32>,
    /// The tracker's id ([`Recognizer::track`]), `None` from [`Recognizer::recognize`].
    pub track: Option<u64>,
}

impl Tracked for Face {
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

/// The detector and the classifier with everything they reuse from frame to frame.
pub struct Recognizer {
    detector: Net,
    classifier: Net,
    decoder: Decoder,
    pub crop: CropOptions,
    tracker: Tracker,
    labels: Vec<String>,
    rgb: Vec<u8>,
    input: Vec<f32>,
    outputs: Vec<Vec<f32>>,
    crop_buf: Vec<f32>,
    detections: Vec<Detection>,
}

impl Recognizer {
    /// The shipped models, checked (their checksums too) and ready.
    pub fn new() -> Result<Recognizer, String> {
        let detector = Net::load(&DETECTOR.0, "blazeface_short.fer")?;
        let classifier = Net::load(&CLASSIFIER.0, "edge.fer")?;
        if detector.shape() != [3, INPUT, INPUT] {
            return Err(format!("blazeface_short.fer takes {:?}", detector.shape()));
        }
        let labels = labels_of(&classifier);
        let [c, h, w] = classifier.shape();
        Ok(Recognizer {
            detector,
            classifier,
            decoder: Decoder::short_range(),
            crop: CropOptions::default(),
            tracker: Tracker::new(TrackerOptions::default()),
            labels,
            rgb: Vec::new(),
            input: vec![0.0; 3 * INPUT * INPUT],
            outputs: Vec::new(),
            crop_buf: vec![0.0; c * h * w],
            detections: Vec::new(),
        })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The int8 kernel set the engine runs (`simd128` or `reference`).
    pub fn kernels(&self) -> &'static str {
        fer_core::kernels::best().name()
    }

    /// Stage one: the faces in an RGBA frame (a canvas's `ImageData`), best first; returns
    /// how many. The frame stays for [`classify`](Self::classify).
    pub fn detect(&mut self, rgba: &[u8], width: usize, height: usize) -> Result<usize, String> {
        if width == 0 || height == 0 || rgba.len() != width * height * 4 {
            return Err(format!(
                "a {width}x{height} RGBA frame needs {} bytes, got {}",
                width * height * 4,
                rgba.len()
            ));
        }
        self.rgb.clear();
        self.rgb.extend(rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]));
        self.detect_rgb(width, height)
    }

    /// [`detect`](Self::detect) on the RGB frame already in `self.rgb`.
    fn detect_rgb(&mut self, width: usize, height: usize) -> Result<usize, String> {
        let frame = RgbFrame::new(width, height, &self.rgb).map_err(|e| e.to_string())?;
        let lb = Decoder::input(&frame, &mut self.input);
        self.detector.run(&self.input, &mut self.outputs)?;
        let found = self.decoder.faces(&self.outputs, &lb).map_err(|e| e.to_string())?;
        self.detections.clear();
        self.detections.extend_from_slice(found);
        Ok(self.detections.len())
    }

    /// Stage two: each face `detect` found, cropped, aligned and classified.
    pub fn classify(&mut self, width: usize, height: usize) -> Result<Vec<Face>, String> {
        let frame = RgbFrame::new(width, height, &self.rgb).map_err(|e| e.to_string())?;
        let [c, h, _] = self.classifier.shape();
        let mut faces = Vec::with_capacity(self.detections.len());
        for d in &self.detections {
            crop_into(&frame, &crop_of(d, &self.crop), c, h, &mut self.crop_buf);
            let probabilities = self.classifier.classify(&self.crop_buf)?;
            faces.push(Face {
                bbox: d.xywh(),
                score: d.score,
                keypoints: d.keypoints,
                probabilities,
                track: None,
            });
        }
        Ok(faces)
    }

    /// Probabilities of an image already at the classifier's input size (`fer eval`'s
    /// crops): 8-bit pixels, `[H, W]` gray or `[H, W, 3]` RGB, scaled to [0, 1].
    pub fn classify_image(&mut self, pixels: &[u8]) -> Result<Vec<f32>, String> {
        let [c, h, w] = self.classifier.shape();
        if pixels.len() != c * h * w {
            return Err(format!("the classifier takes {h}x{w}x{c} pixels, got {} bytes", pixels.len()));
        }
        let plane = h * w;
        for (i, &v) in pixels.iter().enumerate() {
            // HWC in, CHW out.
            self.crop_buf[(i % c) * plane + i / c] = v as f32 / 255.0;
        }
        self.classifier.classify(&self.crop_buf)
    }

    /// The faces of an RGB frame (`width * height * 3` bytes), as `fer predict` finds them.
    pub fn recognize_rgb(&mut self, rgb: &[u8], width: usize, height: usize) -> Result<Vec<Face>, String> {
        self.rgb.clear();
        self.rgb.extend_from_slice(rgb);
        self.detect_rgb(width, height)?;
        self.classify(width, height)
    }

    /// Faces followed across calls, as `fer live` follows them: ids, and probabilities
    /// smoothed per track.
    pub fn track(&mut self, mut faces: Vec<Face>) -> Vec<Face> {
        self.tracker.update(&mut faces);
        faces
    }

    /// The frame in `self.rgb` with `faces` drawn on it, as RGBA.
    pub fn draw(&mut self, faces: &[Face], width: usize, height: usize) -> Vec<u8> {
        let labels: Vec<&str> = self.labels.iter().map(String::as_str).collect();
        if let Some(mut target) = RgbBuffer::new(width as u32, height as u32, &mut self.rgb) {
            for f in faces {
                let _ = draw_face_at(&mut target, f.bbox, &f.keypoints, &labels, &f.probabilities);
            }
        }
        self.rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect()
    }

    /// The top class's label, or `unsure` when its probability is under `unsure_below`.
    pub fn label(&self, probabilities: &[f32], unsure_below: Option<f32>) -> String {
        fer_core::scores::label_for(&self.labels, probabilities, unsure_below).to_string()
    }
}

/// The classifier's label table, else the FER2013 order.
fn labels_of(net: &Net) -> Vec<String> {
    let classes = net.engine.output().len();
    let listed = parse_label_json(net.engine.model.labels_json());
    match listed {
        Some(l) if l.len() == classes => l,
        _ => (0..classes)
            .map(|i| {
                fer_core::labels::ALL_CLASSES.get(i).map_or_else(|| format!("class{i}"), |s| s.to_string())
            })
            .collect(),
    }
}

/// `["angry","disgust",...]`: the `.fer` label table (plain names, no escapes).
fn parse_label_json(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    inner.split(',').map(|s| s.trim().strip_prefix('"')?.strip_suffix('"').map(str::to_string)).collect()
}

/// Values per face in [`WebRecognizer::classify`]'s flat array, for `classes` classes:
/// box (4), score, keypoints (12), probabilities, track id (-1: none).
pub fn face_stride(classes: usize) -> usize {
    4 + 1 + 2 * KEYPOINTS + classes + 1
}

fn flatten(faces: &[Face], out: &mut Vec<f32>) {
    out.clear();
    for f in faces {
        out.extend_from_slice(&f.bbox);
        out.push(f.score);
        out.extend(f.keypoints.iter().flatten());
        out.extend_from_slice(&f.probabilities);
        out.push(f.track.map_or(-1.0, |t| t as f32));
    }
}

/// The recognizer as JavaScript sees it (see `web/fer.js`).
#[wasm_bindgen]
pub struct WebRecognizer {
    inner: Recognizer,
    size: (usize, usize),
    /// The last `classify`'s faces, for `draw`.
    faces: Vec<Face>,
}

#[wasm_bindgen]
impl WebRecognizer {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Result<WebRecognizer, JsError> {
        Ok(WebRecognizer {
            inner: Recognizer::new().map_err(|e| JsError::new(&e))?,
            size: (0, 0),
            faces: Vec::new(),
        })
    }

    pub fn labels(&self) -> Vec<String> {
        self.inner.labels().to_vec()
    }

    pub fn kernels(&self) -> String {
        self.inner.kernels().into()
    }

    #[wasm_bindgen(js_name = faceStride)]
    pub fn face_stride(&self) -> usize {
        face_stride(self.inner.labels().len())
    }

    /// Finds the faces of an RGBA frame (`ImageData.data`); returns how many.
    pub fn detect(&mut self, rgba: &[u8], width: usize, height: usize) -> Result<usize, JsError> {
        self.size = (width, height);
        self.inner.detect(rgba, width, height).map_err(|e| JsError::new(&e))
    }

    /// Classifies the faces `detect` found, `track`ed across calls or not: a flat array of
    /// `faceStride()` values per face.
    pub fn classify(&mut self, track: bool) -> Result<Vec<f32>, JsError> {
        let faces = self.inner.classify(self.size.0, self.size.1).map_err(|e| JsError::new(&e))?;
        self.faces = if track { self.inner.track(faces) } else { faces };
        let mut out = Vec::new();
        flatten(&self.faces, &mut out);
        Ok(out)
    }

    /// Probabilities of one face image already at the model's input size (`fer eval`'s
    /// 48x48 crops): 8-bit gray (or RGB) pixels.
    #[wasm_bindgen(js_name = classifyImage)]
    pub fn classify_image(&mut self, pixels: &[u8]) -> Result<Vec<f32>, JsError> {
        self.inner.classify_image(pixels).map_err(|e| JsError::new(&e))
    }

    /// The last frame `detect` read, as RGBA, with the last `classify`'s faces drawn as
    /// `fer live` draws them (the core's overlay: box, keypoints, label, probability bars).
    pub fn draw(&mut self) -> Vec<u8> {
        self.inner.draw(&self.faces, self.size.0, self.size.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_table_parses_and_unsure_takes_the_threshold() {
        assert_eq!(parse_label_json(r#"["a", "b"]"#), Some(vec!["a".into(), "b".into()]));
        assert_eq!(parse_label_json("not json"), None);
        let r = Recognizer::new().unwrap();
        assert_eq!(r.labels().len(), 7);
        assert_eq!(r.labels()[3], "happy");
        let p = [0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1];
        assert_eq!(r.label(&p, None), "happy");
        assert_eq!(r.label(&p, Some(0.5)), "unsure");
        assert_eq!(r.label(&p, Some(0.4)), "happy");
    }

    #[test]
    fn a_frame_of_the_wrong_size_is_an_error() {
        let mut r = Recognizer::new().unwrap();
        let err = r.detect(&[0; 10], 4, 4).unwrap_err();
        assert!(err.contains("4x4 RGBA frame needs 64 bytes, got 10"), "{err}");
    }

    #[test]
    fn flat_faces_have_the_stride() {
        let f = Face {
            bbox: [1.0; 4],
            score: 0.5,
            keypoints: [[2.0; 2]; KEYPOINTS],
            probabilities: vec![0.1; 7],
            track: Some(3),
        };
        let mut out = Vec::new();
        flatten(&[f.clone(), f], &mut out);
        assert_eq!(out.len(), 2 * face_stride(7));
        assert_eq!(out[face_stride(7) - 1], 3.0);
    }
}
