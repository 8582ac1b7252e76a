//! Learning-rate schedules: constant, step decay, cosine, reduce-on-plateau; with linear
//! warm-up in front of any of them.
//!
//! Kept here rather than on burn's `LrScheduler`: that trait's `step()` takes no metric, so
//! reduce-on-plateau cannot be one, and one small type for all four keeps the state that a
//! resumed run must restore in one place.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        every: usize,
        gamma: f64,
    },
    /// Cosine from the base rate down to `min_lr` over the run.
    Cosine {
        min_lr: f64,
    },
    /// Multiply by `factor` when the monitored metric has not improved for `patience`
    /// epochs, then wait `cooldown` epochs; never below `min_lr`.
    Plateau {
        factor: f64,
        patience: usize,
        cooldown: usize,
        min_lr: f64,
    },
}

/// The schedule with its state (what a resumed run restores).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub base_lr: f64,
    pub warmup_epochs: usize,
    pub epochs: usize,
    pub schedule: Schedule,
    /// Plateau: the current rate, epochs without improvement, cooldown left.
    pub plateau_lr: f64,
    pub bad_epochs: usize,
    pub cooldown_left: usize,
}

impl LrSchedule {
    pub fn new(
        base_lr: f64,
        warmup_epochs: usize,
        epochs: usize,
        schedule: Schedule,
    ) -> Result<LrSchedule, String> {
        if !(base_lr.is_finite() && base_lr > 0.0) {
            return Err(format!("learning rate must be positive, got {base_lr}"));
        }
        match schedule {
            Schedule::Step { every: 0, .. } => return Err("step schedule: `every` must be at least 1".into()),
            Schedule::Step { gamma, .. } | Schedule::Plateau { factor: gamma, .. }
                if !(gamma > 0.0 && gamma < 1.0) =>
            {
                return Err(format!("decay factor must be between 0 and 1, got {gamma}"));
            }
            _ => {}
        }
        Ok(LrSchedule {
            base_lr,
            warmup_epochs,
            epochs,
            schedule,
            plateau_lr: base_lr,
            bad_epochs: 0,
            cooldown_left: 0,
        })
    }

    /// The rate for step `step` (0-based) of `steps` in epoch `epoch` (0-based).
    pub fn lr(&self, epoch: usize, step: usize, steps: usize) -> f64 {
        let after_warmup = match &self.schedule {
            Schedule::Constant => self.base_lr,
            Schedule::Step { every, gamma } => self.base_lr * gamma.powi((epoch / every) as i32),
            Schedule::Cosine { min_lr } => {
                let span = self.epochs.saturating_sub(self.warmup_epochs).max(1) as f64;
                let t = (epoch.saturating_sub(self.warmup_epochs) as f64 + step as f64 / steps.max(1) as f64)
                    / span;
                min_lr + 0.5 * (self.base_lr - min_lr) * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
            Schedule::Plateau { .. } => self.plateau_lr,
        };
        if epoch < self.warmup_epochs {
            let done = (epoch * steps + step + 1) as f64;
            after_warmup * done / (self.warmup_epochs * steps.max(1)) as f64
        } else {
            after_warmup
        }
    }

    /// Called after each epoch with whether the monitored metric improved; returns a message
    /// when reduce-on-plateau lowers the rate. Same rules as Keras' `ReduceLROnPlateau`: the
    /// rate drops once `patience` epochs in a row brought no improvement; warm-up epochs do
    /// not count.
    pub fn end_epoch(&mut self, epoch: usize, improved: bool) -> Option<String> {
        let Schedule::Plateau { factor, patience, cooldown, min_lr } = self.schedule else { return None };
        if epoch < self.warmup_epochs {
            return None;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_epochs = 0;
        }
        if improved {
            self.bad_epochs = 0;
            return None;
        }
        if self.cooldown_left > 0 {
            return None;
        }
        self.bad_epochs += 1;
        if self.bad_epochs < patience.max(1) || self.plateau_lr <= min_lr {
            return None;
        }
        let old = self.plateau_lr;
        self.plateau_lr = (old * factor).max(min_lr);
        self.bad_epochs = 0;
        self.cooldown_left = cooldown;
        Some(format!(
            "reduce-on-plateau: no improvement for {patience} epoch(s), learning rate {old:.3e} -> {:.3e}",
            self.plateau_lr
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_cosine_and_warmup() {
        let s = LrSchedule::new(0.1, 0, 10, Schedule::Step { every: 3, gamma: 0.5 }).unwrap();
        let lrs: Vec<f64> = (0..7).map(|e| s.lr(e, 0, 10)).collect();
        assert_eq!(lrs, vec![0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]);
        let c = LrSchedule::new(1.0, 0, 10, Schedule::Cosine { min_lr: 0.0 }).unwrap();
        assert!((c.lr(0, 0, 1) - 1.0).abs() < 1e-12);
        assert!((c.lr(5, 0, 1) - 0.5).abs() < 1e-12);
        assert!(c.lr(9, 0, 1) < 0.03);
        let w = LrSchedule::new(1.0, 2, 10, Schedule::Constant).unwrap();
        assert!((w.lr(0, 0, 4) - 1.0 / 8.0).abs() < 1e-12);
        assert!((w.lr(1, 3, 4) - 1.0).abs() < 1e-12);
        assert_eq!(w.lr(2, 0, 4), 1.0);
    }

    #[test]
    fn plateau_fires_after_patience_then_cools_down() {
        let sched = Schedule::Plateau { factor: 0.5, patience: 2, cooldown: 1, min_lr: 0.01 };
        let mut s = LrSchedule::new(0.08, 0, 100, sched).unwrap();
        // A crafted metric: improves twice, then stalls.
        let improved = [true, true, false, false, false, false, false, false, false, false, false, false];
        let mut fired = Vec::new();
        for (e, &imp) in improved.iter().enumerate() {
            if s.end_epoch(e, imp).is_some() {
                fired.push((e, s.lr(e + 1, 0, 1)));
            }
        }
        // Stalls from epoch 2: the 2nd bad epoch (3) fires; the cooldown epoch resets the
        // count and counts as bad (as in Keras), so 5 and 7 fire; 7 reaches the floor.
        assert_eq!(fired, vec![(3, 0.04), (5, 0.02), (7, 0.01)]);
        assert_eq!(s.end_epoch(20, false), None);
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(LrSchedule::new(0.0, 0, 1, Schedule::Constant).is_err());
        assert!(LrSchedule::new(f64::NAN, 0, 1, Schedule::Constant).is_err());
        assert!(LrSchedule::new(0.1, 0, 1, Schedule::Step { every: 0, gamma: 0.5 }).is_err());
        assert!(LrSchedule::new(0.1, 0, 1, Schedule::Step { every: 1, gamma: 1.5 }).is_err());
    }
}
