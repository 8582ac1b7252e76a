//! Classification metrics, plain and balanced, from a confusion matrix.

use serde::{Deserialize, Serialize};

// The confusion matrix lives in the runtime, which `fer eval` shares with the trainer.
pub use fer_runtime::metrics::Confusion;

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
