//! Confidence a user can trust: temperature scaling (Guo et al. 2017) fitted on the run's
//! validation split, the expected calibration error (ECE) and reliability bins before and
//! after, and what an `unsure` threshold trades (coverage against accuracy).
//!
//! The temperature is baked into the model: the classifier's weights and bias are divided
//! by it, so every engine (ONNX Runtime, tract, the int8 engine, the firmware, the browser)
//! gives calibrated probabilities with no change, and the arg-max stays the same.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use serde::Serialize;

use super::fit::TrainError;
use super::loader::{Item, Loader};
use crate::model::FerModel;
use crate::model::sequential::Layer;

/// Equal-width confidence bins of the ECE and the reliability diagram.
pub const BINS: usize = 10;

/// A model's logits on a set of images, with their true classes.
#[derive(Clone, Debug)]
pub struct Logits {
    pub classes: usize,
    pub logits: Vec<f32>,
    pub targets: Vec<u8>,
}

impl Logits {
    /// `model`'s logits on `indices` of `loader` (evaluation mode, no augmentation).
    pub fn of(
        model: &FerModel,
        loader: &Loader,
        indices: &[usize],
        classes: usize,
        device: &Device,
    ) -> Result<Logits, TrainError> {
        let items: Vec<Item> = indices.iter().map(|&i| (i, 1.0)).collect();
        let mut out = Logits { classes, logits: Vec::new(), targets: Vec::new() };
        for batch in loader.stream(items, 256, None, 0) {
            let batch = batch.map_err(TrainError::Io)?;
            let x = super::fit::input_tensor(&batch, loader.spec, 0..batch.len, device);
            out.logits.extend(model.forward(x).into_data().iter::<f32>());
            out.targets.extend(batch.targets.iter().map(|&t| t as u8));
        }
        Ok(out)
    }

    /// Each image's probabilities at temperature `t`.
    fn probabilities(&self, t: f64) -> impl Iterator<Item = (Vec<f32>, usize)> + '_ {
        self.logits.chunks_exact(self.classes).zip(&self.targets).map(move |(z, &y)| {
            let scaled: Vec<f32> = z.iter().map(|v| (*v as f64 / t) as f32).collect();
            (fer_runtime::vision::classify::softmax(&scaled), y as usize)
        })
    }

    /// Mean negative log-likelihood at temperature `t`.
    pub fn nll(&self, t: f64) -> f64 {
        let mut sum = 0.0;
        for (z, &y) in self.logits.chunks_exact(self.classes).zip(&self.targets) {
            let max = z.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64 / t;
            let lse = max + z.iter().map(|&v| (v as f64 / t - max).exp()).sum::<f64>().ln();
            sum += lse - z[y as usize] as f64 / t;
        }
        sum / self.targets.len().max(1) as f64
    }
}

/// The temperature that minimises the NLL of `val`: golden-section search on 1/T in
/// [0.05, 20], where the NLL is convex (log-sum-exp of a linear function, less a linear one).
pub fn fit_temperature(val: &Logits) -> f64 {
    let nll = |beta: f64| val.nll(1.0 / beta);
    let (mut a, mut b) = (0.05f64, 20.0f64);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (nll(c), nll(d));
    while b - a > 1e-5 {
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - g * (b - a);
            fc = nll(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + g * (b - a);
            fd = nll(d);
        }
    }
    2.0 / (a + b)
}

/// One confidence bin: images whose top probability falls in `[lo, hi)`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub images: usize,
    pub mean_confidence: f64,
    pub accuracy: f64,
}

/// Reliability of the top class at temperature `t`: bins, and their ECE (the bins' gap
/// between confidence and accuracy, weighted by their share of the images).
#[derive(Clone, Debug, Serialize)]
pub struct Reliability {
    pub temperature: f64,
    pub ece: f64,
    pub nll: f64,
    pub bins: Vec<Bin>,
}

pub fn reliability(set: &Logits, t: f64) -> Reliability {
    let mut sums = vec![(0usize, 0f64, 0usize); BINS];
    for (p, y) in set.probabilities(t) {
        let top = fer_runtime::scores::argmax(&p);
        let bin = ((p[top] as f64 * BINS as f64) as usize).min(BINS - 1);
        sums[bin].0 += 1;
        sums[bin].1 += p[top] as f64;
        sums[bin].2 += usize::from(top == y);
    }
    let n = set.targets.len().max(1) as f64;
    let bins: Vec<Bin> = sums
        .iter()
        .enumerate()
        .map(|(k, &(images, conf, right))| Bin {
            lo: k as f64 / BINS as f64,
            hi: (k + 1) as f64 / BINS as f64,
            images,
            mean_confidence: if images == 0 { 0.0 } else { conf / images as f64 },
            accuracy: if images == 0 { 0.0 } else { right as f64 / images as f64 },
        })
        .collect();
    let ece = bins.iter().map(|b| b.images as f64 / n * (b.mean_confidence - b.accuracy).abs()).sum();
    Reliability { temperature: t, ece, nll: set.nll(t), bins }
}

/// What answering `unsure` below `threshold` does: the share of images still answered,
/// and the accuracy on those.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Coverage {
    pub threshold: f64,
    pub coverage: f64,
    pub accuracy: f64,
}

