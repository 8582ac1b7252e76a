//! The monitored metric: what "best epoch", early stopping and reduce-on-plateau judge by.

use serde::{Deserialize, Serialize};

use super::metrics::EpochMetrics;

/// Which validation figure to watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Monitored {
    /// Validation accuracy (higher is better).
    ValAcc,
    /// Validation loss (lower is better).
    ValLoss,
    /// Validation balanced accuracy: mean per-class recall (higher is better).
    ValBalancedAcc,
    /// Validation macro-F1 (higher is better).
    ValMacroF1,
}

impl Monitored {
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Monitored::ValLoss)
    }

    pub fn read(self, m: &EpochMetrics) -> f64 {
        match self {
            Monitored::ValAcc => m.val.accuracy,
            Monitored::ValLoss => m.val.loss,
            Monitored::ValBalancedAcc => m.val.balanced_accuracy,
            Monitored::ValMacroF1 => m.val.macro_f1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Monitored::ValAcc => "val_acc",
            Monitored::ValLoss => "val_loss",
            Monitored::ValBalancedAcc => "val_balanced_acc",
            Monitored::ValMacroF1 => "val_macro_f1",
        }
    }
}

/// Tracks the best value of a metric and how long ago it was seen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    pub metric: Monitored,
    /// Smallest change that counts as an improvement (Keras' `min_delta`).
    pub min_delta: f64,
    pub best: Option<f64>,
    /// 0-based epoch of the best value.
    pub best_epoch: Option<usize>,
    pub epochs_since_best: usize,
}

impl Monitor {
    pub fn new(metric: Monitored, min_delta: f64) -> Monitor {
        Monitor { metric, min_delta, best: None, best_epoch: None, epochs_since_best: 0 }
    }

    /// Records `value` for `epoch`; true when it is a new best.
    pub fn update(&mut self, epoch: usize, value: f64) -> bool {
        let better = match self.best {
            None => value.is_finite(),
            Some(b) if self.metric.higher_is_better() => value > b + self.min_delta,
            Some(b) => value < b - self.min_delta,
        };
        if better {
            self.best = Some(value);
            self.best_epoch = Some(epoch);
            self.epochs_since_best = 0;
        } else {
            self.epochs_since_best += 1;
        }
        better
    }
}

/// Stop when the monitored metric has not improved for `patience` epochs. (Restoring the
/// best weights at the end is the run's `restore_best`, early stopping or not.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    pub patience: usize,
}

impl EarlyStopping {
    pub fn should_stop(&self, monitor: &Monitor) -> bool {
        monitor.epochs_since_best >= self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_fires_after_patience_on_a_crafted_metric() {
        let mut m = Monitor::new(Monitored::ValLoss, 1e-3);
        let stop = EarlyStopping { patience: 3 };
        let losses = [1.0, 0.8, 0.7, 0.6995, 0.71, 0.75, 0.9, 0.5];
        let mut stopped_at = None;
        for (e, &l) in losses.iter().enumerate() {
            m.update(e, l);
            if stop.should_stop(&m) {
                stopped_at = Some(e);
                break;
            }
        }
        // 0.6995 is within min_delta of 0.7: not an improvement. Best stays epoch 2.
        assert_eq!(stopped_at, Some(5));
        assert_eq!((m.best, m.best_epoch), (Some(0.7), Some(2)));
    }

    #[test]
    fn higher_is_better_for_accuracy_and_nan_never_improves() {
        let mut m = Monitor::new(Monitored::ValAcc, 0.0);
        assert!(!m.update(0, f64::NAN));
        assert!(m.update(1, 0.5));
        assert!(!m.update(2, f64::NAN));
        assert!(!m.update(3, 0.4));
        assert!(m.update(4, 0.6));
        assert_eq!(m.best_epoch, Some(4));
    }
}
