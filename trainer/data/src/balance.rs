//! Balancing per class and per subject: sample weights, class weights for the loss, and a
//! seeded weighted sampler.
//!
//! Balance the training side only: validation and test sets keep their natural
//! distribution, and the trainer reports balanced metrics (balanced accuracy, macro-F1)
//! beside plain accuracy instead of resampling them.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::split::class_map;
use super::{ALL_CLASSES, Dataset};

/// What to even out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BalanceBy {
    /// Every class carries the same total weight.
    Class,
    /// Every subject carries the same total weight (no prolific subject dominates).
    Subject,
    /// Classes carry equal weight, and within a class every subject does.
    ClassAndSubject,
}

/// How the weights act in training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BalanceMode {
    /// Draw each epoch's images with replacement, in proportion to their weights.
    Sampler,
    /// Keep the natural order; scale each image's loss by its weight.
    LossWeights,
}

/// Per-sample weights over `indices` (same order), with mean 1.
pub fn sample_weights(ds: &Dataset, indices: &[usize], by: BalanceBy) -> Result<Vec<f64>, String> {
    let n = indices.len();
    if n == 0 {
        return Err("nothing to balance: the training side is empty".into());
    }
    let class_of = |i: usize| ds.samples[i].class as usize;
    let counts = ds.class_counts(indices.iter().copied());
    let k = counts.iter().filter(|&&c| c > 0).count() as f64;
    let no_subject = indices.iter().find(|&&i| ds.samples[i].subject.is_none());
    if let (true, Some(&i)) = (by != BalanceBy::Class, no_subject) {
        return Err(format!(
            "balancing by subject needs a subject for every image; {} has none (set --subject-regex)",
            ds.sample_path(&ds.samples[i])
        ));
    }
    let subject_of = |i: usize| ds.samples[i].subject.expect("checked above") as usize;
    let n_f = n as f64;
    Ok(match by {
        BalanceBy::Class => indices.iter().map(|&i| n_f / (k * counts[class_of(i)] as f64)).collect(),
        BalanceBy::Subject => {
            let mut per_subject = vec![0usize; ds.subjects.len()];
            for &i in indices {
                per_subject[subject_of(i)] += 1;
            }
            let s = per_subject.iter().filter(|&&c| c > 0).count() as f64;
            indices.iter().map(|&i| n_f / (s * per_subject[subject_of(i)] as f64)).collect()
        }
        BalanceBy::ClassAndSubject => {
            // cell[(subject, class)] = images; subjects_in_class[c] = subjects with class c.
            let mut cell = std::collections::HashMap::<(usize, usize), usize>::new();
            for &i in indices {
                *cell.entry((subject_of(i), class_of(i))).or_default() += 1;
            }
            let mut subjects_in_class = [0usize; 8];
            for &(_, c) in cell.keys() {
                subjects_in_class[c] += 1;
            }
            indices
                .iter()
                .map(|&i| {
                    let c = class_of(i);
                    n_f / (k * subjects_in_class[c] as f64 * cell[&(subject_of(i), c)] as f64)
                })
                .collect()
        }
    })
}

/// Loss weights per class (scikit-learn's "balanced": n / (classes * n_c)); 0 for a class
/// with no training images. `n_classes` entries.
pub fn class_weights(counts: &[usize; 8], n_classes: usize) -> Vec<f32> {
    let n: usize = counts[..n_classes].iter().sum();
    let k = counts[..n_classes].iter().filter(|&&c| c > 0).count();
    counts[..n_classes].iter().map(|&c| if c == 0 { 0.0 } else { n as f32 / (k * c) as f32 }).collect()
}

/// Draws sample indices with replacement in proportion to their weights.
#[derive(Clone, Debug)]
pub struct WeightedSampler {
    indices: Vec<usize>,
    cumulative: Vec<f64>,
}

impl WeightedSampler {
    pub fn new(indices: Vec<usize>, weights: &[f64]) -> Result<WeightedSampler, String> {
        if indices.len() != weights.len() || indices.is_empty() {
            return Err("the sampler needs one weight per image, and at least one image".into());
        }
        let mut total = 0.0;
        let mut cumulative = Vec::with_capacity(weights.len());
        for &w in weights {
            if !(w.is_finite() && w >= 0.0) {
                return Err(format!("weight {w} is not a finite non-negative number"));
            }
            total += w;
            cumulative.push(total);
        }
        if total <= 0.0 {
            return Err("all weights are zero".into());
        }
        Ok(WeightedSampler { indices, cumulative })
    }

    /// `count` draws (one epoch is usually as many draws as images).
    pub fn draw<R: rand::Rng + ?Sized>(&self, count: usize, rng: &mut R) -> Vec<usize> {
        let total = *self.cumulative.last().expect("non-empty");
        (0..count)
            .map(|_| {
                let x = rng.random::<f64>() * total;
                let pos = self.cumulative.partition_point(|&c| c <= x).min(self.indices.len() - 1);
                self.indices[pos]
            })
            .collect()
    }
}

/// What balancing does to the training side, for the split report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BalanceReport {
    pub by: BalanceBy,
    pub mode: BalanceMode,
    pub images: usize,
    /// Class name -> images on the training side.
    pub class_counts: serde_json::Map<String, serde_json::Value>,
    /// Class name -> share of the total weight after balancing (what the model sees).
    pub effective_share: serde_json::Map<String, serde_json::Value>,
    /// Loss weight per class (for `loss-weights` with `class`).
    pub class_weights: serde_json::Map<String, serde_json::Value>,
    pub weight_min: f64,
    pub weight_max: f64,
    /// With the sampler: how often, on average, the most up-weighted image is drawn per epoch.
    pub max_expected_draws_per_epoch: f64,
}

pub fn report(
    ds: &Dataset,
    indices: &[usize],
    by: BalanceBy,
    mode: BalanceMode,
) -> Result<BalanceReport, String> {
    let weights = sample_weights(ds, indices, by)?;
    let n_classes = super::split::reported_classes(ds);
    let counts = ds.class_counts(indices.iter().copied());
    let mut mass = [0f64; 8];
    for (&i, &w) in indices.iter().zip(&weights) {
        mass[ds.samples[i].class as usize] += w;
    }
    let total: f64 = mass.iter().sum();
    let round4 = |x: f64| (x * 1e4).round() / 1e4;
    let effective_share = ALL_CLASSES[..n_classes]
        .iter()
        .zip(mass)
        .map(|(name, m)| (name.to_string(), round4(m / total).into()))
        .collect();
    let cw = class_weights(&counts, n_classes);
    let class_weights = ALL_CLASSES[..n_classes]
        .iter()
        .zip(cw)
        .map(|(name, w)| (name.to_string(), round4(w as f64).into()))
        .collect();
    let weight_min = weights.iter().copied().fold(f64::INFINITY, f64::min);
    let weight_max = weights.iter().copied().fold(0.0, f64::max);
    Ok(BalanceReport {
        by,
        mode,
        images: indices.len(),
        class_counts: class_map(&counts, n_classes),
        effective_share,
        class_weights,
        weight_min: round4(weight_min),
        weight_max: round4(weight_max),
        max_expected_draws_per_epoch: round4(weight_max * indices.len() as f64 / total),
    })
}
