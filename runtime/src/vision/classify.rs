//! The expression classifier behind any backend: its input shape and class names, softmax
//! probabilities, and optional mirror test-time augmentation.

use std::path::Path;

use super::VisionError;
use crate::backends::{Backend, BackendKind};

pub struct Classifier {
    backend: Box<dyn Backend>,
    shape: [usize; 3],
    pub labels: Vec<String>,
    /// Average the probabilities of the face and its mirror image.
    pub flip_tta: bool,
    /// Answer [`UNSURE`] when the top probability is below this.
    pub unsure_below: Option<f32>,
    mirrored: Vec<f32>,
}

pub use crate::scores::UNSURE;

/// Class names from a `.fer` (its label table) or an ONNX file (`fer.labels` metadata),
/// else the FER2013 order.
fn labels_of(path: &Path, bytes: &[u8], classes: usize) -> Vec<String> {
    let listed: Option<Vec<String>> = if crate::backends::is_fer(path) {
        let aligned = crate::format::AlignedBytes::new(bytes);
        crate::format::Model::new_unchecked_crc(aligned.as_slice())
            .ok()
            .and_then(|m| serde_json::from_str(m.labels_json()).ok())
    } else {
        crate::onnx::read_onnx(bytes)
            .ok()
            .and_then(|g| g.metadata("fer.labels").and_then(|s| serde_json::from_str(s).ok()))
    };
    match listed {
        Some(l) if l.len() == classes => l,
        _ => (0..classes)
            .map(|i| crate::labels::ALL_CLASSES.get(i).map_or_else(|| format!("class{i}"), |s| s.to_string()))
            .collect(),
    }
}

impl Classifier {
    /// The classifier in `path` on the engine `kind` names ([`BackendKind::open`]).
    pub fn load(path: &Path, kind: BackendKind) -> Result<Classifier, VisionError> {
        let bytes = std::fs::read(path)
            .map_err(|source| crate::backends::BackendError::Read { path: path.into(), source })?;
        Classifier::new(kind.open(path)?, path, &bytes)
    }

    fn new(mut backend: Box<dyn Backend>, path: &Path, bytes: &[u8]) -> Result<Classifier, VisionError> {
        let shape = backend.input_shape();
        let unfit = |what: String| VisionError::Unfit { path: path.into(), what };
        if !matches!(shape[0], 1 | 3) || shape[1] == 0 || shape[2] == 0 {
            return Err(unfit(format!(
                "the pipeline feeds gray or RGB images; this model takes {shape:?} [C, H, W]"
            )));
        }
        // One dry run tells the number of classes (and that the model runs at all).
        let classes =
            backend.infer(&vec![0.0; shape.iter().product()]).map_err(|e| unfit(e.to_string()))?.len();
        Ok(Classifier {
            labels: labels_of(path, bytes, classes),
            backend,
            shape,
            flip_tta: false,
            unsure_below: None,
            mirrored: Vec::new(),
        })
    }

    pub fn name(&self) -> String {
        self.backend.name()
    }

    /// `[C, H, W]` of the crops this model takes.
    pub fn input_shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Class probabilities for one crop (`[C, H, W]` in [0, 1]).
    pub fn classify(&mut self, crop: &[f32]) -> Result<Vec<f32>, VisionError> {
        let mut p = softmax(&self.backend.infer(crop)?);
        if self.flip_tta {
            mirror_into(crop, self.shape[2], &mut self.mirrored);
            average_into(&mut p, &softmax(&self.backend.infer(&self.mirrored)?));
        }
        Ok(p)
    }
}

impl Classifier {
    /// The label for `probabilities`: the top class's, or [`UNSURE`] below `unsure_below`.
    pub fn label_for(&self, probabilities: &[f32]) -> String {
        crate::scores::label_for(&self.labels, probabilities, self.unsure_below).to_string()
    }
}

/// Test-time flip, first half: each row of a `[C, H, W]` image of width `w` mirrored into
/// `out` (resized to fit).
pub fn mirror_into(image: &[f32], w: usize, out: &mut Vec<f32>) {
    out.clear();
    out.extend(image.chunks(w).flat_map(|row| row.iter().rev()));
}

/// Test-time flip, second half: the face's probabilities `p` averaged with its mirror
/// image's `q`.
pub fn average_into(p: &mut [f32], q: &[f32]) {
    for (a, b) in p.iter_mut().zip(q) {
        *a = (*a + b) / 2.0;
    }
}

/// Probabilities from logits. Our models end in logits (`fer.output`); a model that already
/// ends in a softmax gives the same arg-max either way.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let mut p = vec![0.0; logits.len()];
    crate::scores::softmax_into(logits, &mut p);
    p
}

pub use crate::scores::argmax;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let p = softmax(&[1.0, 3.0, 2.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(argmax(&p), 1);
        assert!(softmax(&[1000.0, 0.0])[0] > 0.999, "no overflow on large logits");
    }
}
