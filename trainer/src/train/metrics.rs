//! Classification metrics, plain and balanced, from a confusion matrix.

use serde::{Deserialize, Serialize};

/// `counts[target][predicted]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Confusion {
    pub counts: Vec<Vec<u64>>,
}

impl Confusion {
    pub fn new(classes: usize) -> Confusion {
        Confusion { counts: vec![vec![0; classes]; classes] }
    }

    pub fn add(&mut self, target: usize, predicted: usize) {
        self.counts[target][predicted] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Recall of each class with images (None for a class absent from the targets).
    pub fn recalls(&self) -> Vec<Option<f64>> {
        self.counts
            .iter()
            .enumerate()
            .map(|(c, row)| {
                let n: u64 = row.iter().sum();
                (n > 0).then(|| row[c] as f64 / n as f64)
            })
            .collect()
    }

    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.counts.len()).map(|c| self.counts[c][c]).sum();
        correct as f64 / self.total().max(1) as f64
    }

    /// Mean recall over the classes present in the targets.
    pub fn balanced_accuracy(&self) -> f64 {
        let r: Vec<f64> = self.recalls().into_iter().flatten().collect();
        if r.is_empty() { 0.0 } else { r.iter().sum::<f64>() / r.len() as f64 }
    }

    /// Mean F1 over the classes present in the targets (a class never predicted scores 0).
    pub fn macro_f1(&self) -> f64 {
        let k = self.counts.len();
        let mut f1s = Vec::new();
        for c in 0..k {
            let support: u64 = self.counts[c].iter().sum();
            if support == 0 {
                continue;
            }
            let predicted: u64 = (0..k).map(|t| self.counts[t][c]).sum();
            let tp = self.counts[c][c] as f64;
            let f1 = if predicted == 0 || tp == 0.0 {
                0.0
            } else {
                let (p, r) = (tp / predicted as f64, tp / support as f64);
                2.0 * p * r / (p + r)
            };
            f1s.push(f1);
        }
        if f1s.is_empty() { 0.0 } else { f1s.iter().sum::<f64>() / f1s.len() as f64 }
    }
}

/// Loss and metrics of one pass over a set of images.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SetMetrics {
    pub images: u64,
    pub loss: f64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub macro_f1: f64,
    /// Per class, `null` when the class has no images here.
    pub per_class_recall: Vec<Option<f64>>,
}

impl SetMetrics {
    pub fn from_confusion(loss_sum: f64, c: &Confusion) -> SetMetrics {
        let images = c.total();
        SetMetrics {
            images,
            loss: loss_sum / images.max(1) as f64,
            accuracy: c.accuracy(),
            balanced_accuracy: c.balanced_accuracy(),
            macro_f1: c.macro_f1(),
            per_class_recall: c.recalls(),
        }
    }
}

/// One row of metrics.csv.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based, as printed.
    pub epoch: usize,
    pub lr: f64,
    /// Measured during training: augmented images, dropout active (as Keras reports it).
    pub train: SetMetrics,
    pub val: SetMetrics,
    /// Validation scored with the training augmentation (when enabled), to explain a
    /// validation-above-training gap.
    pub val_augmented: Option<SetMetrics>,
    pub seconds: f64,
    pub train_images_per_second: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_balanced_metrics() {
        let mut c = Confusion::new(3);
        // class 0: 8 images, 7 right; class 1: 2 images, 0 right; class 2: none.
        for _ in 0..7 {
            c.add(0, 0);
        }
        c.add(0, 1);
        c.add(1, 0);
        c.add(1, 0);
        assert!((c.accuracy() - 0.7).abs() < 1e-12);
        assert!((c.balanced_accuracy() - (7.0 / 8.0 + 0.0) / 2.0).abs() < 1e-12);
        assert_eq!(c.recalls(), vec![Some(0.875), Some(0.0), None]);
        // class 0: p = 7/9, r = 7/8; class 1: tp 0 -> 0.
        let f0 = 2.0 * (7.0 / 9.0) * (7.0 / 8.0) / (7.0 / 9.0 + 7.0 / 8.0);
        assert!((c.macro_f1() - f0 / 2.0).abs() < 1e-12);
        let m = SetMetrics::from_confusion(5.0, &c);
        assert_eq!(m.images, 10);
        assert!((m.loss - 0.5).abs() < 1e-12);
    }
}