pub fn coverage(set: &Logits, t: f64, thresholds: &[f64]) -> Vec<Coverage> {
    let tops: Vec<(f32, bool)> = set
        .probabilities(t)
        .map(|(p, y)| {
            let top = fer_runtime::scores::argmax(&p);
            (p[top], top == y)
        })
        .collect();
    thresholds
        .iter()
        .map(|&threshold| {
            let kept: Vec<bool> =
                tops.iter().filter(|(p, _)| *p as f64 >= threshold).map(|&(_, right)| right).collect();
            Coverage {
                threshold,
                coverage: kept.len() as f64 / tops.len().max(1) as f64,
                accuracy: kept.iter().filter(|&&r| r).count() as f64 / kept.len().max(1) as f64,
            }
        })
        .collect()
}

/// The classifier layer whose weights and bias make the logits.
fn classifier(model: &mut FerModel) -> Option<&mut Linear> {
    match model {
        FerModel::Baseline(m) => Some(&mut m.fc2),
        FerModel::Edge(m) => Some(&mut m.fc),
        FerModel::Large(m) => Some(&mut m.fc2),
        FerModel::Imported(m) => match m.layers.last_mut() {
            Some(Layer::Dense(l)) => Some(l),
            _ => None,
        },
    }
}

/// `model` whose logits are divided by `t` (its classifier's weights and bias are).
pub fn bake_temperature(mut model: FerModel, t: f64) -> Result<FerModel, String> {
    let fc = classifier(&mut model).ok_or("the model does not end in a dense layer: no temperature baked")?;
    let scale = (1.0 / t) as f32;
    fc.weight = Param::from_tensor(fc.weight.val() * scale);
    fc.bias = fc.bias.take().map(|b| Param::from_tensor(b.val() * scale));
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits of an over-confident classifier: right 70% of the time, with a margin that
    /// softmax turns into ~99% confidence.
    fn overconfident(n: usize) -> Logits {
        let classes = 4;
        let mut logits = Vec::new();
        let mut targets = Vec::new();
        for i in 0..n {
            let y = i % classes;
            let predicted = if i % 10 < 7 { y } else { (y + 1) % classes };
            logits.extend((0..classes).map(|c| if c == predicted { 6.0 } else { 0.0 }));
            targets.push(y as u8);
        }
        Logits { classes, logits, targets }
    }

    #[test]
    fn temperature_scaling_brings_confidence_to_accuracy() {
        let set = overconfident(200);
        let before = reliability(&set, 1.0);
        assert!(before.ece > 0.25, "over-confident: {before:?}");
        let t = fit_temperature(&set);
        assert!(t > 1.0, "softens: T = {t}");
        let after = reliability(&set, t);
        assert!(after.ece < 0.02, "calibrated: {after:?}");
        // Its confidence is then the accuracy: one bin holds every image at ~0.7.
        let full: Vec<&Bin> = after.bins.iter().filter(|b| b.images > 0).collect();
        assert_eq!(full.len(), 1);
        assert!((full[0].mean_confidence - 0.7).abs() < 0.01, "{full:?}");
        // The NLL minimum: the closed form for one confident class of k, p = 0.7.
        let p_top = |t: f64| 1.0 / (1.0 + 3.0 * (-6.0 / t).exp());
        assert!((p_top(t) - 0.7).abs() < 1e-3, "T = {t}");
        assert!(set.nll(t) <= set.nll(t * 1.05) && set.nll(t) <= set.nll(t / 1.05));
    }

    #[test]
    fn coverage_trades_answers_for_accuracy() {
        let classes = 2;
        // Two confident right answers, two unsure wrong ones.
        let set = Logits {
            classes,
            logits: vec![4.0, 0.0, 0.0, 4.0, 0.2, 0.0, 0.0, 0.2],
            targets: vec![0, 1, 1, 0],
        };
        let rows = coverage(&set, 1.0, &[0.0, 0.9]);
        assert_eq!(rows[0], Coverage { threshold: 0.0, coverage: 1.0, accuracy: 0.5 });
        assert_eq!(rows[1], Coverage { threshold: 0.9, coverage: 0.5, accuracy: 1.0 });
    }

    #[test]
    fn a_baked_temperature_divides_the_logits() {
        let device = Device::flex();
        let spec = crate::data::ImageSpec { width: 16, height: 16, channels: 1 };
        for kind in [crate::model::ModelKind::Edge, crate::model::ModelKind::Baseline] {
            let config = crate::model::ModelConfig::builtin(kind, spec, 7, 0.1);
            let model = config.init(&device);
            let x = Tensor::<4>::ones([2, 1, 16, 16], &device) * 0.5;
            let before: Vec<f32> = model.valid().forward(x.clone()).into_data().iter::<f32>().collect();
            let baked = bake_temperature(model, 2.5).unwrap();
            let after: Vec<f32> = baked.valid().forward(x).into_data().iter::<f32>().collect();
            for (b, a) in before.iter().zip(&after) {
                assert!((b / 2.5 - a).abs() < 1e-4 * (1.0 + b.abs()), "{kind:?}: {b} / 2.5 vs {a}");
            }
        }
    }
}
