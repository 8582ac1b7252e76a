//! The expression classifier behind any backend: its input shape and class names, softmax
//! probabilities, and optional mirror test-time augmentation.

use std::path::Path;

use crate::backends::Backend;

/// Which engine runs a model file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// The own int8 engine (`.fer`).
    Own,
    /// tract-onnx, f32 (`.onnx`; feature `tract`).
    Tract,
    /// ONNX Runtime (`.onnx`: f32, or int8 for a QDQ model; feature `ort`).
    Ort,
    /// The runtime's own f32 evaluator (`.onnx`; always there, slow).
    Eval,
}

impl BackendKind {
    /// `own` for `.fer` files; for float ONNX, tract when built in, else the own f32
    /// evaluator (neither needs a shared library).
    pub fn for_path(path: &Path) -> BackendKind {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("fer")) {
            BackendKind::Own
        } else if cfg!(feature = "tract") {
            BackendKind::Tract
        } else {
            BackendKind::Eval
        }
    }
}

pub struct Classifier {
    backend: Box<dyn Backend>,
    shape: [usize; 3],
    pub labels: Vec<String>,
    /// Average the probabilities of the face and its mirror image.
    pub flip_tta: bool,
    mirrored: Vec<f32>,
}

/// Class names from a `.fer` (its label table) or an ONNX file (`fer.labels` metadata),
/// else the FER2013 order.
fn labels_of(path: &Path, bytes: &[u8], classes: usize) -> Vec<String> {
    let listed: Option<Vec<String>> = if BackendKind::for_path(path) == BackendKind::Own {
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
    pub fn load(path: &Path, kind: BackendKind) -> Result<Classifier, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let backend: Box<dyn Backend> = match kind {
            BackendKind::Own => Box::new(crate::backends::Own::load(path)?),
            BackendKind::Eval => Box::new(crate::backends::F32Eval::load(path)?),
            #[cfg(feature = "tract")]
            BackendKind::Tract => Box::new(crate::backends::Tract::load(path)?),
            #[cfg(feature = "ort")]
            BackendKind::Ort => Box::new(crate::backends::Ort::load(path, "ONNX Runtime")?),
            #[allow(unreachable_patterns)]
            other => {
                return Err(format!(
                    "{}: this build of the runtime has no {other:?} backend (cargo feature `{}`)",
                    path.display(),
                    format!("{other:?}").to_lowercase()
                ));
            }
        };
        Classifier::new(backend, path, &bytes)
    }

    fn new(mut backend: Box<dyn Backend>, path: &Path, bytes: &[u8]) -> Result<Classifier, String> {
        let shape = backend.input_shape();
        if !matches!(shape[0], 1 | 3) || shape[1] == 0 || shape[2] == 0 {
            return Err(format!(
                "{}: the pipeline feeds gray or RGB images; this model takes {shape:?} [C, H, W]",
                path.display()
            ));
        }
        // One dry run tells the number of classes (and that the model runs at all).
        let classes = backend
            .infer(&vec![0.0; shape.iter().product()])
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        Ok(Classifier {
            labels: labels_of(path, bytes, classes),
            backend,
            shape,
            flip_tta: false,
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
    pub fn classify(&mut self, crop: &[f32]) -> Result<Vec<f32>, String> {
        let mut p = softmax(&self.backend.infer(crop)?);
        if self.flip_tta {
            let [c, h, w] = self.shape;
            self.mirrored.resize(c * h * w, 0.0);
            for (src, dst) in crop.chunks(w).zip(self.mirrored.chunks_mut(w)) {
                for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = *s;
                }
            }
            let q = softmax(&self.backend.infer(&self.mirrored)?);
            for (a, b) in p.iter_mut().zip(q) {
                *a = (*a + b) / 2.0;
            }
        }
        Ok(p)
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

    #[test]
    fn backend_follows_the_extension() {
        assert_eq!(BackendKind::for_path(Path::new("m.FER")), BackendKind::Own);
        let float = if cfg!(feature = "tract") { BackendKind::Tract } else { BackendKind::Eval };
        assert_eq!(BackendKind::for_path(Path::new("m.onnx")), float);
    }
}
